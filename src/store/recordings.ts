import type { Statement } from 'better-sqlite3';
import { AppError } from '../lib/errors';
import type { Container, SourceProtocol } from '../pipeline/types';
import type { Db } from './db';
import { SPAN_CLASS_LIMITS_MS, SPAN_CLASSES } from './migrations';

/** Life of a file: written → being moved/remuxed → done; or rebuilt after a crash; or given up. */
export type RecordingState = 'recording' | 'finalizing' | 'complete' | 'recovered' | 'failed';

/** One indexed file (times in epoch ms). */
export interface RecordingRow {
  readonly id: number;
  /** current name; while recording it may still hold unfilled template elements such as {endTime} */
  readonly fileName: string;
  /** final absolute path in record_dir once complete; the tmp path while recording */
  readonly path: string;
  readonly tmpPath: string | null;
  readonly streamName: string;
  readonly mediaSessionId: string;
  readonly sourceProtocol: SourceProtocol;
  readonly startMs: number;
  /** null while recording */
  readonly endMs: number | null;
  readonly durationMs: number | null;
  readonly bytes: number;
  readonly audioCodec: string | null;
  readonly videoCodec: string | null;
  readonly container: Container;
  readonly fragmentIndex: number;
  readonly state: RecordingState;
  readonly error: string | null;
  readonly createdMs: number;
  readonly updatedMs: number;
}

/** What insert() takes: the row without id and timestamps; optional fields default to null (bytes to 0). */
export type NewRecording = Omit<RecordingRow, 'id' | 'createdMs' | 'updatedMs' | 'tmpPath' | 'endMs' | 'durationMs' | 'bytes' | 'audioCodec' | 'videoCodec' | 'error'> &
  Partial<Pick<RecordingRow, 'tmpPath' | 'endMs' | 'durationMs' | 'bytes' | 'audioCodec' | 'videoCodec' | 'error'>>;

/** Fields update() may change; updatedMs is set by the store. */
export type RecordingPatch = Partial<Omit<RecordingRow, 'id' | 'createdMs' | 'updatedMs'>>;

/** A list() query: files overlapping [from, to), oldest start first. */
export interface ListQuery {
  readonly stream?: string;
  /** epoch ms, inclusive */
  readonly from?: number;
  /** epoch ms, exclusive */
  readonly to?: number;
  readonly state?: RecordingState;
  /** 1..1000, default 100 */
  readonly limit?: number;
  /** the `next` of the previous page */
  readonly after?: string;
}

/** One page of list(); `next` is null on the last page. */
export interface ListPage {
  readonly rows: RecordingRow[];
  readonly next: string | null;
}

const COLUMNS: Record<keyof Omit<RecordingRow, 'id'>, string> = {
  fileName: 'file_name',
  path: 'path',
  tmpPath: 'tmp_path',
  streamName: 'stream_name',
  mediaSessionId: 'media_session_id',
  sourceProtocol: 'source_protocol',
  startMs: 'start_ms',
  endMs: 'end_ms',
  durationMs: 'duration_ms',
  bytes: 'bytes',
  audioCodec: 'audio_codec',
  videoCodec: 'video_codec',
  container: 'container',
  fragmentIndex: 'fragment_index',
  state: 'state',
  error: 'error',
  createdMs: 'created_ms',
  updatedMs: 'updated_ms',
};
const PATCHABLE = new Set(Object.keys(COLUMNS).filter((k) => k !== 'createdMs' && k !== 'updatedMs'));
const SELECT = `SELECT id, ${Object.entries(COLUMNS)
  .map(([k, c]) => `${c} AS ${k}`)
  .join(', ')} FROM recordings`;
const STATE_NAMES: readonly RecordingState[] = ['recording', 'finalizing', 'complete', 'recovered', 'failed'];
const MIN = Number.MIN_SAFE_INTEGER;
const MAX = Number.MAX_SAFE_INTEGER;
const BAD_CURSOR = 'after: not a cursor this server issued';

/** The opaque keyset cursor of a row: base64url of "startMs:id". */
export function encodeCursor(startMs: number, id: number): string {
  return Buffer.from(`${startMs}:${id}`).toString('base64url');
}

/** [startMs, id] of a cursor from encodeCursor(); throws BAD_REQUEST for anything else. */
export function decodeCursor(cursor: string): [number, number] {
  const m = /^(-?\d{1,16}):(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  const startMs = Number(m?.[1]);
  const id = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(startMs) || !Number.isSafeInteger(id) || encodeCursor(startMs, id) !== cursor) {
    throw new AppError('BAD_REQUEST', BAD_CURSOR);
  }
  return [startMs, id];
}

