import { unlink } from 'node:fs/promises';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { diskUsage } from '../system/disk';
import type { RecordingRow, RecordingsStore } from './recordings';

const log = rootLog.child({ component: 'retention' });
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

  constructor(
    private readonly conf: () => Conf,
    private readonly store: RecordingsStore,
    private readonly everyMs = 30_000,
    /** the cut cache: swept first on each pass (cuts of deleted files, old cuts, over quota, low disk) */
    private readonly cuts: { sweep(): Promise<number> } | null = null,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.everyMs);
    void this.runOnce();
  }

  /** One pass (also called when a write fails for lack of space). */
  runOnce(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  health(): Record<string, unknown> {
    return {
      retention: { lastRun: this.lastRun, totalDeleted: this.totalDeleted, recentDeletions: [...this.recent] },
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private async pass(): Promise<void> {
    const c = this.conf();
    let deleted = 0;
    let freedBytes = 0;
    try {
      await this.cuts?.sweep().catch((err: unknown) => log.error({ reason: errMessage(err) }, 'cut cache sweep failed'));
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
