import type { Db } from './db';

/** One cut file edgerec made (times in epoch ms; start/end in tenths of a second, -1 = absent). */
export interface CutRow {
  readonly id: number;
  /** real path of the recording it was cut from */
  readonly sourcePath: string;
  readonly startDs: number;
  readonly endDs: number;
  /** absolute path of the cut in mp4_cutter_dir */
  readonly path: string;
  readonly bytes: number;
  /** inode, size and ctime once written (any later write, utimes, link or chmod changes ctime): a file that differs is not ours */
  readonly ino: number;
  readonly ctimeMs: number;
  readonly createdMs: number;
  readonly usedMs: number;
}

/** What put() takes. */
export type NewCut = Omit<CutRow, 'id' | 'usedMs'>;

const SELECT = `SELECT id, source_path AS sourcePath, start_ds AS startDs, end_ds AS endDs, path, bytes, ino, ctime_ms AS ctimeMs,
  created_ms AS createdMs, used_ms AS usedMs FROM cuts`;

/** The cut cache index (table `cuts`). */
export class CutsStore {
  private readonly byKey;
  private readonly byPath;
  private readonly insert;
  private readonly touchStmt;
  private readonly del;
  private readonly lru;
  private readonly totalsStmt;

  constructor(db: Db) {
    this.byKey = db.prepare(`${SELECT} WHERE source_path = ? AND start_ds = ? AND end_ds = ?`);
    this.byPath = db.prepare(`${SELECT} WHERE path = ?`);
    this.insert = db.prepare(
      `INSERT INTO cuts (source_path, start_ds, end_ds, path, bytes, ino, ctime_ms, created_ms, used_ms)
       VALUES (@sourcePath, @startDs, @endDs, @path, @bytes, @ino, @ctimeMs, @createdMs, @createdMs)
       ON CONFLICT DO NOTHING`,
    );
    this.touchStmt = db.prepare('UPDATE cuts SET used_ms = ? WHERE id = ?');
    this.del = db.prepare('DELETE FROM cuts WHERE id = ?');
    this.lru = db.prepare(`${SELECT} ORDER BY used_ms, id LIMIT ?`);
    this.totalsStmt = db.prepare('SELECT count(*) AS count, coalesce(sum(bytes), 0) AS bytes FROM cuts');
  }

  /** The cut of this source and range, if one was made. */
  get(sourcePath: string, startDs: number, endDs: number): CutRow | null {
    return (this.byKey.get(sourcePath, startDs, endDs) as CutRow | undefined) ?? null;
  }

  /** The cut at this path, if it is one of ours. */
  atPath(path: string): CutRow | null {
    return (this.byPath.get(path) as CutRow | undefined) ?? null;
  }

  /** Index a cut just written; false when a row for its key or path exists already. */
  put(row: NewCut): boolean {
    return this.insert.run(row).changes === 1;
  }

  /** Mark a cut as used now (LRU order). */
  touch(id: number, now = Date.now()): void {
    this.touchStmt.run(now, id);
  }

  delete(id: number): void {
    this.del.run(id);
  }

  /** Least recently used first. */
  leastRecentlyUsed(limit: number): CutRow[] {
    return this.lru.all(limit) as CutRow[];
  }

  /** How many cuts and their bytes. */
  totals(): { count: number; bytes: number } {
    return this.totalsStmt.get() as { count: number; bytes: number };
  }
}

/**
 * Pure choice of the cuts to evict, least recently used first, so that `incoming` more bytes fit under `maxBytes`
 * and the count stays under `maxCount` (`incomingCount` files to come).
 */
export function chooseCutEvictions(
  lruFirst: readonly CutRow[],
  total: { count: number; bytes: number },
  limits: { maxBytes: number; maxCount: number },
  incoming: { bytes: number; count: number },
): CutRow[] {
  const out: CutRow[] = [];
  let bytes = total.bytes + incoming.bytes;
  let count = total.count + incoming.count;
  for (const row of lruFirst) {
    if (bytes <= limits.maxBytes && count <= limits.maxCount) break;
    out.push(row);
    bytes -= row.bytes;
    count--;
  }
  return out;
}
