import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { topBoxTypes } from '../../src/mp4/scan';

const run = promisify(execFile);

/** Cache folder for generated clips (kept between runs). */
export const MEDIA_DIR = process.env.EDGEREC_TEST_MEDIA ?? '/tmp/edgerec-test-media';

export type ClipVideo = 'h264' | 'h265' | 'vp8' | 'mjpeg' | null;
export type ClipAudio = 'aac' | 'opus' | 'pcma' | 'pcmu' | 'mp3' | null;

export interface ClipOptions {
  video: ClipVideo;
  audio: ClipAudio;
  /** seconds, default 6 */
  seconds?: number;
  /** default by codecs: mp4 (h264/h265+aac), webm (vp8/opus), mkv (others) */
  container?: 'mp4' | 'webm' | 'mkv' | 'flv' | 'ts';
  /** default 640x360 */
  size?: string;
  /** default 25 */
  fps?: number;
  /** keyframe interval in frames, default 2 s */
  gop?: number;
  /** default false: B-frames off so timestamps are simple */
  bframes?: boolean;
}

const VIDEO_ARGS: Record<Exclude<ClipVideo, null>, string[]> = {
  h264: ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
  h265: ['-c:v', 'libx265', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1', '-x265-params', 'log-level=error:bframes=0'],
  vp8: ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '1M'],
  mjpeg: ['-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p'],
};
const AUDIO_ARGS: Record<Exclude<ClipAudio, null>, string[]> = {
  aac: ['-c:a', 'aac', '-ar', '44100', '-ac', '2'],
  opus: ['-c:a', 'libopus', '-ar', '48000', '-ac', '2'],
  pcma: ['-c:a', 'pcm_alaw', '-ar', '8000', '-ac', '1'],
  pcmu: ['-c:a', 'pcm_mulaw', '-ar', '8000', '-ac', '1'],
  mp3: ['-c:a', 'libmp3lame', '-ar', '44100', '-ac', '2'],
};

const inFlight = new Map<string, Promise<string>>();

/** How long a process waits for another one's build of the same file before building its own copy. */
const LOCK_WAIT_MS = 300_000;

/** True when the process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the build lock of `out` (a file `<out>.lock` holding the builder's pid), or wait until another process's
 * build of `out` is there. 'built' when the file appeared meanwhile; 'mine' when this process must build it (its
 * lock is held, or the wait ran out: then it builds its own copy and the first link still wins). A lock whose
 * process is gone is taken over.
 */
