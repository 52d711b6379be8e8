import { open } from 'node:fs/promises';
import type { ArchivedOnly } from '../archive/archive-store';
import { ObjectReader, PARSE_BLOCK } from '../archive/object-reader';
import type { S3Store } from '../archive/s3-store';
import { AppError, errMessage } from '../lib/errors';
import { log } from '../lib/log';
import { openSource, openSourceFrom, type SourceFile, type SourceHandle } from '../mp4/source';
import type { RecordingRow, RecordingsStore } from '../store/recordings';
import { buildTimeline, type Gap, type Timeline, type TimelineFile } from './timeline';

/** Rows read for one answer at most (1 h of 1 s files is 3600). */
const MAX_ROWS = 20_000;
/** Files parsed at once. */
const PARSE_CONCURRENCY = 8;

/** A recorded file used by an answer: where to read it. */
export interface PlayFile {
  readonly row: RecordingRow;
  /** the path parsed, or `archive:<object key>` for a file only in the archive */
  readonly path: string;
  /** kept open for a file being recorded (its tmp file may be finalized and removed meanwhile) */
  fh: SourceHandle | null;
  /** open it again to read its media (when fh is null) */
  readonly open: () => Promise<SourceHandle>;
}

/** Files whose local copy is gone are read from the archive bucket. */
export interface PlaybackArchive {
  /** recording `id` when it is only in the archive, else null */
  onlyArchived(id: number): ArchivedOnly | null;
  /** the store, or null when archiving is off or misconfigured */
  client(): S3Store | null;
}

/** What a playback answer is made of: the timeline and the files it reads. */
export interface Prepared {
  readonly timeline: Timeline;
  readonly files: readonly PlayFile[];
  /** gaps in [from, to) where nothing was recorded */
  readonly gaps: readonly Gap[];
  /** close what is still open; safe twice */
  close(): Promise<void>;
}

/** Every row of `stream` overlapping [fromMs, toMs), oldest first (bounded). */
export function rowsInRange(store: RecordingsStore, stream: string, fromMs: number, toMs: number): RecordingRow[] {
  const rows: RecordingRow[] = [];
  let after: string | undefined;
  for (let page = 0; page < MAX_ROWS / 1000; page++) {
    const p = store.list({ stream, from: fromMs, to: toMs, limit: 1000, after });
    rows.push(...p.rows);
    if (!p.next) return rows;
    after = p.next;
  }
  throw new AppError('BAD_REQUEST', `more than ${MAX_ROWS} files of stream "${stream}" in this range; ask for a shorter range`);
}

/** The nearest recorded files before and after [fromMs, toMs) (for a 404 that helps). */
export function nearest(store: RecordingsStore, stream: string, fromMs: number, toMs: number): { before: { start: number; end: number | null } | null; after: { start: number; end: number | null } | null } {
  const after = store.list({ stream, from: toMs, limit: 10 }).rows.find((r) => r.state !== 'failed') ?? null;
  let before: RecordingRow | null = null;
  // newest first by growing windows back from `from`: the first window holding a file has the nearest one
  for (const w of [600e3, 3600e3, 86400e3, 30 * 86400e3, 3650 * 86400e3]) {
    let rows: RecordingRow[];
    try {
      rows = rowsInRange(store, stream, Math.max(0, fromMs - w), fromMs).filter((r) => r.state !== 'failed');
    } catch {
      break; // too many files in the window: the nearest one before is not worth a scan of them all
    }
    for (const r of rows) if (!before || (r.endMs ?? r.startMs) > (before.endMs ?? before.startMs)) before = r;
    if (before) break;
  }
  const view = (r: RecordingRow | null) => (r ? { start: r.startMs, end: r.endMs } : null);
  return { before: view(before), after: view(after) };
}

/** The files to read: finished or recording MP4s, each one not wholly inside the previous one. */
export function usableRows(rows: readonly RecordingRow[], stream: string): RecordingRow[] {
  const ok = rows.filter((r) => r.state !== 'failed').sort((a, b) => a.startMs - b.startMs || a.id - b.id);
  const other = ok.filter((r) => r.container !== 'mp4');
  if (other.length > 0) {
    const kinds = [...new Set(other.map((r) => r.container))].join(' and ');
    throw new AppError(
      'UNSUPPORTED_MEDIA_TYPE',
      `stream "${stream}" has ${other.length} ${kinds} file(s) in this range: playback stitches MP4 recordings only (H.264/H.265 + AAC, format=mp4 or fmp4); ` +
        'download TS/WebM files whole from /rest-api/recordings',
    );
  }
  const out: RecordingRow[] = [];
  let reached = -Infinity;
  for (const r of ok) {
    const end = r.endMs ?? Infinity;
    if (end <= reached) continue;
    out.push(r);
    reached = Math.max(reached, end);
  }
  return out;
}

/** How openRow found a row: its parsed source, the name shown, and how to reopen it for its media. */
interface Opened {
  readonly src: SourceFile;
  readonly path: string;
  readonly open: () => Promise<SourceHandle>;
}

/** A file only in the archive: its boxes read through small ranged GETs; its media later through larger ones. */
async function openArchived(row: RecordingRow, a: ArchivedOnly, archive: PlaybackArchive, signal?: AbortSignal): Promise<Opened | null> {
  const s3 = archive.client();
  if (!s3) {
    throw new AppError('ARCHIVE_UNAVAILABLE', `${row.fileName} (in this range) is only in the archive, and archiving is off or misconfigured (archive_s3_*); see /rest-api/health`);
  }
  try {
    const src = await openSourceFrom(new ObjectReader(s3, a.objectKey, a.bytes, row.fileName, signal, PARSE_BLOCK), a.bytes);
    return { src, path: `archive:${a.objectKey}`, open: async () => new ObjectReader(s3, a.objectKey, a.bytes, row.fileName, signal) };
  } catch (err) {
    if (err instanceof AppError && err.code === 'ARCHIVE_UNAVAILABLE') throw err;
    if (signal?.aborted) throw err;
    log.warn({ component: 'playback', stream: row.streamName, file: row.fileName, key: a.objectKey, err: errMessage(err) }, 'an archived file cannot be read for playback; left out');
    return null;
  }
}

