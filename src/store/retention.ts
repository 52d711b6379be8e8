import { unlink } from 'node:fs/promises';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { PeriodicPass } from '../lib/periodic-pass';
import { diskUsage } from '../system/disk';
import type { RecordingRow, RecordingsStore } from './recordings';

/** The archive queries retention needs (src/archive/archive-store.ts); absent = archive-blind retention. */
export interface RetentionArchive {
  /** local finished files, oldest end first, with their archive state */
  localOldest(limit: number): { row: RecordingRow; archiveState: string | null }[];
  /** local archived files, oldest end first */
  localArchivedOldest(limit: number): { row: RecordingRow }[];
  /** local archived files that ended before `ms` */
  localArchivedEndedBefore(ms: number, limit: number): { row: RecordingRow }[];
  /** the local copy of an archived file was deleted; its row stays */
  markLocalGone(id: number): void;
  /** archiving is on now (archive_s3_endpoint set) */
  enabled(): boolean;
}

/** A local deletion with archiving in mind: `keepRow` when the file is in the archive (the row then points there). */
export interface LocalDeletion {
  readonly row: RecordingRow;
  readonly reason: 'age' | 'free-space' | 'archived';
  readonly keepRow: boolean;
}

/** What chooseLocalDeletions looks at. */
export interface LocalChoiceInput {
  /** local finished files, oldest end first, with their archive state ('archived' or anything else) */
  readonly local: readonly { row: RecordingRow; archived: boolean }[];
  /** local archived files, oldest end first (may overlap `local`) */
  readonly archived: readonly RecordingRow[];
  readonly now: number;
  /** record_retention_days, 0 = off */
  readonly retentionDays: number;
  /** archive_keep_local_days, -1 = keep forever */
  readonly keepLocalDays: number;
  /** archiving on: an unarchived file is never deleted for its age (only for space, and last) */
  readonly archiving: boolean;
  readonly disk: { totalBytes: number; freeBytes: number };
  readonly minFreePercent: number;
}

/**
 * Pure choice with archiving: archived files past archive_keep_local_days (or record_retention_days) lose their
 * local copy and keep their row; an unarchived file is never deleted by archive_keep_local_days, nor by age while
 * archiving is on; for free space, archived local copies go first (oldest first), unarchived files last.
 */
