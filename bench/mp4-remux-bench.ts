/**
 * Finalizing one fragmented MP4 camera file: our remuxFmp4 (in process) vs the gst-launch remux (describeRemux)
 * on a 10 s 1080p25 H.264 (B-frames) ~4 Mbit/s + AAC file written by mp4mux fragment-duration=1000.
 * Source: the first 10 s of /tmp/rig/media/clip-1080p25-h264-aac.mp4 (else a makeClip 1920x1080).
 * CPU = user + system (ours: process.cpuUsage; gst-launch: the child's, from bash `times`). Median of 7, interleaved.
 * Run: node dist/bench/mp4-remux-bench.js
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeRemux, gstLaunchArgv } from '../src/pipeline/launch';
import { remuxFmp4 } from '../src/mp4/remux';
import { makeClip } from '../tests/helpers/media';

const run = promisify(execFile);
const RUNS = 7;
const RIG = '/tmp/rig/media/clip-1080p25-h264-aac.mp4';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-remux-bench-'));
  try {
    const clip = existsSync(RIG) ? RIG : await makeClip({ video: 'h264', audio: 'aac', seconds: 10, size: '1920x1080' });
    const plain = join(dir, 'ten.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-t', '10', '-c', 'copy', plain]);
    const src = join(dir, 'frag.mp4');
    await run('gst-launch-1.0', ['-q', 'filesrc', `location=${plain}`, '!', 'qtdemux', 'name=d', 'd.video_0', '!', 'queue', '!', 'h264parse', '!', 'mux.video_0',
      'd.audio_0', '!', 'queue', '!', 'aacparse', '!', 'mux.audio_0', 'mp4mux', 'name=mux', 'fragment-duration=1000', '!', 'filesink', `location=${src}`]);
    console.log(`source: ${(statSync(src).size / 1e6).toFixed(2)} MB fragmented MP4`);
    const ours: [number, number][] = [];
    const gst: [number, number][] = [];
    for (let i = -1; i < RUNS; i++) {
      const out = join(dir, `ours-${i}.mp4`);
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await remuxFmp4(src, out, { moovFirst: false });
      const c = process.cpuUsage(c0);
      if (i >= 0) ours.push([(c.user + c.system) / 1000, Number(process.hrtime.bigint() - t0) / 1e6]);
      rmSync(out);
      const desc = describeRemux(src, join(dir, `gst-${i}.mp4`), 'mp4', { video: 'H264', audio: 'AAC' }, { moovFirst: false });
      if (!desc) throw new Error('no remux description');
      const g0 = process.hrtime.bigint();
      const { stdout } = await run('bash', ['-c', 'gst-launch-1.0 -q -e "$@" >/dev/null 2>&1 || exit 1; times', '_', ...gstLaunchArgv(desc)], { env: { ...process.env, GST_DEBUG: '0' } });
      const wall = Number(process.hrtime.bigint() - g0) / 1e6;
      // `times`: shell user/sys, then children user/sys, as 0m0.123s
      const secs = [...(stdout.trim().split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      if (i >= 0) gst.push([(secs.reduce((a, b) => a + b, 0)) * 1000, wall]);
      rmSync(join(dir, `gst-${i}.mp4`));
    }
    const show = (name: string, r: [number, number][]) =>
      console.log(`${name}: CPU median ${median(r.map((x) => x[0])).toFixed(1)} ms (${r.map((x) => x[0].toFixed(1)).join(' ')}), wall median ${median(r.map((x) => x[1])).toFixed(1)} ms`);
    show('remuxFmp4 (in process)', ours);
    show('gst-launch remux      ', gst);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
