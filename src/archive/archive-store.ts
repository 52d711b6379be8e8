import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db';
import { RECORDING_COLUMNS, type RecordingRow } from '../store/recordings';
import { AppError } from '../lib/errors';

/** Archive life of a finished file (the queue lives in the `archive` table, migration 2). */
export type ArchiveState = 'pending' | 'uploading' | 'archived' | 'failed';

/** The archive side of one recording. */
export interface ArchiveInfo {
  readonly recordingId: number;
  readonly state: ArchiveState;
  /** fixed before the first upload attempt, kept for life */
  readonly objectKey: string | null;
  readonly bytes: number;
  /** the ETag the store answered for the verified object */
  readonly etag: string | null;
  readonly attempts: number;
  /** failed: when it is tried again (epoch ms); null = not retried */
  readonly nextTryMs: number | null;
  readonly error: string | null;
  readonly queuedMs: number;
  readonly updatedMs: number;
  readonly archivedMs: number | null;
  /** the local copy was deleted (epoch ms); the file is only in the bucket */
  readonly localGoneMs: number | null;
}

/** A queued file with its recording row. */
export interface QueuedFile {
  readonly row: RecordingRow;
  readonly archive: ArchiveInfo;
}

/** Backlog: files not archived yet (pending, uploading, failed). */
export interface Backlog {
  readonly files: number;
  readonly bytes: number;
  /** start of the oldest file not archived (epoch ms), null when none */
  readonly oldestMs: number | null;
  readonly byState: Readonly<Record<ArchiveState, { count: number; bytes: number }>>;
}

/** A file served from the bucket (its local copy is gone). */
export interface ArchivedOnly {
  readonly recordingId: number;
  readonly fileName: string;
  readonly objectKey: string;
  readonly bytes: number;
  readonly etag: string | null;
  readonly archivedMs: number;
}

/** A local file as retention sees it, with its archive state (null: not queued). */
export interface LocalFile {
  readonly row: RecordingRow;
  readonly archiveState: ArchiveState | null;
}

const A_COLS = `a.recording_id AS recordingId, a.state AS state, a.object_key AS objectKey, a.bytes AS bytes, a.etag AS etag,
  a.attempts AS attempts, a.next_try_ms AS nextTryMs, a.error AS error, a.queued_ms AS queuedMs, a.updated_ms AS updatedMs,
  a.archived_ms AS archivedMs, r.local_gone_ms AS localGoneMs`;
const ROW_KEYS = ['id', ...Object.keys(RECORDING_COLUMNS)];
const STATES: readonly ArchiveState[] = ['pending', 'uploading', 'archived', 'failed'];

function splitRow(flat: Record<string, unknown>): RecordingRow {
  const row: Record<string, unknown> = {};
  for (const k of ROW_KEYS) row[k] = flat[`r_${k}`];
  return row as unknown as RecordingRow;
}

/** Queries over the archive queue. */
export class ArchiveStore {
  private readonly sReset: Statement;
  private readonly sResetKeys: Statement;
  private readonly sNextPending: Statement;
  private readonly sNextFailed: Statement;
  private readonly sQueued: Statement;
  private readonly sUploading: Statement;
  private readonly sKeyOwner: Statement;
  private readonly sArchived: Statement;
  private readonly sFailed: Statement;
  private readonly sLocalGone: Statement;
  private readonly sInfo: Statement;
  private readonly sStats: Statement;
  private readonly sOldest: Statement;
  private readonly sGoneByName: Statement;
  private readonly sGoneById: Statement;
  private readonly sLocalArchived: Statement;
  private readonly sLocal: Statement;
  private readonly sKeepLocal: Statement;
  private readonly sNextDue: Statement;

