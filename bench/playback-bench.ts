/**
 * Playback benchmark: a 10-minute range stitched from 60 ten-second files (1080p25 H.264 4 Mbit/s + AAC, moov first),
 * through the real service (GET /rest-api/playback, mp4 and fmp4, read by curl into a file), side by side with what a
 * site does by hand: `ffmpeg -f concat -safe 0 -i list.txt -ss S -t T -c copy` (moov last, +faststart, and fragmented
 * to a pipe). First byte and total time, median of N interleaved runs after one warm-up of each.
 * Usage: npx tsc && node dist/bench/playback-bench.js [runs] [offsetS] [case name regexp]
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closeDb, openDb } from '../src/store/db';
import { RecordingsStore } from '../src/store/recordings';
import { probe } from '../tests/helpers/media';
import { startService } from '../tests/helpers/service';

const run = promisify(execFile);
const RUNS = Number(process.argv[2] ?? 5);
/** the range starts this far into the first file (a keyframe every 2 s: from the one at or before it) */
const OFFSET_S = Number(process.argv[3] ?? 3);
const FILES = 60;
const FILE_S = 10;
const CACHE = '/tmp/edgerec-bench/playback';

interface Sample {
  firstByteMs: number;
  totalMs: number;
  bytes: number;
}

async function clip(): Promise<string> {
  const out = join(CACHE, 'seg-1080p-10s.mp4');
  if (existsSync(out)) return out;
  mkdirSync(CACHE, { recursive: true });
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(FILE_S), '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M', '-g', '50', '-keyint_min', '50', '-bf', '0',
    '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart', `${out}.part.mp4`,
  ], { timeout: 600_000 });
  copyFileSync(`${out}.part.mp4`, out);
  rmSync(`${out}.part.mp4`);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function curl(url: string, out: string): Promise<Sample> {
  const { stdout } = await run('curl', ['-s', '-f', '-o', out, '-w', '%{time_starttransfer} %{time_total} %{size_download}', url], { timeout: 600_000 });
  const [fb, total, size] = stdout.trim().split(' ').map(Number);
  return { firstByteMs: (fb ?? NaN) * 1000, totalMs: (total ?? NaN) * 1000, bytes: size ?? 0 };
}

/** ffmpeg writing to a file (first byte: when the output file first has bytes is not observable; reported as total). */
async function ffmpegFile(list: string, out: string, extra: string[]): Promise<Sample> {
  const t0 = performance.now();
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-ss', String(OFFSET_S), '-t', String(FILES * FILE_S - 2 * OFFSET_S), '-c', 'copy', ...extra, out], { timeout: 600_000 });
  const totalMs = performance.now() - t0;
  return { firstByteMs: NaN, totalMs, bytes: statSync(out).size };
}

