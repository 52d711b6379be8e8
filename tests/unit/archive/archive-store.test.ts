import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArchiveStore } from '../../../src/archive/archive-store';
import { fileRetryDelayMs, storeRetryDelayMs } from '../../../src/archive/archiver';
import { closeDb, openDb } from '../../../src/store/db';
import { type NewRecording, RecordingsStore } from '../../../src/store/recordings';

function setup(t: { after: (fn: () => void) => void }) {
  const db = openDb(':memory:');
  t.after(() => closeDb(db));
  return { db, rec: new RecordingsStore(db), arch: new ArchiveStore(db) };
}

const base = (i: number): NewRecording => ({
  fileName: `cam_${i}.mp4`, path: `/r/cam_${i}.mp4`, streamName: 'cam', mediaSessionId: 'm', sourceProtocol: 'rtmp',
  startMs: 1_700_000_000_000 + i * 10_000, container: 'mp4', fragmentIndex: i, state: 'recording',
});

test('a file is queued by the index itself when it becomes complete or recovered, never while recording or when failed', (t) => {
  const { rec, arch } = setup(t);
  const a = rec.insert(base(1));
  const b = rec.insert(base(2));
  const c = rec.insert(base(3));
  assert.equal(arch.info(a), null);
  rec.update(a, { state: 'finalizing' });
  rec.update(a, { state: 'complete', bytes: 100, endMs: 1_700_000_010_000 });
  rec.update(b, { state: 'recovered', bytes: 50, endMs: 1_700_000_020_000 });
  rec.update(c, { state: 'failed', endMs: 1_700_000_030_000 });
  assert.equal(arch.info(a)?.state, 'pending');
  assert.equal(arch.info(a)?.bytes, 100);
  assert.equal(arch.info(b)?.state, 'pending');
  assert.equal(arch.info(c), null);
  const d = rec.insert({ ...base(4), state: 'complete', bytes: 7, endMs: 1_700_000_040_000 });
  assert.equal(arch.info(d)?.state, 'pending');
  const bl = arch.backlog();
  assert.deepEqual([bl.files, bl.bytes, bl.oldestMs], [3, 157, base(1).startMs]);
});

test('in order; the key is fixed at the first attempt and kept; a failed file waits for its time; a crash resets uploads', (t) => {
  const { rec, arch } = setup(t);
  const ids = [1, 2, 3].map((i) => rec.insert({ ...base(i), state: 'complete', bytes: i, endMs: base(i).startMs + 5000 }));
  const first = arch.next(1000);
  assert.equal(first?.row.id, ids[0]);
  assert.equal(arch.markUploading(ids[0] ?? 0, 'k/one.mp4'), 'k/one.mp4');
  assert.equal(arch.next(1000)?.row.id, ids[1], 'an uploading file is not handed out twice');
  arch.markFailed(ids[0] ?? 0, 'boom', 5000);
  assert.equal(arch.next(1000)?.row.id, ids[1], 'not due yet');
  assert.equal(arch.next(5000)?.row.id, ids[0], 'due: the oldest goes first again');
  assert.equal(arch.markUploading(ids[0] ?? 0, 'k/other-key.mp4'), 'k/one.mp4', 'the first key is kept for life');
  assert.equal(arch.info(ids[0] ?? 0)?.attempts, 2);
  assert.equal(arch.keyOwner('k/one.mp4'), ids[0]);
  assert.throws(() => arch.markUploading(ids[1] ?? 0, 'k/one.mp4'), /UNIQUE/, 'two files can never share a key');
  assert.deepEqual(arch.resetUploading(), ['k/one.mp4']);
  assert.equal(arch.info(ids[0] ?? 0)?.state, 'pending');
  arch.markArchived(ids[0] ?? 0, 'abc', 1);
  assert.equal(arch.backlog().byState.archived.count, 1);
  assert.equal(arch.backlog().files, 2);
});

test('a file whose local copy is gone is found by name for reads, and leaves the local lists', (t) => {
  const { rec, arch } = setup(t);
  const id = rec.insert({ ...base(1), state: 'complete', bytes: 10, endMs: base(1).startMs + 5000 });
  const other = rec.insert({ ...base(2), state: 'complete', bytes: 10, endMs: base(2).startMs + 5000 });
  arch.markUploading(id, 'box/cam/cam_1.mp4');
  arch.markArchived(id, 'e1', 10);
  assert.equal(arch.archivedOnly('cam_1.mp4'), null, 'still local');
  assert.deepEqual(arch.localArchivedOldest(10).map((x) => x.row.id), [id]);
  assert.deepEqual(arch.localOldest(10).map((x) => [x.row.id, x.archiveState]), [[id, 'archived'], [other, 'pending']]);
  arch.markLocalGone(id);
  assert.equal(arch.archivedOnly('cam_1.mp4')?.objectKey, 'box/cam/cam_1.mp4');
  assert.deepEqual(arch.localOldest(10).map((x) => x.row.id), [other]);
  assert.equal(arch.info(id)?.localGoneMs !== null, true);
  rec.delete(id);
  assert.equal(arch.info(id), null, 'the queue row goes with the recording');
  assert.equal(arch.backlog().byState.archived.count, 0);
});

test('playback finds a file only in the archive by its id: archived and gone locally, nothing else', (t) => {
  const { rec, arch } = setup(t);
  const id = rec.insert({ ...base(1), state: 'complete', bytes: 10, endMs: base(1).startMs + 5000 });
  const pending = rec.insert({ ...base(2), state: 'complete', bytes: 10, endMs: base(2).startMs + 5000 });
  assert.equal(arch.archivedOnlyById(id), null, 'queued, local');
  arch.markUploading(id, 'box/cam/cam_1.mp4');
  arch.markArchived(id, 'e1', 10);
  assert.equal(arch.archivedOnlyById(id), null, 'archived but still local');
  arch.markLocalGone(id);
  assert.deepEqual(arch.archivedOnlyById(id), { recordingId: id, fileName: 'cam_1.mp4', objectKey: 'box/cam/cam_1.mp4', bytes: 10, etag: 'e1', archivedMs: arch.info(id)?.archivedMs });
  // gone locally without a verified upload (should not happen): not read from the bucket
  arch.markLocalGone(pending);
  assert.equal(arch.archivedOnlyById(pending), null);
  assert.equal(arch.archivedOnlyById(99_999), null);
});

test('retry delays grow and are capped', () => {
  assert.deepEqual([1, 2, 3, 10, 100].map(fileRetryDelayMs), [5000, 10_000, 20_000, 600_000, 600_000]);
  assert.deepEqual([1, 2, 5, 6, 50].map(storeRetryDelayMs), [1000, 2000, 16_000, 30_000, 30_000]);
});