  constructor(private readonly db: Db) {
    const rPrefixed = `r.id AS r_id, ${Object.entries(RECORDING_COLUMNS)
      .map(([k, c]) => `r.${c} AS r_${k}`)
      .join(', ')}`;
    this.sResetKeys = db.prepare("SELECT object_key FROM archive INDEXED BY archive_backlog WHERE state = 'uploading' AND object_key IS NOT NULL").pluck();
    this.sReset = db.prepare(`UPDATE archive SET state = 'pending', updated_ms = @now WHERE state = 'uploading'`);
    this.sNextPending = db.prepare("SELECT recording_id FROM archive INDEXED BY archive_backlog WHERE state = 'pending' ORDER BY recording_id LIMIT 1").pluck();
    this.sNextFailed = db.prepare(
      "SELECT recording_id FROM archive INDEXED BY archive_backlog WHERE state = 'failed' AND next_try_ms <= ? ORDER BY recording_id LIMIT 1",
    ).pluck();
    this.sQueued = db.prepare(`SELECT ${A_COLS}, ${rPrefixed} FROM archive a JOIN recordings r ON r.id = a.recording_id WHERE a.recording_id = ?`);
    this.sNextDue = db.prepare("SELECT min(next_try_ms) FROM archive INDEXED BY archive_backlog WHERE state = 'failed' AND next_try_ms IS NOT NULL").pluck();
    this.sUploading = db.prepare(
      `UPDATE archive SET state = 'uploading', object_key = coalesce(object_key, @key), attempts = attempts + 1, error = NULL, next_try_ms = NULL,
        updated_ms = @now WHERE recording_id = @id RETURNING object_key`,
    ).pluck();
    this.sKeyOwner = db.prepare('SELECT recording_id FROM archive WHERE object_key = ?').pluck();
    this.sArchived = db.prepare(
      `UPDATE archive SET state = 'archived', etag = @etag, bytes = @bytes, error = NULL, next_try_ms = NULL, archived_ms = @now, updated_ms = @now
        WHERE recording_id = @id`,
    );
    this.sFailed = db.prepare(`UPDATE archive SET state = 'failed', error = @error, next_try_ms = @next, updated_ms = @now WHERE recording_id = @id`);
    this.sLocalGone = db.prepare('UPDATE recordings SET local_gone_ms = @now, updated_ms = @now WHERE id = @id');
    this.sInfo = db.prepare(`SELECT ${A_COLS} FROM archive a JOIN recordings r ON r.id = a.recording_id WHERE a.recording_id = ?`);
    this.sStats = db.prepare('SELECT state, count, bytes FROM archive_stats');
    this.sOldest = db.prepare(
      "SELECT r.start_ms FROM recordings r WHERE r.id = (SELECT min(recording_id) FROM archive INDEXED BY archive_backlog WHERE state IN ('pending', 'uploading', 'failed'))",
    ).pluck();
    this.sGoneByName = db.prepare(`SELECT r.id AS recordingId, r.file_name AS fileName, a.object_key AS objectKey, a.bytes AS bytes, a.etag AS etag,
        a.archived_ms AS archivedMs FROM recordings r INDEXED BY recordings_gone_name JOIN archive a ON a.recording_id = r.id
        WHERE r.file_name = ? AND r.local_gone_ms IS NOT NULL AND a.state = 'archived' ORDER BY r.id DESC LIMIT 1`);
    this.sGoneById = db.prepare(`SELECT r.id AS recordingId, r.file_name AS fileName, a.object_key AS objectKey, a.bytes AS bytes, a.etag AS etag,
        a.archived_ms AS archivedMs FROM recordings r JOIN archive a ON a.recording_id = r.id
        WHERE r.id = ? AND r.local_gone_ms IS NOT NULL AND a.state = 'archived'`);
    const localSelect = `SELECT ${rPrefixed}, a.state AS archiveState FROM recordings r INDEXED BY recordings_local_done_end`;
    const localWhere = "r.state IN ('complete', 'recovered') AND r.local_gone_ms IS NULL";
    this.sLocalArchived = db.prepare(`${localSelect} JOIN archive a ON a.recording_id = r.id AND a.state = 'archived' WHERE ${localWhere}
      ORDER BY r.end_ms, r.id LIMIT ?`);
    this.sLocal = db.prepare(`${localSelect} LEFT JOIN archive a ON a.recording_id = r.id WHERE ${localWhere} ORDER BY r.end_ms, r.id LIMIT ?`);
    this.sKeepLocal = db.prepare(`${localSelect} JOIN archive a ON a.recording_id = r.id AND a.state = 'archived' WHERE ${localWhere} AND r.end_ms < ?
      ORDER BY r.end_ms, r.id LIMIT ?`);
  }

  /** After a crash or stop: uploads that were running go back to pending (their keys kept); returns those keys. */
  resetUploading(): string[] {
    return this.db.transaction(() => {
      const keys = this.sResetKeys.all() as string[];
      this.sReset.run({ now: Date.now() });
      return keys;
    })();
  }

