import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { closeDb, openDb } from '../../../src/store/db';
import { RecordingsStore, type NewRecording } from '../../../src/store/recordings';

function openStore(t: TestContext): RecordingsStore {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-rec-'));
  const db = openDb(join(dir, 'index.db'));
  t.after(() => {
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
  });
  return new RecordingsStore(db);
}

const T0 = 1_700_000_000_000;
function rec(over: Partial<NewRecording> = {}): NewRecording {
  return {
    fileName: 'cam1_{endTime}.mp4',
    path: '/tmp/edgerec/cam1_1.mp4',
    tmpPath: '/tmp/edgerec/cam1_1.mp4',
    streamName: 'cam1',
    mediaSessionId: 'ms-1',
    sourceProtocol: 'rtsp',
    startMs: T0,
    audioCodec: 'AAC',
    videoCodec: 'H264',
    container: 'mp4',
    fragmentIndex: 1,
    state: 'recording',
    ...over,
  };
}

test('insert → get returns the camelCase row with defaults; finalize by update', (t) => {
  const s = openStore(t);
  const before = Date.now();
  const id = s.insert(rec());
  const row = s.get(id);
  assert.ok(row);
  assert.deepEqual(
    { ...row, createdMs: 0, updatedMs: 0 },
    { ...rec(), id, endMs: null, durationMs: null, bytes: 0, error: null, createdMs: 0, updatedMs: 0 },
  );
  assert.ok(row.createdMs >= before && row.updatedMs === row.createdMs);

  assert.equal(s.update(id, { state: 'finalizing', endMs: T0 + 10_000 }), true);
  assert.equal(s.get(id)?.state, 'finalizing');
  assert.equal(
    s.update(id, { state: 'complete', fileName: 'cam1_x.mp4', path: '/rec/cam1_x.mp4', tmpPath: null, durationMs: 10_000, bytes: 5_000, error: undefined }),
    true,
  );
  const done = s.get(id);
  assert.equal(done?.state, 'complete');
  assert.equal(done?.path, '/rec/cam1_x.mp4');
  assert.equal(done?.tmpPath, null);
  assert.equal(done?.endMs, T0 + 10_000);
  assert.equal(done?.videoCodec, 'H264', 'fields not in the patch are kept');
  assert.equal(s.update(9999, { bytes: 1 }), false);
  assert.equal(s.get(9999), null);
});

test('update refuses unknown fields and values the schema forbids', (t) => {
  const s = openStore(t);
  const id = s.insert(rec());
  assert.throws(() => s.update(id, { nope: 1 } as never), /unknown recording field "nope"/);
  assert.throws(() => s.update(id, { state: 'done' as never }), /CHECK constraint failed/);
  assert.throws(() => s.update(id, { endMs: T0 - 1 }), /CHECK constraint failed/, 'end before start');
  assert.throws(() => s.insert(rec({ container: 'avi' as never })), /CHECK constraint failed/);
  assert.equal(s.get(id)?.state, 'recording');
});

test('findByTmpPath and listUnfinished', (t) => {
  const s = openStore(t);
  const a = s.insert(rec({ tmpPath: '/tmp/a.mp4', startMs: T0 + 2 }));
  const b = s.insert(rec({ tmpPath: '/tmp/b.mp4', startMs: T0 + 1, state: 'finalizing', endMs: T0 + 5 }));
  const c = s.insert(rec({ tmpPath: null, startMs: T0, state: 'complete', endMs: T0 + 5 }));
  assert.equal(s.findByTmpPath('/tmp/a.mp4')?.id, a);
  assert.equal(s.findByTmpPath('/tmp/b.mp4')?.id, b);
  assert.equal(s.findByTmpPath('/tmp/zzz.mp4'), null);
  assert.deepEqual(
    s.listUnfinished().map((r) => r.id),
    [b, a],
  );
  s.update(a, { state: 'failed', error: 'no media' });
  assert.deepEqual(
    s.listUnfinished().map((r) => r.id),
    [b],
  );
  assert.equal(s.get(c)?.state, 'complete');
});

test('retention: oldestComplete and completeOlderThan take finished files by end, never running or failed ones', (t) => {
  const s = openStore(t);
  const ids: number[] = [];
  for (let i = 0; i < 6; i++) {
    const state = i === 4 ? 'recovered' : 'complete';
    ids.push(s.insert(rec({ startMs: T0 + i * 10_000, endMs: T0 + (i + 1) * 10_000, state })));
  }
  s.insert(rec({ startMs: T0 - 50_000, state: 'recording' }));
  s.insert(rec({ startMs: T0 - 40_000, endMs: T0 - 30_000, state: 'failed' }));
  s.insert(rec({ startMs: T0 - 40_000, endMs: T0 - 30_000, state: 'finalizing' }));
  // out of start order: ends first although inserted last
  const early = s.insert(rec({ startMs: T0 - 20_000, endMs: T0 - 10_000, state: 'complete' }));
  assert.deepEqual(
    s.oldestComplete(3).map((r) => r.id),
    [early, ids[0], ids[1]],
  );
  assert.deepEqual(
    s.completeOlderThan(T0 + 30_000, 100).map((r) => r.id),
    [early, ids[0], ids[1]],
    'end_ms < ms, strictly',
  );
  assert.deepEqual(
    s.completeOlderThan(T0 + 60_001, 2).map((r) => r.id),
    [early, ids[0]],
  );
  assert.equal(s.oldestComplete(100).length, 7);
});

test('delete, countByState and totalBytes follow inserts, state changes, byte changes and deletes', (t) => {
  const s = openStore(t);
  assert.deepEqual(s.countByState(), { recording: 0, finalizing: 0, complete: 0, recovered: 0, failed: 0 });
  assert.equal(s.totalBytes(), 0);
  const a = s.insert(rec({ bytes: 100 }));
  const b = s.insert(rec({ bytes: 1000, state: 'complete', endMs: T0 + 1 }));
  s.insert(rec({ state: 'failed', endMs: T0 + 1 }));
  assert.deepEqual(s.countByState(), { recording: 1, finalizing: 0, complete: 1, recovered: 0, failed: 1 });
  assert.equal(s.totalBytes(), 1100);
  s.update(a, { state: 'complete', bytes: 250, endMs: T0 + 5 });
  assert.deepEqual(s.countByState(), { recording: 0, finalizing: 0, complete: 2, recovered: 0, failed: 1 });
  assert.equal(s.totalBytes(), 1250);
  assert.equal(s.delete(b), true);
  assert.equal(s.delete(b), false);
  assert.equal(s.get(b), null);
  assert.deepEqual(s.countByState(), { recording: 0, finalizing: 0, complete: 1, recovered: 0, failed: 1 });
  assert.equal(s.totalBytes(), 250);
});
