import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AppError } from '../../../src/lib/errors';
import { closeDb, openDb, type Db } from '../../../src/store/db';
import { SPAN_CLASSES, SPAN_CLASS_LIMITS_MS } from '../../../src/store/migrations';
import { encodeCursor, RecordingsStore, type ListQuery, type NewRecording, type RecordingRow } from '../../../src/store/recordings';

function open(t: TestContext): { db: Db; s: RecordingsStore } {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-list-'));
  const db = openDb(join(dir, 'index.db'));
  t.after(() => {
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, s: new RecordingsStore(db) };
}

function rec(stream: string, startMs: number, endMs: number | null, over: Partial<NewRecording> = {}): NewRecording {
  return {
    fileName: `${stream}_${startMs}.mp4`,
    path: `/rec/${stream}_${startMs}.mp4`,
    streamName: stream,
    mediaSessionId: `ms-${stream}`,
    sourceProtocol: 'rtsp',
    startMs,
    endMs,
    container: 'mp4',
    fragmentIndex: 1,
    state: endMs === null ? 'recording' : 'complete',
    ...over,
  };
}

/** Every page of q, following `next`; bounded so a cursor bug cannot loop forever. */
function allPages(s: RecordingsStore, q: ListQuery, between?: (page: number) => void): RecordingRow[] {
  const out: RecordingRow[] = [];
  let after: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const r = s.list({ ...q, after });
    assert.ok(r.rows.length <= (q.limit ?? 100));
    out.push(...r.rows);
    if (r.next === null) return out;
    assert.equal(r.rows.length, q.limit ?? 100, 'only the last page is short');
    after = r.next;
    between?.(page);
  }
  throw new Error('pagination did not end within 1000 pages');
}

const names = (rows: RecordingRow[]) => rows.map((r) => r.fileName);

test('overlap [from, to): boundaries, running files, stream and state filters', (t) => {
  const { s } = open(t);
  s.insert(rec('a', 900, 1000)); // ends exactly at from: out
  s.insert(rec('a', 2000, 2100)); // starts exactly at to: out
  s.insert(rec('a', 900, 1001)); // in
  s.insert(rec('a', 1999, 2500)); // in
  s.insert(rec('a', 0, 999)); // out
  s.insert(rec('b', 500, null)); // running since before from: in
  s.insert(rec('b', 2000, null)); // running, starts at to: out
  s.insert(rec('b', 500, 3000)); // spans the whole range: in
  s.insert(rec('c', 100, null, { state: 'failed' })); // no end known: overlaps everything after its start
  s.insert(rec('c', 1000, 1000, { state: 'failed' })); // empty file at from: [1000,1000) does not overlap
  s.insert(rec('c', 1500, 1600, { state: 'recovered' })); // in

  const q = { from: 1000, to: 2000, limit: 100 };
  assert.deepEqual(names(s.list(q).rows), ['c_100.mp4', 'b_500.mp4', 'b_500.mp4', 'a_900.mp4', 'c_1500.mp4', 'a_1999.mp4']);
  assert.deepEqual(
    s.list(q).rows.map((r) => [r.startMs, r.endMs]),
    [
      [100, null],
      [500, null],
      [500, 3000],
      [900, 1001],
      [1500, 1600],
      [1999, 2500],
    ],
  );
  assert.deepEqual(names(s.list({ ...q, stream: 'a' }).rows), ['a_900.mp4', 'a_1999.mp4']);
  assert.deepEqual(names(s.list({ ...q, stream: 'b' }).rows), ['b_500.mp4', 'b_500.mp4']);
  assert.deepEqual(names(s.list({ ...q, stream: 'zzz' }).rows), []);
  assert.deepEqual(names(s.list({ ...q, state: 'recording' }).rows), ['b_500.mp4']);
  assert.deepEqual(names(s.list({ ...q, state: 'recovered' }).rows), ['c_1500.mp4']);
  assert.deepEqual(names(s.list({ ...q, stream: 'c', state: 'failed' }).rows), ['c_100.mp4']);
  // open-ended sides
  assert.equal(s.list({ limit: 100 }).rows.length, 11);
  assert.deepEqual(names(s.list({ to: 500, limit: 100 }).rows), ['a_0.mp4', 'c_100.mp4']);
  assert.deepEqual(names(s.list({ from: 2500, limit: 100 }).rows), ['c_100.mp4', 'b_500.mp4', 'b_500.mp4', 'b_2000.mp4']);
});

