/**
 * MP4 time-range cut: our cutMp4 vs `ffmpeg -ss 1800 -to 1860 -i f.mp4 -c copy` on a 1 h 1080p25 H.264 4 Mbit/s +
 * AAC file written by GStreamer's mp4mux (moov last, as the recorder writes). The hour is a 60 s encoded segment
 * looped with `-c copy`, cached in /tmp/edgerec-bench. Median of 5 runs each, interleaved, fresh output each run.
 * Run: node dist/bench/cut-bench.js [startS endS]
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bytesRead, resetBytesRead } from '../src/mp4/reader';
import { cutMp4 } from '../src/mp4/cut';

const run = promisify(execFile);
const DIR = process.env.EDGEREC_BENCH_DIR ?? '/tmp/edgerec-bench';
const RUNS = 5;

async function cached(out: string, make: (part: string) => Promise<unknown>): Promise<string> {
  if (existsSync(out)) return out;
  const part = `${out}.part.mp4`;
  const t = Date.now();
  await make(part);
  renameSync(part, out);
  console.log(`made ${out} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

async function hourFile(): Promise<string> {
  mkdirSync(DIR, { recursive: true });
  const hour = join(DIR, 'hour-1080p.mp4');
  if (existsSync(hour)) return hour;
  const seg = await cached(join(DIR, 'seg-60s-1080p.mp4'), (p) =>
    run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '60', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M', '-g', '50', '-keyint_min', '50',
      '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-ar', '44100', '-ac', '2', p], { timeout: 600_000 }));
  const looped = await cached(join(DIR, 'hour-ffmpeg.mp4'), (p) =>
    run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-stream_loop', '59', '-i', seg, '-c', 'copy', '-t', '3600', p], { timeout: 600_000 }));
  await cached(hour, (p) =>
    run('gst-launch-1.0', ['-q', 'filesrc', `location=${looped}`, '!', 'qtdemux', 'name=d', 'd.video_0', '!', 'queue', '!', 'h264parse', '!', 'mp4mux', 'name=m', '!',
      'filesink', `location=${p}`, 'd.audio_0', '!', 'queue', '!', 'aacparse', '!', 'm.'], { timeout: 600_000 }));
  rmSync(looped, { force: true }); // 1.9 GB intermediate
  return hour;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  const startS = Number(process.argv[2] ?? 1800);
  const endS = Number(process.argv[3] ?? 1860);
  const src = await hourFile();
  const oursOut = join(DIR, 'cut-ours.mp4');
  const ffOut = join(DIR, 'cut-ffmpeg.mp4');
  const ours = (): Promise<unknown> => {
    rmSync(oursOut, { force: true });
    return cutMp4(src, oursOut, startS, endS);
  };
  const ffmpeg = (): Promise<unknown> => {
    rmSync(ffOut, { force: true });
    return run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-ss', String(startS), '-to', String(endS), '-i', src, '-c', 'copy', '-y', ffOut]);
  };
  // the same cut in a fresh node process: compares like for like with ffmpeg's process start
  const cutModule = join(__dirname, '..', 'src', 'mp4', 'cut.js');
  const oursProcess = (): Promise<unknown> => {
    rmSync(oursOut, { force: true });
    return run(process.execPath, ['-e', `require(${JSON.stringify(cutModule)}).cutMp4(process.argv[1], process.argv[2], ${startS}, ${endS})`, src, oursOut]);
  };
  await ours(); // warm the page cache for both
  await ffmpeg();
  const tOurs: number[] = [];
  const tProc: number[] = [];
  const tFf: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    tProc.push(await timed(oursProcess));
    resetBytesRead();
    tOurs.push(await timed(ours));
    tFf.push(await timed(ffmpeg));
  }
  const read = bytesRead();
  const dur = async (p: string): Promise<string> => (await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', p])).stdout.trim();
  const mOurs = median(tOurs);
  const mFf = median(tFf);
  console.log(`source ${src}: ${(statSync(src).size / 1e6).toFixed(0)} MB; cut start=${startS} end=${endS}`);
  console.log(`ours   cutMp4 (in process): median ${mOurs.toFixed(1)} ms  runs ${tOurs.map((t) => t.toFixed(0)).join(' ')}  out ${(statSync(oursOut).size / 1e6).toFixed(1)} MB, ${await dur(oursOut)} s, read ${(read / 1e6).toFixed(1)} MB`);
  console.log(`ours   in a new node process: median ${median(tProc).toFixed(1)} ms  runs ${tProc.map((t) => t.toFixed(0)).join(' ')}`);
  console.log(`ffmpeg -ss -to -c copy:     median ${mFf.toFixed(1)} ms  runs ${tFf.map((t) => t.toFixed(0)).join(' ')}  out ${(statSync(ffOut).size / 1e6).toFixed(1)} MB, ${await dur(ffOut)} s`);
  console.log(`ratio ffmpeg/ours: ${(mFf / mOurs).toFixed(1)}x in process, ${(mFf / median(tProc)).toFixed(1)}x as a new process`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
