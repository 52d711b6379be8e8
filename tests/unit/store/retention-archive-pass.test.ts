import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArchiveStore } from '../../../src/archive/archive-store';
import { parseConf } from '../../../src/conf/parse';
import { closeDb, openDb } from '../../../src/store/db';
import { RecordingsStore } from '../../../src/store/recordings';
import { Retention, type RetentionArchive } from '../../../src/store/retention';

// A whole retention pass on a real index and real files, with the archive queries (issue 16).

const DAY = 86_400_000;

function setup(t: { after: (fn: () => void) => void }, confText: string, archiving = true) {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-ret-arch-'));
  const db = openDb(join(dir, 'i.db'));
  t.after(() => {
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
  });
  const rec = new RecordingsStore(db);
  const arch = new ArchiveStore(db);
  const conf = parseConf(`record_dir=${dir}\n${confText}`, { installDir: dir }).conf;
  const archive: RetentionArchive = {
    localOldest: (n) => arch.localOldest(n),
    localArchivedOldest: (n) => arch.localArchivedOldest(n),
    localArchivedEndedBefore: (ms, n) => arch.localArchivedEndedBefore(ms, n),
    markLocalGone: (id) => arch.markLocalGone(id),
    enabled: () => archiving,
  };
  const add = (name: string, endAgoDays: number, archived: boolean): number => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.alloc(1000));
    const endMs = Date.now() - endAgoDays * DAY;
    const id = rec.insert({
      fileName: name, path, streamName: 's', mediaSessionId: 'm', sourceProtocol: 'rtmp', startMs: endMs - 10_000, endMs, bytes: 1000,
      container: 'mp4', fragmentIndex: 1, state: 'complete',
    });
    if (archived) {
      arch.markUploading(id, `box/s/${name}`);
      arch.markArchived(id, 'etag', 1000);
    }
    return id;
  };
  return { dir, rec, arch, retention: new Retention(() => conf, rec, 3_600_000, archive), add };
}

test('archive_keep_local_days=5: archived files older than 5 days lose the local copy and keep the row; unarchived ones stay', async (t) => {
  const { dir, rec, arch, retention, add } = setup(t, 'archive_keep_local_days=5\nrecord_min_free_percent=0');
  const oldArchived = add('a.mp4', 10, true);
  const oldPending = add('b.mp4', 10, false);
  const newArchived = add('c.mp4', 1, true);
  await retention.runOnce();
  assert.equal(existsSync(join(dir, 'a.mp4')), false);
  assert.ok(rec.get(oldArchived), 'row kept');
  assert.equal(arch.archivedOnly('a.mp4')?.objectKey, 'box/s/a.mp4');
  assert.equal(existsSync(join(dir, 'b.mp4')), true, 'not archived: never deleted by archive_keep_local_days');
  assert.ok(rec.get(oldPending));
  assert.equal(existsSync(join(dir, 'c.mp4')), true);
  assert.ok(rec.get(newArchived));
});

test('free space: archived local copies go first and keep their rows, then unarchived files with their rows', async (t) => {
  // 99 % free can never be reached on the test disk: everything local goes, archived copies first.
  const { dir, rec, arch, retention, add } = setup(t, 'record_min_free_percent=99');
  const p1 = add('p1.mp4', 3, false);
  const a1 = add('a1.mp4', 2, true);
  const a2 = add('a2.mp4', 1, true);
  await retention.runOnce();
  const recent = (retention.health().retention as { recentDeletions: { file: string }[] }).recentDeletions.map((d) => d.file);
  assert.deepEqual(recent, ['a1.mp4', 'a2.mp4', 'p1.mp4'], 'archived first (oldest first), the unarchived file last');
  for (const f of ['p1.mp4', 'a1.mp4', 'a2.mp4']) assert.equal(existsSync(join(dir, f)), false);
  assert.ok(rec.get(a1) && rec.get(a2), 'archived rows kept');
  assert.equal(rec.get(p1), null, 'the unarchived file and its row are gone');
  assert.equal(arch.localOldest(10).length, 0);
});

test('record_retention_days while archiving: archived old files keep their rows, unarchived old files wait', async (t) => {
  const { dir, rec, retention, add } = setup(t, 'record_retention_days=7\nrecord_min_free_percent=0');
  const a = add('a.mp4', 10, true);
  const p = add('p.mp4', 10, false);
  await retention.runOnce();
  assert.equal(existsSync(join(dir, 'a.mp4')), false);
  assert.ok(rec.get(a));
  assert.equal(existsSync(join(dir, 'p.mp4')), true);
  assert.ok(rec.get(p));
});