export function chooseLocalDeletions(p: LocalChoiceInput): LocalDeletion[] {
  const out: LocalDeletion[] = [];
  const taken = new Set<number>();
  const day = 86_400_000;
  const ageCutoff = p.retentionDays > 0 ? p.now - p.retentionDays * day : -Infinity;
  const keepCutoff = p.archiving && p.keepLocalDays >= 0 ? p.now - p.keepLocalDays * day : -Infinity;
  let free = p.disk.freeBytes;
  const need = (p.disk.totalBytes * p.minFreePercent) / 100;
  const done = (r: RecordingRow) => r.state === 'complete' || r.state === 'recovered';
  const take = (row: RecordingRow, reason: LocalDeletion['reason'], keepRow: boolean) => {
    taken.add(row.id);
    out.push({ row, reason, keepRow });
    free += row.bytes;
  };
  const archivedIds = new Set(p.archiving ? p.archived.map((r) => r.id) : []);
  for (const x of p.local) if (p.archiving && x.archived) archivedIds.add(x.row.id);
  const all = [...(p.archiving ? p.archived : []), ...p.local.map((x) => x.row)];
  for (const row of all) {
    if (taken.has(row.id) || !done(row)) continue;
    const end = row.endMs ?? row.startMs;
    const isArchived = archivedIds.has(row.id);
    if (isArchived && end < keepCutoff) take(row, 'archived', true);
    else if (end < ageCutoff && (isArchived || !p.archiving)) take(row, 'age', isArchived);
  }
  for (const row of all) {
    if (free >= need) break;
    if (taken.has(row.id) || !done(row)) continue;
    // `all` lists archived copies first, so they go before any file not yet in the archive
    take(row, 'free-space', archivedIds.has(row.id));
  }
  return out;
}

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
  private readonly passes: PeriodicPass;
  private lastRun: { at: number; deleted: number; freedBytes: number; error: string | null } | null = null;
  private totalDeleted = 0;
  private readonly recent: { at: number; file: string; stream: string; bytes: number; reason: LocalDeletion['reason'] }[] = [];

  constructor(
    private readonly conf: () => Conf,
    private readonly store: RecordingsStore,
    everyMs = 30_000,
    /** archiving: which local files are archived, and marking a deleted one's row (null: archiving never built) */
    private readonly archive: RetentionArchive | null = null,
    /** the cut cache: swept first on each pass (cuts of deleted files, old cuts, over quota, low disk) */
    private readonly cuts: { sweep(): Promise<number> } | null = null,
  ) {
    this.passes = new PeriodicPass(() => this.pass(), { everyMs });
  }

  start(): void {
    this.passes.start();
  }

  /** One pass (also called when a write fails for lack of space). */
  runOnce(): Promise<void> {
    return this.passes.run();
  }

  health(): Record<string, unknown> {
    return {
      retention: { lastRun: this.lastRun, totalDeleted: this.totalDeleted, recentDeletions: [...this.recent] },
    };
  }

  close(): Promise<void> {
    return this.passes.close();
  }

  /** This round's deletions and how many rows were looked at. */
  private choose(c: Conf, disk: { totalBytes: number; freeBytes: number }): { chosen: LocalDeletion[]; seen: number } {
    const now = Date.now();
    if (!this.archive) {
      const rows = this.store.oldestComplete(500);
      const chosen = chooseDeletions(rows, now, c.record_retention_days, disk, c.record_min_free_percent).map((d) => ({ ...d, keepRow: false }));
      return { chosen, seen: rows.length };
    }
    const archiving = this.archive.enabled();
    const local = this.archive.localOldest(500).map((x) => ({ row: x.row, archived: x.archiveState === 'archived' }));
    const archived = archiving ? this.archive.localArchivedOldest(500).map((x) => x.row) : [];
    if (archiving && c.archive_keep_local_days >= 0) {
      for (const x of this.archive.localArchivedEndedBefore(now - c.archive_keep_local_days * 86_400_000, 500)) archived.push(x.row);
    }
    const chosen = chooseLocalDeletions({
      local, archived, now, retentionDays: c.record_retention_days, keepLocalDays: c.archive_keep_local_days, archiving, disk, minFreePercent: c.record_min_free_percent,
    });
    return { chosen, seen: local.length };
  }

  private async pass(): Promise<void> {
    const c = this.conf();
    let deleted = 0;
    let freedBytes = 0;
    try {
      await this.cuts?.sweep().catch((err: unknown) => log.error({ reason: errMessage(err) }, 'cut cache sweep failed'));
      for (let round = 0; round < 20; round++) {
        const disk = await diskUsage(c.record_dir);
        const { chosen, seen } = this.choose(c, disk);
        if (chosen.length === 0) break;
        for (const d of chosen) {
          await unlink(d.row.path).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
          if (d.keepRow && this.archive) this.archive.markLocalGone(d.row.id);
          else this.store.delete(d.row.id);
          deleted++;
          freedBytes += d.row.bytes;
          const archiveNote = !this.archive?.enabled() ? {} : { archived: d.keepRow, ...(d.keepRow ? {} : { warning: 'deleted before it was archived' }) };
          log.info({ file: d.row.fileName, stream: d.row.streamName, bytes: d.row.bytes, reason: d.reason, ...archiveNote }, d.keepRow ? 'retention deleted the local copy of an archived file' : 'retention deleted a file');
          this.recent.push({ at: Date.now(), file: d.row.fileName, stream: d.row.streamName, bytes: d.row.bytes, reason: d.reason });
          if (this.recent.length > RECENT_KEPT) this.recent.shift();
        }
        if (chosen.length < seen) break;
      }
      this.lastRun = { at: Date.now(), deleted, freedBytes, error: null };
    } catch (err) {
      this.lastRun = { at: Date.now(), deleted, freedBytes, error: errMessage(err) };
      log.error({ reason: errMessage(err) }, 'retention pass failed');
    }
    this.totalDeleted += deleted;
  }
}
