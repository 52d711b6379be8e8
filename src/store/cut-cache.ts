import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readdir, realpath, stat, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Conf } from '../conf/types';
import { AppError, errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { chooseCutEvictions, type CutRow, type CutsStore, type NewCut } from './cuts';

const log = rootLog.child({ component: 'cut-cache' });

/** Most cut files kept, whatever their size (each is a row and a directory entry). */
export const MAX_CUTS = 5000;
/** A hidden partial cut older than this is left over from a crash and removed. */
const STALE_PART_MS = 3_600_000;

/** A cut verified as ours and opened for reading (the caller closes `fh`). */
export interface OpenCut {
  readonly row: CutRow;
  readonly fh: FileHandle;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Bytes allowed by mp4_cutter_max_bytes for a disk of `diskBytes`. */
export function quotaBytes(q: Conf['mp4_cutter_max_bytes'], diskBytes: number): number {
  return q.kind === 'bytes' ? q.bytes : Math.floor((diskBytes * q.percent) / 100);
}

/**
 * The cut cache: every cut edgerec made is a row (source, range, path, inode, size, ctime); a file is served as a
 * cut only when it matches its row, is a regular file with one link, sits directly in mp4_cutter_dir and is newer
 * than its source. The total stays under mp4_cutter_max_bytes (and MAX_CUTS files), least recently used first;
 * retention calls sweep() to drop cuts of deleted sources, old cuts and whatever a smaller quota no longer holds.
 */
export class CutCache {
  readonly name = 'cut-cache';
  private reservedBytes = 0;
  private reservedCount = 0;
  private evicted = 0;
  private lastMax: number | null = null;

  constructor(
    private readonly conf: () => Conf,
    private readonly store: CutsStore,
    private readonly maxCount = MAX_CUTS,
  ) {}

  /** mp4_cutter_dir as configured. */
  dirPath(): string {
    return this.conf().mp4_cutter_dir;
  }

  /** The real path of mp4_cutter_dir (it must exist). */
  dir(): Promise<string> {
    return realpath(this.conf().mp4_cutter_dir);
  }

  /** The byte bound now (a percentage is of the disk holding mp4_cutter_dir). */
  async maxBytes(): Promise<number> {
    const q = this.conf().mp4_cutter_max_bytes;
    if (q.kind === 'bytes') return (this.lastMax = q.bytes);
    const s = await statfs(this.conf().mp4_cutter_dir);
    return (this.lastMax = quotaBytes(q, s.blocks * s.bsize));
  }

  /** The cut of this source and range when it is ours and still valid, opened; null when it must be (re)built. */
  async lookup(sourcePath: string, startDs: number, endDs: number, sourceMtimeMs: number): Promise<OpenCut | null> {
    const row = this.store.get(sourcePath, startDs, endDs);
    if (!row) return null;
    const dirReal = await this.dir().catch(() => null);
    if (dirname(row.path) !== dirReal) {
      await this.evict(row, dirReal ? 'mp4_cutter_dir changed' : 'mp4_cutter_dir is gone');
      return null;
    }
    let fh: FileHandle;
    try {
      fh = await open(row.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      // gone, or a symlink now stands there (ELOOP): not ours; the row goes, whatever stands there stays
      log.warn({ file: basename(row.path), reason: (err as NodeJS.ErrnoException).code ?? errMessage(err) }, 'a cut is missing or replaced; it will be rebuilt');
      this.store.delete(row.id);
      return null;
    }
    const st = await fh.stat();
    const ours = isOurs(st, row);
    if (!ours || st.mtimeMs <= sourceMtimeMs) {
      await fh.close();
      if (!ours) log.warn({ file: basename(row.path) }, 'a file in mp4_cutter_dir is not the cut edgerec made there; it is not served and the cut is rebuilt');
      await this.evict(row, ours ? 'source changed' : 'replaced');
      return null;
    }
    this.store.touch(row.id);
    return { row, fh, size: st.size, mtimeMs: st.mtimeMs };
  }

  /** The row of ours at this path, if any. */
  atPath(path: string): CutRow | null {
    return this.store.atPath(path);
  }

  /**
   * Make room for a cut of `bytes` (least recently used cuts removed), or refuse it when it is larger than the
   * whole cache. Returns the release function (call it once the cut is indexed or has failed).
   */
  async reserve(bytes: number): Promise<() => void> {
    const max = await this.maxBytes();
    if (bytes > max) {
      throw new AppError('CUT_TOO_LARGE', `the cut would be ${mib(bytes)} MiB, more than the cut cache holds (mp4_cutter_max_bytes = ${mib(max)} MiB): ask for a shorter range, or the whole file without ?start/?end`);
    }
    this.reservedBytes += bytes;
    this.reservedCount++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.reservedBytes -= bytes;
      this.reservedCount--;
    };
    try {
      await this.enforce(max, { bytes: this.reservedBytes, count: this.reservedCount });
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** Index a cut just written. */
  add(row: NewCut): boolean {
    return this.store.put(row);
  }

  /** Remove a cut of ours (the file only when it is still the one we wrote) and its row. */
  async evict(row: CutRow, reason: string): Promise<void> {
    const st = await lstat(row.path).catch(() => null);
    if (st && isOurs(st, row)) {
      await unlink(row.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    this.store.delete(row.id);
    this.evicted++;
    log.debug({ file: basename(row.path), bytes: row.bytes, reason }, 'cut removed');
  }

  /**
   * One retention pass over the cache: cuts whose source is gone, cuts older than record_retention_days (0 = off),
   * cuts outside the current mp4_cutter_dir, then the least recently used past the quota, then more of them while
   * the disk has less free space than record_min_free_percent (cuts go before recordings). Returns how many went.
   */
  async sweep(now = Date.now(), disk?: { totalBytes: number; freeBytes: number }): Promise<number> {
    const before = this.evicted;
    const c = this.conf();
    const dirReal = await this.dir().catch(() => null);
    const cutoff = c.record_retention_days > 0 ? now - c.record_retention_days * 86_400_000 : -Infinity;
    for (const row of this.store.leastRecentlyUsed(this.maxCount * 2)) {
      const src = await stat(row.sourcePath).catch(() => null);
      if (!src) await this.evict(row, 'source deleted');
      else if (row.createdMs < cutoff) await this.evict(row, 'age');
      else if (dirReal && dirname(row.path) !== dirReal) await this.evict(row, 'mp4_cutter_dir changed');
    }
    await this.enforce(await this.maxBytes(), { bytes: this.reservedBytes, count: this.reservedCount });
    const d = disk ?? (await statfs(c.mp4_cutter_dir).then((s) => ({ totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize }), () => null));
    if (d) {
      let free = d.freeBytes;
      const need = (d.totalBytes * c.record_min_free_percent) / 100;
      for (const row of free < need ? this.store.leastRecentlyUsed(this.maxCount * 2) : []) {
        if (free >= need) break;
        await this.evict(row, 'free space');
        free += row.bytes;
      }
    }
    const n = this.evicted - before;
    if (n > 0) log.info({ removed: n, ...this.store.totals() }, 'cut cache swept');
    return n;
  }

  /** Remove hidden partial cuts a crash left in mp4_cutter_dir (older than an hour). */
  async removeStaleParts(now = Date.now()): Promise<number> {
    const dir = await this.dir().catch(() => null);
    if (!dir) return 0;
    let n = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith('.cut-') || !name.endsWith('.part')) continue;
      const p = join(dir, name);
      const st = await lstat(p).catch(() => null);
      if (st?.isFile() && now - st.mtimeMs > STALE_PART_MS && (await unlink(p).then(() => true, () => false))) n++;
    }
    return n;
  }

  /** For health: how full the cache is. */
  health(): Record<string, unknown> {
    const t = this.store.totals();
    return { cutCache: { files: t.count, bytes: t.bytes, maxBytes: this.lastMax, evicted: this.evicted } };
  }

  private async enforce(maxBytes: number, incoming: { bytes: number; count: number }): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const lru = this.store.leastRecentlyUsed(200);
      const chosen = chooseCutEvictions(lru, this.store.totals(), { maxBytes, maxCount: this.maxCount }, incoming);
      if (chosen.length === 0) return;
      for (const row of chosen) await this.evict(row, 'quota');
      if (chosen.length < lru.length) return;
    }
  }
}

/** The file is the cut edgerec wrote: a regular file with one link, and inode, size and ctime as indexed. */
function isOurs(st: Stats, row: CutRow): boolean {
  return st.isFile() && st.nlink === 1 && st.ino === row.ino && st.size === row.bytes && st.ctimeMs === row.ctimeMs;
}

function mib(n: number): string {
  return (n / 1048576).toFixed(1);
}
