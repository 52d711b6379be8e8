import { createHash } from 'node:crypto';
import { type FileHandle, lstat, mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { AppError } from '../lib/errors';
import { log } from '../lib/log';
import { cutUtf8 } from '../conf/template';
import type { CutCache } from '../store/cut-cache';
import { cutMp4, type CutOptions, type CutResult } from '../mp4/cut';
import { Mp4FormatError } from '../mp4/format-error';

/** Longest cut name in bytes: NAME_MAX (255) less room for a `~N` variant. */
export const CUT_NAME_MAX_BYTES = 250;
/** Cuts built at once; more wait in a queue of MAX_QUEUED, past which a request gets 503 BUSY. */
const MAX_RUNNING = 2;
const MAX_QUEUED = 32;
/** Other names tried when something that is not our cut stands at a cut's path. */
const NAME_VARIANTS = 8;

/** Options of createCutter. */
export interface CutterOptions {
  /** the cut cache (index, quota, verification) */
  cache: CutCache;
  /** the cutting function (tests count calls); default cutMp4 */
  cut?: (src: string, dst: string, startS: number | null, endS: number | null, opts?: CutOptions) => Promise<CutResult>;
}

/** A cut ready to serve: verified as ours, opened (the caller closes `fh`). */
export interface CutFile {
  readonly path: string;
  readonly name: string;
  readonly fh: FileHandle;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Makes (or reuses) a time-range cut of an MP4 (source: a real path inside record_dir). */
export type Cutter = (srcPath: string, startS: number | null, endS: number | null) => Promise<CutFile>;

/** Seconds rounded to what a cut name and the cache key hold: tenths of a second. */
export function roundCutSeconds(s: number): number {
  return Math.round(s * 10) / 10;
}

/**
 * The cut's file name: `<base>-s<S>-e<E>.mp4`, absent bounds left out; a name that would pass
 * CUT_NAME_MAX_BYTES keeps the start of the base and a hash of the whole of it.
 */
export function cutName(srcPath: string, startS: number | null, endS: number | null): string {
  const base = basename(srcPath).replace(/\.mp4$/i, '');
  const suffix = `${startS !== null ? `-s${String(startS)}` : ''}${endS !== null ? `-e${String(endS)}` : ''}.mp4`;
  if (Buffer.byteLength(base + suffix, 'utf8') <= CUT_NAME_MAX_BYTES) return base + suffix;
  const hash = createHash('sha1').update(base).digest('hex').slice(0, 8);
  return `${cutUtf8(base, CUT_NAME_MAX_BYTES - Buffer.byteLength(suffix, 'utf8') - 9)}~${hash}${suffix}`;
}

/**
 * A Cutter for registerFileRoutes: serves a cut from the cache when it is ours and newer than its source, else
 * builds it (once, even when several requests ask at the same time) into mp4_cutter_dir, never over a file it
 * did not make, within the cache quota.
 */
export function createCutter(opts: CutterOptions): Cutter {
  const inFlight = new Map<string, Promise<void>>();
  const cut = opts.cut ?? cutMp4;
  const cache = opts.cache;
  const gate = new Gate(MAX_RUNNING, MAX_QUEUED);

  const build = async (srcPath: string, startS: number | null, endS: number | null, startDs: number, endDs: number, srcMtimeMs: number): Promise<void> => {
    await gate.enter();
    try {
      if (await reuse(cache.lookup(srcPath, startDs, endDs, srcMtimeMs))) return;
      await mkdir(cache.dirPath(), { recursive: true });
      const dir = await cache.dir();
      const out = await freePath(cache, dir, cutName(srcPath, startS, endS));
      const t = Date.now();
      let release: (() => void) | null = null;
      try {
        const r = await cut(srcPath, out, startS, endS, { reserve: async (bytes) => void (release = await cache.reserve(bytes)) }).catch((err: unknown) => {
          throw err instanceof Mp4FormatError ? new AppError('BAD_MEDIA', `the file cannot be cut: ${err.message}`) : err;
        });
        const st = await lstat(out);
        cache.add({ sourcePath: srcPath, startDs, endDs, path: out, bytes: st.size, ino: st.ino, ctimeMs: st.ctimeMs, createdMs: Date.now() });
        log.info({ component: 'cutter', file: basename(out), startS: r.startS, endS: r.endS, bytes: r.bytes, ms: Date.now() - t }, 'mp4 cut made');
      } finally {
        (release as (() => void) | null)?.();
      }
    } finally {
      gate.leave();
    }
  };

  return async (srcPath, startS, endS) => {
    const start = startS === null ? null : roundCutSeconds(startS);
    const end = endS === null ? null : roundCutSeconds(endS);
    const startDs = start === null ? -1 : Math.round(start * 10);
    const endDs = end === null ? -1 : Math.round(end * 10);
    const srcSt = await stat(srcPath);
    const key = `${srcPath}\0${startDs}\0${endDs}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const hit = await cache.lookup(srcPath, startDs, endDs, srcSt.mtimeMs);
      if (hit) return { path: hit.row.path, name: basename(hit.row.path), fh: hit.fh, size: hit.size, mtimeMs: hit.mtimeMs };
      let job = inFlight.get(key);
      if (!job) {
        job = build(srcPath, start, end, startDs, endDs, srcSt.mtimeMs).finally(() => inFlight.delete(key));
        inFlight.set(key, job);
      }
      await job;
    }
    // built, then evicted before it could be opened, three times: the cache is far too small for the traffic
    throw new AppError('BUSY', 'the cut was removed from the cut cache before it could be served (mp4_cutter_max_bytes is small for this load); try again');
  };
}

async function reuse(p: Promise<{ fh: FileHandle } | null>): Promise<boolean> {
  const hit = await p;
  if (!hit) return false;
  await hit.fh.close();
  return true;
}

/** The cut's path, or a `~N` variant when something edgerec did not make stands there (never overwritten). */
async function freePath(cache: CutCache, dir: string, name: string): Promise<string> {
  for (let i = 0; i < NAME_VARIANTS; i++) {
    const n = i === 0 ? name : name.replace(/\.mp4$/, `~${i}.mp4`);
    const p = join(dir, n);
    const st = await lstat(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!st) return p;
    const row = cache.atPath(p);
    if (row) {
      await cache.evict(row, 'rebuilt');
      if (!(await lstat(p).catch(() => null))) return p;
    }
    log.warn({ component: 'cutter', file: n, kind: st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other' }, 'a file edgerec did not make stands at a cut path; it is left alone and not served');
  }
  throw new AppError('CONFLICT', `${NAME_VARIANTS} files that edgerec did not make stand where the cut ${name} would go in mp4_cutter_dir`);
}

/** At most `running` holders; `queued` more wait; past that enter() refuses with 503 BUSY. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(
    private readonly running: number,
    private readonly queued: number,
  ) {}

  async enter(): Promise<void> {
    if (this.active < this.running) {
      this.active++;
      return;
    }
    if (this.waiting.length >= this.queued) throw new AppError('BUSY', `${this.active} cuts are being made and ${this.waiting.length} wait; try again in a few seconds`);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