/** ffmpeg writing fragmented MP4 to a pipe (the streamed equivalent of format=fmp4), saved to a file. */
function ffmpegPipe(list: string, out: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = NaN;
    let bytes = 0;
    const file = createWriteStream(out);
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'concat', '-safe', '0', '-i', list, '-ss', String(OFFSET_S), '-t', String(FILES * FILE_S - 2 * OFFSET_S), '-c', 'copy',
      '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (b: Buffer) => {
      if (Number.isNaN(first)) first = performance.now() - t0;
      bytes += b.length;
    });
    p.stdout.pipe(file);
    p.on('error', reject);
    const finished = new Promise<void>((r) => file.on('finish', () => r()));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    void Promise.all([exited, finished]).then(([code]) =>
      code === 0 ? resolve({ firstByteMs: first, totalMs: performance.now() - t0, bytes }) : reject(new Error(`ffmpeg exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const seg = await clip();
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-pbbench-'));
  const recordDir = join(dir, 'records');
  mkdirSync(recordDir, { recursive: true });
  const t0 = Date.UTC(2026, 11, 1, 12, 0, 0);
  const db = openDb(join(dir, 'edgerec.db'));
  const store = new RecordingsStore(db);
  const lines: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const name = `cam-${t0 + i * FILE_S * 1000}_${i + 1}.mp4`;
    const path = join(recordDir, name);
    copyFileSync(seg, path);
    lines.push(`file '${path}'`);
    store.insert({
      fileName: name, path, streamName: 'cam', mediaSessionId: '00000000-0000-4000-8000-000000000001', sourceProtocol: 'rtsp',
      startMs: t0 + i * FILE_S * 1000, endMs: t0 + (i + 1) * FILE_S * 1000, durationMs: FILE_S * 1000, bytes: statSync(path).size,
      audioCodec: 'mpeg', videoCodec: 'H264', container: 'mp4', fragmentIndex: i + 1, state: 'complete',
    });
  }
  closeDb(db);
  const list = join(dir, 'list.txt');
  writeFileSync(list, lines.join('\n') + '\n');
  const s = await startService({ dir, conf: '' });
  const from = t0 + OFFSET_S * 1000;
  const to = t0 + (FILES * FILE_S - OFFSET_S) * 1000;
  const url = (f: string) => `${s.base}/rest-api/playback?stream=cam&from=${from}&to=${to}&format=${f}`;
  const out = (n: string) => join(dir, n);
  const cases: Record<string, () => Promise<Sample>> = {
    'edgerec format=fmp4 (curl → file)': () => curl(url('fmp4'), out('ours-fmp4.mp4')),
    'edgerec format=mp4 (curl → file)': () => curl(url('mp4'), out('ours-mp4.mp4')),
    'ffmpeg concat -c copy → file (moov last)': () => ffmpegFile(list, out('ff.mp4'), []),
    'ffmpeg concat -c copy -movflags +faststart → file': () => ffmpegFile(list, out('ff-fast.mp4'), ['-movflags', '+faststart']),
    'ffmpeg concat -c copy fragmented → pipe → file': () => ffmpegPipe(list, out('ff-frag.mp4')),
  };
  const only = process.argv[4] ? new RegExp(process.argv[4]) : null;
  for (const name of Object.keys(cases)) if (only && !only.test(name)) delete cases[name];
  const results: Record<string, Sample[]> = {};
  try {
    for (const [name, fn] of Object.entries(cases)) {
      const x = await fn(); // warm-up: page cache, JIT
      process.stderr.write(`warm-up ${name}: ${x.totalMs.toFixed(0)} ms\n`);
    }
    for (let r = 0; r < RUNS; r++) {
      for (const [name, fn] of Object.entries(cases)) {
        const x = await fn();
        (results[name] ??= []).push(x);
        process.stderr.write(`run ${r} ${name}: first byte ${x.firstByteMs.toFixed(1)} ms, total ${x.totalMs.toFixed(0)} ms\n`);
      }
    }
    const durations: Record<string, string> = {};
    for (const f of ['ours-fmp4.mp4', 'ours-mp4.mp4', 'ff.mp4', 'ff-fast.mp4', 'ff-frag.mp4'].filter((x) => existsSync(out(x)))) {
      const p = await probe(out(f));
      durations[f] = `${Number(p.format.duration).toFixed(2)} s, ${p.streams.map((x) => x.codec_name).join('+')}`;
    }
    console.log(`\n${new Date().toISOString()}  load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}  range ${(to - from) / 1000} s from ${FILES} files of ${FILE_S} s (offset ${OFFSET_S} s)`);
    console.log('| | first byte median (ms) | total median (ms) | totals (ms) | bytes |');
    console.log('|---|---:|---:|---|---:|');
    for (const [name, xs] of Object.entries(results)) {
      const fb = median(xs.map((x) => x.firstByteMs));
      console.log(`| ${name} | ${Number.isNaN(fb) ? '—' : fb.toFixed(1)} | ${median(xs.map((x) => x.totalMs)).toFixed(0)} | ${xs.map((x) => x.totalMs.toFixed(0)).join(' ')} | ${xs[0]?.bytes ?? 0} |`);
    }
    console.log('durations:', JSON.stringify(durations));
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