async function lockOrWait(out: string): Promise<'built' | 'mine'> {
  const lock = `${out}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (existsSync(out)) return 'built';
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return 'mine';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    let ageMs = 0;
    try {
      owner = Number(readFileSync(lock, 'utf8'));
      ageMs = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // a dead builder, or a lock left empty by one that died between creating and writing it
    if ((owner > 0 && !alive(owner)) || (!(owner > 0) && ageMs > 10_000)) {
      try {
        unlinkSync(lock);
      } catch {
        /* taken over by another waiter */
      }
      continue;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return existsSync(out) ? 'built' : 'mine';
}

/**
 * A file in the media cache, built at most once per cache path and never seen half-written.
 * The path is `MEDIA_DIR/k-<hash of key>/<name>`: `key` must hold everything that decides the content (the
 * tool, its arguments, the input's path), so a changed argument never reuses an old file. `build(tmp)` writes
 * a unique temporary file (same extension as `name`, so ffmpeg picks the same muxer); only a whole, non-empty
 * file is linked into place, and link() never replaces a file another process cached first. Concurrent callers
 * in this process share one build; another process building the same file holds its lock (`<name>.lock`) and
 * this one waits for its file instead of building a copy (test files run in parallel on an empty cache).
 */
export function cachedFile(name: string, key: readonly string[], build: (tmp: string) => Promise<unknown>): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify([name, ...key])).digest('hex').slice(0, 16);
  const dir = join(MEDIA_DIR, `k-${hash}`);
  const out = join(dir, name);
  const pending = inFlight.get(out);
  if (pending) return pending;
  if (existsSync(out)) return Promise.resolve(out);
  const job = (async () => {
    mkdirSync(dir, { recursive: true });
    if ((await lockOrWait(out)) === 'built') return out;
    const tmp = join(dir, `.${basename(name, extname(name))}.tmp-${process.pid}-${randomBytes(4).toString('hex')}${extname(name)}`);
    try {
      const t0 = Date.now();
      await build(tmp);
      if (!(statSync(tmp).size > 0)) throw new Error(`cache build wrote an empty file for ${name}`);
      // what building the cache costs a fresh machine (tests/run.ts sums it)
      appendFileSync(join(MEDIA_DIR, 'builds.log'), `${Date.now() - t0} ${name}\n`);
      try {
        linkSync(tmp, out);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      return out;
    } finally {
      for (const f of [tmp, `${out}.lock`]) {
        try {
          if (f === tmp || readFileSync(f, 'utf8') === String(process.pid)) unlinkSync(f);
        } catch {
          /* never written, or not ours */
        }
      }
    }
  })();
  inFlight.set(out, job);
  job.then(
    () => inFlight.delete(out),
    () => inFlight.delete(out),
  );
  return job;
}

/** A test clip made with ffmpeg (testsrc2 + sine), cached by its options. Returns its absolute path. */
export async function makeClip(o: ClipOptions): Promise<string> {
  const seconds = o.seconds ?? 6;
  const size = o.size ?? '640x360';
  const fps = o.fps ?? 25;
  const gop = o.gop ?? fps * 2;
  const container =
    o.container ?? ((o.video === 'vp8' || (o.video === null && o.audio === 'opus')) ? 'webm' : (o.audio === 'pcma' || o.audio === 'pcmu' || o.video === 'mjpeg') ? 'mkv' : 'mp4');
  const name = `clip-${o.video ?? 'novideo'}-${o.audio ?? 'noaudio'}-${seconds}s-${size}-${fps}-${gop}${o.bframes ? '-b' : ''}${o.video === 'h265' ? '-nob' : ''}.${container}`;
  const args = ['-hide_banner', '-loglevel', 'error', '-y'];
  if (o.video) args.push('-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`);
  if (o.audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  args.push('-t', String(seconds));
  if (o.video) {
    args.push(...VIDEO_ARGS[o.video], '-g', String(gop), '-keyint_min', String(gop));
    if (o.video === 'h264') args.push('-bf', o.bframes ? '2' : '0', '-sc_threshold', '0');
  }
  if (o.audio) args.push(...AUDIO_ARGS[o.audio]);
  return cachedFile(name, ['ffmpeg', ...args], (tmp) => run('ffmpeg', [...args, tmp], { timeout: 120_000 }));
}

export interface ProbeStream {
  codec_type: string;
  codec_name: string;
  sample_rate?: string;
  channels?: number;
  width?: number;
  height?: number;
  duration?: string;
  start_time?: string;
}
export interface ProbeResult {
  format: { format_name: string; duration?: string; size?: string; start_time?: string };
  streams: ProbeStream[];
}

/** ffprobe a file; throws with ffprobe's error text when it reports any error. */
export async function probe(path: string): Promise<ProbeResult> {
  const { stdout, stderr } = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], {
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (stderr.trim()) throw new Error(`ffprobe reported errors for ${path}: ${stderr.trim().slice(0, 500)}`);
  return JSON.parse(stdout) as ProbeResult;
}

/** Decode the whole file with ffmpeg; resolves to the error output (empty when clean). */
export async function decodeErrors(path: string): Promise<string> {
  // -enc_time_base -1: the null muxer keeps the stream's own time base. With its default (1/fps) two frames a few
  // ms closer than one frame period (RTP arrival jitter, legal in the file) round to one tick and ffmpeg reports
  // "non monotonically increasing dts to muxer" although every frame decodes (seen with rtspsrc and VLC).
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-enc_time_base', '-1', '-f', 'null', '-'], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return stderr.trim();
}

/** Top-level MP4 box types in file order (ftyp, moov, mdat, ...). */
export async function mp4TopBoxes(path: string): Promise<string[]> {
  return topBoxTypes(path);
}