/** Prepared queries over the recordings index (the schema is in migrations.ts). */
export class RecordingsStore {
  private readonly sInsert: Statement;
  private readonly sGet: Statement;
  private readonly sByTmp: Statement;
  private readonly sDelete: Statement;
  private readonly sUnfinished: Statement;
  private readonly sOldestDone: Statement;
  private readonly sDoneBefore: Statement;
  private readonly sStats: Statement;
  private readonly sMaxSpan: Statement;
  private readonly updates = new Map<string, Statement>();
  private readonly lists = new Map<string, Statement>();

  constructor(private readonly db: Db) {
    const cols = Object.values(COLUMNS);
    this.sInsert = db.prepare(`INSERT INTO recordings (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
    this.sGet = db.prepare(`${SELECT} WHERE id = ?`);
    this.sByTmp = db.prepare(`${SELECT} INDEXED BY recordings_tmp_path WHERE tmp_path = ? ORDER BY id DESC LIMIT 1`);
    this.sDelete = db.prepare('DELETE FROM recordings WHERE id = ?');
    this.sUnfinished = db.prepare(`${SELECT} INDEXED BY recordings_list_state WHERE state IN ('recording', 'finalizing') ORDER BY start_ms, id`);
    this.sOldestDone = db.prepare(`${SELECT} INDEXED BY recordings_done_end WHERE state IN ('complete', 'recovered') ORDER BY end_ms, id LIMIT ?`);
    this.sDoneBefore = db.prepare(`${SELECT} INDEXED BY recordings_done_end WHERE state IN ('complete', 'recovered') AND end_ms < ? ORDER BY end_ms, id LIMIT ?`);
    this.sStats = db.prepare('SELECT state, count, bytes FROM recording_stats');
    this.sMaxSpan = db.prepare('SELECT end_ms - start_ms AS span FROM recordings INDEXED BY recordings_span WHERE end_ms IS NOT NULL ORDER BY end_ms - start_ms DESC LIMIT 1').pluck();
  }

  /** Add a row; returns its id. */
  insert(row: NewRecording): number {
    const now = Date.now();
    const params: Record<string, unknown> = {
      tmp_path: null,
      end_ms: null,
      duration_ms: null,
      bytes: 0,
      audio_codec: null,
      video_codec: null,
      error: null,
      created_ms: now,
      updated_ms: now,
    };
    for (const [k, v] of Object.entries(row)) {
      const col = COLUMNS[k as keyof typeof COLUMNS];
      if (col && v !== undefined) params[col] = v;
    }
    return Number(this.sInsert.run(params).lastInsertRowid);
  }

  /** Change the given fields (undefined ones are left alone); false when no row has that id. */
  update(id: number, patch: RecordingPatch): boolean {
    const keys = Object.keys(patch)
      .filter((k) => (patch as Record<string, unknown>)[k] !== undefined)
      .sort();
    for (const k of keys) if (!PATCHABLE.has(k)) throw new AppError('INTERNAL', `update: unknown recording field "${k}"; allowed: ${[...PATCHABLE].join(', ')}`);
    const sig = keys.join(',');
    let st = this.updates.get(sig);
    if (!st) {
      const sets = keys.map((k) => `${COLUMNS[k as keyof typeof COLUMNS]} = @${k}`);
      st = this.db.prepare(`UPDATE recordings SET ${[...sets, 'updated_ms = @updatedMs'].join(', ')} WHERE id = @id`);
      this.updates.set(sig, st);
    }
    const params: Record<string, unknown> = { id, updatedMs: Date.now() };
    for (const k of keys) params[k] = (patch as Record<string, unknown>)[k];
    return st.run(params).changes > 0;
  }

  /** The row with that id, or null. */
  get(id: number): RecordingRow | null {
    return (this.sGet.get(id) as RecordingRow | undefined) ?? null;
  }

  /** The newest row whose tmp_path is `p` (crash recovery), or null. */
  findByTmpPath(p: string): RecordingRow | null {
    return (this.sByTmp.get(p) as RecordingRow | undefined) ?? null;
  }

  /**
   * Files overlapping [from, to) — start < to and (end ?? +inf) > from — optionally of one stream and state,
   * ordered by (startMs, id), keyset-paginated: a page never repeats or skips a row that existed when
   * the first page was read, whatever is inserted between pages.
   */
  list(q: ListQuery): ListPage {
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AppError('BAD_REQUEST', `limit: an integer from 1 to 1000 is expected, got ${limit}`);
    const from = q.from ?? MIN;
    const to = q.to ?? MAX;
    const cursor: [number, number] = q.after !== undefined ? decodeCursor(q.after) : [MIN, MIN];
    const params: Record<string, unknown> = { stream: q.stream ?? null, state: q.state ?? null, from, to, cs: cursor[0], cid: cursor[1], n: limit + 1 };
    // A finished row of class c overlapping `from` started at most the class limit before it: start there.
    const longest = q.from !== undefined ? Math.max(0, Number(this.sMaxSpan.get() ?? 0)) : 0;
    for (let c = 0; c < SPAN_CLASSES; c++) {
      const lo = q.from === undefined ? MIN : from - Math.min(SPAN_CLASS_LIMITS_MS[c] ?? longest, longest);
      const key = lo > cursor[0] ? [lo, MIN] : cursor;
      params[`k${c}s`] = key[0];
      params[`k${c}id`] = key[1];
    }
    const rows = this.listStatement(q.stream !== undefined, q.state !== undefined).all(params) as RecordingRow[];
    if (rows.length <= limit) return { rows, next: null };
    rows.length = limit;
    const last = rows[limit - 1];
    return { rows, next: last ? encodeCursor(last.startMs, last.id) : null };
  }

  /** EXPLAIN QUERY PLAN lines of every query, by name (list shapes as list[:stream][:state]); for tests and diagnostics. */
  explain(): Record<string, string[]> {
    const params: Record<string, unknown> = { stream: 's', state: 'complete', from: 0, to: 1, cs: 0, cid: 0, n: 1 };
    for (let c = 0; c < SPAN_CLASSES; c++) Object.assign(params, { [`k${c}s`]: 0, [`k${c}id`]: 0 });
    const plan = (st: Statement, args: unknown[]) => (this.db.prepare(`EXPLAIN QUERY PLAN ${st.source}`).all(...args) as { detail: string }[]).map((r) => r.detail);
    const out: Record<string, string[]> = {
      oldestComplete: plan(this.sOldestDone, [1]),
      completeOlderThan: plan(this.sDoneBefore, [1, 1]),
      listUnfinished: plan(this.sUnfinished, []),
      findByTmpPath: plan(this.sByTmp, ['p']),
      maxSpan: plan(this.sMaxSpan, []),
    };
    for (const byStream of [false, true]) {
      for (const byState of [false, true]) out[`list${byStream ? ':stream' : ''}${byState ? ':state' : ''}`] = plan(this.listStatement(byStream, byState), [params]);
    }
    return out;
  }

  /** Rows left in recording or finalizing (to recover at start), oldest first. */
  listUnfinished(): RecordingRow[] {
    return this.sUnfinished.all() as RecordingRow[];
  }

  /** Up to `limit` finished files (complete or recovered), oldest end first — what retention deletes next. */
  oldestComplete(limit: number): RecordingRow[] {
    return this.sOldestDone.all(limit) as RecordingRow[];
  }

  /** Up to `limit` finished files that ended before `ms` (epoch), oldest end first. */
  completeOlderThan(ms: number, limit: number): RecordingRow[] {
    return this.sDoneBefore.all(ms, limit) as RecordingRow[];
  }

  /** Remove a row; false when there was none. */
  delete(id: number): boolean {
    return this.sDelete.run(id).changes > 0;
  }

  /** Number of rows per state (every state present, 0 when none). */
  countByState(): Record<RecordingState, number> {
    const out = Object.fromEntries(STATE_NAMES.map((s) => [s, 0])) as Record<RecordingState, number>;
    for (const r of this.sStats.all() as { state: RecordingState; count: number }[]) out[r.state] = r.count;
    return out;
  }

  /** Sum of bytes over every row. */
  totalBytes(): number {
    let sum = 0;
    for (const r of this.sStats.all() as { bytes: number }[]) sum += r.bytes;
    return sum;
  }

  private listStatement(byStream: boolean, byState: boolean): Statement {
    const sig = `${byStream}:${byState}`;
    let st = this.lists.get(sig);
    if (st) return st;
    const filter = `${byStream ? ' AND stream_name = @stream' : ''}${byState ? ' AND state = @state' : ''}`;
    const index = `recordings_list${byStream ? '_stream' : ''}${byState ? '_state' : ''}`;
    // One ordered index range per span class plus the open rows, merged lazily by SQLite (MERGE UNION ALL) and
    // cut by LIMIT; the arms are disjoint (span_class is null exactly when end_ms is). INDEXED BY pins the plan
    // the unit test checks, whatever statistics PRAGMA optimize gathers later.
    const arms = Array.from(
      { length: SPAN_CLASSES },
      (_, c) => `${SELECT} INDEXED BY ${index}
        WHERE span_class = ${c} AND (start_ms, id) > (@k${c}s, @k${c}id) AND start_ms < @to AND end_ms > @from${filter}`,
    );
    arms.push(`${SELECT} INDEXED BY recordings_open
        WHERE end_ms IS NULL AND (start_ms, id) > (@cs, @cid) AND start_ms < @to${filter}`);
    st = this.db.prepare(`${arms.join('\n      UNION ALL\n      ')}
      ORDER BY startMs, id LIMIT @n`);
    this.lists.set(sig, st);
    return st;
  }
}

/** The column of each RecordingRow field (other stores joining recordings select rows with it). */
export const RECORDING_COLUMNS: Readonly<Record<keyof Omit<RecordingRow, 'id'>, string>> = COLUMNS;