async function openRow(store: RecordingsStore, row: RecordingRow, archive?: PlaybackArchive, signal?: AbortSignal): Promise<Opened | null> {
  // a file whose local copy is gone is read from the bucket (its old path may hold a newer file of the same name)
  const a = archive?.onlyArchived(row.id);
  if (a) return openArchived(row, a, archive as PlaybackArchive, signal);
  const candidates = (r: RecordingRow) => (r.state === 'recording' || r.state === 'finalizing') && r.tmpPath ? [r.tmpPath, r.path] : [r.path];
  const tried = new Set<string>();
  // the row may move on while we read it (recording → finalizing → complete): look it up again once
  for (const r of [row, store.get(row.id)]) {
    if (!r) break;
    for (const path of candidates(r)) {
      if (tried.has(path)) continue;
      tried.add(path);
      try {
        return { src: await openSource(path), path, open: () => open(path, 'r') };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        log.warn({ component: 'playback', stream: row.streamName, file: row.fileName, err: errMessage(err) }, 'a recorded file cannot be read for playback; left out');
        return null;
      }
    }
  }
  // archived and deleted meanwhile (archive_keep_local_days): read it from the bucket
  const late = archive?.onlyArchived(row.id);
  if (late) return openArchived(row, late, archive as PlaybackArchive, signal);
  log.info({ component: 'playback', stream: row.streamName, file: row.fileName }, 'a recorded file is gone (deleted meanwhile); left out');
  return null;
}

/** Parse the files of `rows` and lay the samples of [fromMs, toMs) on one timeline. 404 when nothing plays. */
export async function preparePlayback(
  store: RecordingsStore,
  stream: string,
  rows: readonly RecordingRow[],
  fromMs: number,
  toMs: number,
  archive?: PlaybackArchive,
  signal?: AbortSignal,
): Promise<Prepared> {
  const opened: Array<(Opened & { row: RecordingRow }) | null> = new Array(rows.length).fill(null);
  let next = 0;
  let failed = false;
  const worker = async () => {
    for (let i = next++; i < rows.length && !failed; i = next++) {
      const row = rows[i] as RecordingRow;
      const o = await openRow(store, row, archive, signal);
      opened[i] = o ? { row, ...o } : null;
    }
  };
  const ends = await Promise.allSettled(Array.from({ length: Math.min(PARSE_CONCURRENCY, rows.length) }, () => worker().catch((err: unknown) => {
    failed = true;
    throw err;
  })));
  const bad = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected');
  if (bad) {
    // a file could not be read (the archive store is unreachable): close what the other workers opened
    await Promise.allSettled(opened.map((o) => o?.src.fh.close()));
    throw bad.reason;
  }
  const present = opened.filter((o): o is Opened & { row: RecordingRow } => o !== null);
  const files: PlayFile[] = [];
  const inputs: TimelineFile[] = [];
  for (const o of present) {
    // a finished file is reopened when read; a file being recorded keeps its handle (its tmp file may go away)
    const keep = o.src.fragmented && !o.path.startsWith('archive:');
    if (!keep) await o.src.fh.close();
    files.push({ row: o.row, path: o.path, fh: keep ? o.src.fh : null, open: o.open });
    inputs.push({ startMs: o.row.startMs, endMs: o.row.endMs, mediaSessionId: o.row.mediaSessionId, tracks: o.src.tracks });
  }
  const close = async () => {
    for (const f of files) {
      const fh = f.fh;
      f.fh = null;
      await fh?.close().catch(() => undefined);
    }
  };
  const timeline = buildTimeline(inputs, fromMs, toMs);
  if (!timeline) {
    await close();
    throw new AppError('NOT_FOUND', `nothing playable of stream "${stream}" in [${fromMs}, ${toMs}): its files there hold no samples yet`);
  }
  return { timeline, files, gaps: timeline.gaps, close };
}

/** Reads source bytes of the answer's files, one file open at a time (finished files are opened when needed). */
export class FileReader {
  private current = -1;
  private fh: SourceHandle | null = null;
  private owned = false;

  constructor(private readonly files: readonly PlayFile[]) {}

  /** `len` bytes at `src` of file `file` into `buf` at `at`. */
  async read(file: number, src: number, len: number, buf: Buffer, at: number): Promise<void> {
    if (file !== this.current) {
      await this.release();
      const f = this.files[file];
      if (!f) throw new AppError('INTERNAL', `no file ${file}`);
      if (f.fh) this.fh = f.fh;
      else {
        this.fh = await f.open();
        this.owned = true;
      }
      this.current = file;
    }
    const fh = this.fh as SourceHandle;
    let done = 0;
    for (let i = 0; done < len && i < 1_000_000; i++) {
      const { bytesRead } = await fh.read(buf, at + done, len - done, src + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < len) throw new AppError('INTERNAL', `${this.files[file]?.row.fileName ?? 'a file'} ended early: ${done} of ${len} bytes at ${src}`);
  }

  /** Close the file opened last (not the handles the answer keeps). */
  async release(): Promise<void> {
    if (this.owned) await this.fh?.close().catch(() => undefined);
    this.fh = null;
    this.owned = false;
    this.current = -1;
  }
}