test('files of every length class overlapping `from` are found, and only those', (t) => {
  const { s } = open(t);
  const T = 1_000 * 86_400_000;
  // 10 s files of a busy camera, and for each class limit L files of length L and L+1 ending just after /
  // exactly at T, one 30-day file (rotation disabled), and the same that ended 1 ms too early
  for (let i = 0; i < 50; i++) s.insert(rec('a', T - 25_000 + i * 10_000, T - 15_000 + i * 10_000));
  const want: number[] = [];
  for (const L of [...SPAN_CLASS_LIMITS_MS, 30 * 86_400_000]) {
    for (const len of [L, L + 1]) {
      want.push(len);
      s.insert(rec(`len${len}`, T + 1 - len, T + 1));
      s.insert(rec(`len${len}`, T - len, T)); // ends exactly at from
    }
  }
  const got = s.list({ from: T, to: T + 5000, limit: 1000 }).rows;
  assert.deepEqual(
    got.filter((r) => r.streamName !== 'a').map((r) => (r.endMs ?? 0) - r.startMs),
    want.sort((x, y) => y - x),
    'one file per length, longest (earliest start) first',
  );
  assert.deepEqual(
    got.filter((r) => r.streamName === 'a').map((r) => r.startMs),
    [T - 5000],
  );
  // paging through them one at a time gives the same rows
  assert.deepEqual(
    allPages(s, { from: T, to: T + 5000, limit: 1 }).map((r) => r.id),
    got.map((r) => r.id),
  );
  // after retention removes the long ones, the short ones are still exact
  for (const r of got) if (r.streamName !== 'a') s.delete(r.id);
  assert.deepEqual(
    s.list({ from: T, to: T + 5000, limit: 10 }).rows.map((r) => r.startMs),
    [T - 5000],
  );
});

test('pagination returns every row exactly once, in order, while rows are inserted and finished between pages', (t) => {
  const { s } = open(t);
  const streams = ['a', 'b', 'c'];
  const ids = new Set<number>();
  const running: number[] = [];
  for (let i = 0; i < 240; i++) {
    // several files share a start (same second, three streams): the id breaks the tie
    const start = 10_000 + Math.floor(i / 3) * 1000;
    const isOpen = i % 37 === 0;
    const id = s.insert(rec(streams[i % 3] ?? 'a', start, isOpen ? null : start + 1500));
    ids.add(id);
    if (isOpen) running.push(id);
  }
  let nextStart = 10_000 + 80 * 1000;
  const added = new Set<number>();
  const seen = allPages(s, { from: 10_000, limit: 7 }, (page) => {
    // what a live recorder does meanwhile: new files at the end, one at a start already paged, one finished
    added.add(s.insert(rec('d', nextStart, null)));
    added.add(s.insert(rec('d', 10_000 + page * 100, page * 100 + 12_000)));
    nextStart += 500;
    const r = running.shift();
    if (r !== undefined) s.update(r, { state: 'complete', endMs: 999_999 });
  });
  const seenIds = seen.map((r) => r.id);
  assert.equal(new Set(seenIds).size, seenIds.length, 'no row twice');
  for (const id of ids) assert.ok(seenIds.includes(id), `row ${id} present before paging is listed`);
  for (const id of seenIds) assert.ok(ids.has(id) || added.has(id));
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1];
    const b = seen[i];
    assert.ok(a && b && (a.startMs < b.startMs || (a.startMs === b.startMs && a.id < b.id)), 'ordered by (startMs, id)');
  }
  // and with a stream filter, across pages
  const onlyB = allPages(s, { stream: 'b', from: 10_000, to: 60_000, limit: 4 });
  assert.deepEqual(
    onlyB.map((r) => r.id),
    s
      .list({ stream: 'b', from: 10_000, to: 60_000, limit: 1000 })
      .rows.map((r) => r.id),
  );
  assert.ok(onlyB.length > 10 && onlyB.every((r) => r.streamName === 'b'));
  // running files started in the same ms (cameras started together) split across pages
  const together = [0, 1, 2, 3, 4].map((i) => s.insert(rec(`e${i}`, 5_000, null)));
  const page = allPages(s, { to: 5_001, limit: 2 }).map((r) => r.id);
  assert.deepEqual(page, together);
});