  /** The oldest file due for upload (pending, or failed and due), or null. */
  next(now = Date.now()): QueuedFile | null {
    const p = this.sNextPending.get() as number | undefined;
    const f = this.sNextFailed.get(now) as number | undefined;
    const id = p === undefined ? f : f === undefined ? p : Math.min(p, f);
    if (id === undefined) return null;
    const flat = this.sQueued.get(id) as Record<string, unknown> | undefined;
    if (!flat) return null;
    return { row: splitRow(flat), archive: flat as unknown as ArchiveInfo };
  }

  /** When the next failed file is due again (epoch ms), or null. */
  nextDueMs(): number | null {
    return (this.sNextDue.get() as number | null) ?? null;
  }

  /** The row that owns `key`, or null. */
  keyOwner(key: string): number | null {
    return (this.sKeyOwner.get(key) as number | undefined) ?? null;
  }

  /** Mark uploading; the object key is set only the first time. Returns the key to use (the one kept). */
  markUploading(id: number, key: string): string {
    const kept = this.sUploading.get({ id, key, now: Date.now() }) as string | undefined;
    if (kept === undefined) throw new AppError('INTERNAL', `archive: no queue row for recording ${id}`);
    return kept;
  }

  markArchived(id: number, etag: string, bytes: number): void {
    this.sArchived.run({ id, etag, bytes, now: Date.now() });
  }

  /** `nextTryMs` null: not retried (e.g. the local file is gone). */
  markFailed(id: number, error: string, nextTryMs: number | null): void {
    this.sFailed.run({ id, error: error.slice(0, 1000), next: nextTryMs, now: Date.now() });
  }

  /** The local copy was deleted; the row stays and the file is served from the bucket. */
  markLocalGone(id: number): void {
    this.sLocalGone.run({ id, now: Date.now() });
  }

  /** The archive side of a recording, or null when it is not queued. */
  info(recordingId: number): ArchiveInfo | null {
    return (this.sInfo.get(recordingId) as ArchiveInfo | undefined) ?? null;
  }

  /** Counts and bytes by state, and the backlog. */
  backlog(): Backlog {
    const byState = Object.fromEntries(STATES.map((s) => [s, { count: 0, bytes: 0 }])) as Record<ArchiveState, { count: number; bytes: number }>;
    for (const r of this.sStats.all() as { state: ArchiveState; count: number; bytes: number }[]) byState[r.state] = { count: r.count, bytes: r.bytes };
    const files = byState.pending.count + byState.uploading.count + byState.failed.count;
    const bytes = byState.pending.bytes + byState.uploading.bytes + byState.failed.bytes;
    const oldestMs = files > 0 ? ((this.sOldest.get() as number | undefined) ?? null) : null;
    return { files, bytes, oldestMs, byState };
  }

  /** The newest recording named `fileName` whose local copy is gone and which is archived, or null. */
  archivedOnly(fileName: string): ArchivedOnly | null {
    return (this.sGoneByName.get(fileName) as ArchivedOnly | undefined) ?? null;
  }

  /** Recording `id` when its local copy is gone and it is archived (playback reads it from the bucket), else null. */
  archivedOnlyById(id: number): ArchivedOnly | null {
    return (this.sGoneById.get(id) as ArchivedOnly | undefined) ?? null;
  }

  /** Local finished files that are archived, oldest end first. */
  localArchivedOldest(limit: number): LocalFile[] {
    return (this.sLocalArchived.all(limit) as Record<string, unknown>[]).map((f) => ({ row: splitRow(f), archiveState: f.archiveState as ArchiveState }));
  }

  /** Local finished files (archived or not), oldest end first. */
  localOldest(limit: number): LocalFile[] {
    return (this.sLocal.all(limit) as Record<string, unknown>[]).map((f) => ({ row: splitRow(f), archiveState: (f.archiveState as ArchiveState | null) ?? null }));
  }

  /** Local archived files that ended before `ms`, oldest first (archive_keep_local_days). */
  localArchivedEndedBefore(ms: number, limit: number): LocalFile[] {
    return (this.sKeepLocal.all(ms, limit) as Record<string, unknown>[]).map((f) => ({ row: splitRow(f), archiveState: 'archived' as const }));
  }
}
