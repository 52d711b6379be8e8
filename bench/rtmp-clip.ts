import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cachedFile } from '../tests/helpers/media';

const run = promisify(execFile);

/** The RTMP benches' picture size. */
export const SIZE = '1280x720';

/** 720p25 H.264 (x264 ultrafast, GOP 2 s, no B-frames, ~4 Mbit/s CBR-ish) + AAC, 10 s, cached in the test media folder. */
export function benchClip(): Promise<string> {
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}:rate=25`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '10'];
  args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '4M', '-g', '50', '-keyint_min', '50', '-bf', '0', '-sc_threshold', '0');
  args.push('-c:a', 'aac', '-ar', '44100', '-ac', '2');
  return cachedFile('rtmp-bench-720p25-4M.mp4', ['ffmpeg', ...args], (tmp) => run('ffmpeg', [...args, tmp], { timeout: 120_000 }));
}
