import { unlink } from 'node:fs/promises';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { diskUsage } from '../system/disk';
import type { RecordingRow, RecordingsStore } from './recordings';

const log = rootLog.child({ component: 'retention' });
/** How often record_tmp_dir's free space is checked. */
const TMP_CHECK_MS = 5000;
/** record_tmp_dir counts as nearly full below this percent free or these bytes free. */
const TMP_LOW_PERCENT = 10;
const TMP_LOW_BYTES = 32 * 1024 * 1024;
/** Deletions kept for health. */
const RECENT_KEPT = 20;

/** A deletion decided by retention, with why. */
export interface Deletion {
  readonly row: RecordingRow;
  readonly reason: 'age' | 'free-space';
}

/**
 * Pure choice: from finished files oldest first, those older than `retentionDays` (0 = off), then more of the
 * oldest until `freeBytes + freed` reaches `minFreePercent` of `totalBytes`. Never a file being written.
 */
export function chooseDeletions(
  oldestFirst: readonly RecordingRow[],
  now: number,
  retentionDays: number,
  disk: { totalBytes: number; freeBytes: number },
  minFreePercent: number,
): Deletion[] {
  const out: Deletion[] = [];
  const cutoff = retentionDays > 0 ? now - retentionDays * 86_400_000 : -Infinity;
  const needFree = (disk.totalBytes * minFreePercent) / 100;
  let free = disk.freeBytes;
  for (const row of oldestFirst) {
    if (row.state !== 'complete' && row.state !== 'recovered') continue;
    const end = row.endMs ?? row.startMs;
    if (end < cutoff) out.push({ row, reason: 'age' });
    else if (free < needFree) out.push({ row, reason: 'free-space' });
    else break;
    free += row.bytes;
  }
  return out;
}

/** Runs retention now and then; deletes files and their rows together, logging each deletion. */
export class Retention {
  readonly name = 'retention';
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastRun: { at: number; deleted: number; freedBytes: number; error: string | null } | null = null;
  private totalDeleted = 0;
  private readonly recent: { at: number; file: string; stream: string; bytes: number; reason: Deletion['reason'] }[] = [];
  private tmpTimer: NodeJS.Timeout | null = null;
  private tmpLow: { at: number; freeBytes: number; freePercent: number } | null = null;

  constructor(
    private readonly conf: () => Conf,
    private readonly store: RecordingsStore,
    private readonly everyMs = 30_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.everyMs);
    this.tmpTimer = setInterval(() => void this.checkTmp(), TMP_CHECK_MS);
    void this.runOnce();
    void this.checkTmp();
  }

  /**
   * record_tmp_dir (a tmpfs) nearly full: warn in the log and in health. Muxers write there until a fragment
   * closes, so record_rotation is what bounds a fragment's size; this guard only makes the risk visible.
   */
  async checkTmp(): Promise<void> {
    const c = this.conf();
    const d = await diskUsage(c.record_tmp_dir).catch(() => null);
    if (!d) return;
    const low = d.freePercent < TMP_LOW_PERCENT || d.freeBytes < TMP_LOW_BYTES;
    if (low && !this.tmpLow) log.warn({ dir: c.record_tmp_dir, freeBytes: d.freeBytes, freePercent: d.freePercent }, 'record_tmp_dir is nearly full: recordings may stop; use record_rotation or a bigger tmpfs');
    if (!low && this.tmpLow) log.info({ dir: c.record_tmp_dir, freeBytes: d.freeBytes }, 'record_tmp_dir has space again');
    this.tmpLow = low ? { at: this.tmpLow?.at ?? Date.now(), freeBytes: d.freeBytes, freePercent: d.freePercent } : null;
  }

  /** One pass (also called when a write fails for lack of space). */
  runOnce(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  health(): Record<string, unknown> {
    return {
      retention: { lastRun: this.lastRun, totalDeleted: this.totalDeleted, recentDeletions: [...this.recent] },
      tmpSpace: this.tmpLow ? { warning: 'record_tmp_dir is nearly full', ...this.tmpLow } : { warning: null },
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.tmpTimer) clearInterval(this.tmpTimer);
    this.timer = null;
    this.tmpTimer = null;
    await this.running;
  }

  private async pass(): Promise<void> {
    const c = this.conf();
    let deleted = 0;
    let freedBytes = 0;
    try {
      for (let round = 0; round < 20; round++) {
        const disk = await diskUsage(c.record_dir);
        const rows = this.store.oldestComplete(500);
        const chosen = chooseDeletions(rows, Date.now(), c.record_retention_days, disk, c.record_min_free_percent);
        if (chosen.length === 0) break;
        for (const d of chosen) {
          await unlink(d.row.path).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
          this.store.delete(d.row.id);
          deleted++;
          freedBytes += d.row.bytes;
          log.info({ file: d.row.fileName, stream: d.row.streamName, bytes: d.row.bytes, reason: d.reason }, 'retention deleted a file');
          this.recent.push({ at: Date.now(), file: d.row.fileName, stream: d.row.streamName, bytes: d.row.bytes, reason: d.reason });
          if (this.recent.length > RECENT_KEPT) this.recent.shift();
        }
        if (chosen.length < rows.length) break;
      }
      this.lastRun = { at: Date.now(), deleted, freedBytes, error: null };
    } catch (err) {
      this.lastRun = { at: Date.now(), deleted, freedBytes, error: errMessage(err) };
      log.error({ reason: errMessage(err) }, 'retention pass failed');
    }
    this.totalDeleted += deleted;
  }
}