test('EXPLAIN QUERY PLAN: every query is an index search in index order; list shapes merge two ranges', (t) => {
  const { db, s } = open(t);
  const insertMany = db.transaction(() => {
    for (let i = 0; i < 5000; i++) s.insert(rec(`s${i % 16}`, i * 1000, i % 500 === 0 ? null : i * 1000 + 10_000, { tmpPath: i % 500 === 0 ? `/tmp/${i}` : null }));
  });
  insertMany();
  db.exec('ANALYZE'); // plans must hold with statistics too (closeDb runs PRAGMA optimize)
  const plans = s.explain();
  const show = (name: string) => `${name}: ${(plans[name] ?? []).join(' | ')}`;
  for (const [name, stream, state] of [
    ['list', false, false],
    ['list:stream', true, false],
    ['list:state', false, true],
    ['list:stream:state', true, true],
  ] as const) {
    const plan = plans[name] ?? [];
    const index = `recordings_list${stream ? '_stream' : ''}${state ? '_state' : ''}`;
    const eq = `${stream ? 'stream_name=? AND ' : ''}${state ? 'state=? AND ' : ''}`;
    const search = `SEARCH recordings USING INDEX ${index} (${eq}span_class=? AND start_ms>? AND start_ms<?)`;
    assert.equal(plan.filter((d) => d === search).length, SPAN_CLASSES, show(name));
    assert.equal(plan.filter((d) => d === 'SEARCH recordings USING INDEX recordings_open (start_ms>? AND start_ms<?)').length, 1, show(name));
    assert.equal(plan.filter((d) => d.startsWith('SEARCH')).length, SPAN_CLASSES + 1, show(name));
    assert.ok(plan.filter((d) => d !== 'LEFT' && d !== 'RIGHT' && !d.startsWith('SEARCH')).every((d) => d === 'MERGE (UNION ALL)'), show(name));
  }
  assert.deepEqual(plans.oldestComplete, ['SCAN recordings USING INDEX recordings_done_end'], show('oldestComplete'));
  assert.deepEqual(plans.completeOlderThan, ['SEARCH recordings USING INDEX recordings_done_end (end_ms<?)'], show('completeOlderThan'));
  assert.deepEqual(plans.findByTmpPath, ['SEARCH recordings USING INDEX recordings_tmp_path (tmp_path=?)'], show('findByTmpPath'));
  assert.deepEqual(plans.maxSpan, ['SCAN recordings USING INDEX recordings_span'], show('maxSpan'));
  assert.ok(plans.listUnfinished?.[0]?.startsWith('SEARCH recordings USING INDEX recordings_list_state (state=?)'), show('listUnfinished'));
  for (const name of Object.keys(plans)) {
    // a SCAN of an index is only allowed where it is read in order and stopped by LIMIT (done_end, span)
    assert.ok(!(plans[name] ?? []).some((d) => /^SCAN recordings$|^SCAN recordings USING INDEX recordings_list/.test(d)), show(name));
    if (name !== 'listUnfinished') assert.ok(!(plans[name] ?? []).some((d) => /TEMP B-TREE/.test(d)), show(name));
  }
});

test('a bad cursor or limit is a BAD_REQUEST naming the parameter', (t) => {
  const { s } = open(t);
  s.insert(rec('a', 1, 2));
  const isBadCursor = (e: unknown) => e instanceof AppError && e.code === 'BAD_REQUEST' && e.message === 'after: not a cursor this server issued';
  const good = encodeCursor(5, 7);
  for (const after of ['', 'nonsense!', Buffer.from('abc').toString('base64url'), Buffer.from('1:2:3').toString('base64url'), `${good}=`, Buffer.from('1.5:2').toString('base64url'), Buffer.from('99999999999999999:1').toString('base64url')]) {
    assert.throws(() => s.list({ limit: 10, after }), isBadCursor, JSON.stringify(after));
  }
  assert.deepEqual(s.list({ limit: 10, after: encodeCursor(0, 0) }).rows.length, 1);
  assert.deepEqual(s.list({ limit: 10, after: encodeCursor(1, 1) }).rows.length, 0);
  for (const limit of [0, 1001, 1.5, Number.NaN]) {
    assert.throws(() => s.list({ limit }), (e: unknown) => e instanceof AppError && e.code === 'BAD_REQUEST' && /^limit: an integer from 1 to 1000/.test(e.message));
  }
  assert.equal(s.list({}).rows.length, 1, 'limit defaults to 100');
});
