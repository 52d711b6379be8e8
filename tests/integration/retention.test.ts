import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { closeDb, openDb } from '../../src/store/db';
import { RecordingsStore } from '../../src/store/recordings';
import { makeClip } from '../helpers/media';
import { waitFor } from '../helpers/proc';
import { startService } from '../helpers/service';

const run = promisify(execFile);

// Retention on the real service: by age (record_retention_days) and by free space (record_min_free_percent on a
// small tmpfs), seeded with real files and index rows; exactly the oldest finished files go, each one logged;
// a file being written is never touched, however old.

const HOUR = 3_600_000;
const MIN_FREE_PERCENT = 50;

function freeBytes(dir: string): { free: number; total: number } {
  const s = statfsSync(dir);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

test('retention deletes exactly the oldest finished files, by age then by free space, never a file being written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-ret-'));
  const records = join(dir, 'records');
  const tmp = join(dir, 'tmp');
  mkdirSync(records, { recursive: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', records]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${String(err).slice(0, 200)}`);
    return;
  }
  t.after(async () => {
    await run('umount', ['-l', records]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  // Seven real files: one 3 days old (age), six from the last hours, inserted out of order so that only the
  // end time can give the order.
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 2, size: '320x180' });
  const S = statSync(clip).size;
  const now = Date.now();
  const ends: Record<string, number> = { old: now - 72 * HOUR, b: now - 6 * HOUR, c: now - 5 * HOUR, d: now - 4 * HOUR, e: now - 3 * HOUR, f: now - 2 * HOUR, g: now - HOUR };
  const db = openDb(join(dir, 'edgerec.db'));
  const store = new RecordingsStore(db);
  const ids: Record<string, number> = {};
  for (const k of ['e', 'b', 'old', 'g', 'd', 'f', 'c']) {
    const end = ends[k] ?? now;
    const fileName = `seed-${k}.mp4`;
    copyFileSync(clip, join(records, fileName));
    ids[k] = store.insert({
      fileName,
      path: join(records, fileName),
      streamName: 'seed',
      mediaSessionId: 'seed',
      sourceProtocol: 'rtsp',
      startMs: end - 2000,
      endMs: end,
      durationMs: 2000,
      bytes: S,
      container: 'mp4',
      fragmentIndex: 1,
      state: 'complete',
    });
  }
  closeDb(db);
  // Free space such that, with "old" gone by age, exactly b and c must go too: need = free + 2.5 S.
  const { free, total } = freeBytes(records);
  const need = (total * MIN_FREE_PERCENT) / 100;
  const fillerBytes = Math.round(free - (need - 2.5 * S));
  assert.ok(fillerBytes > 0 && fillerBytes < free, `the tmpfs fits the plan (free ${free}, need ${need}, S ${S})`);
  writeFileSync(join(records, 'filler.bin'), Buffer.alloc(fillerBytes));

  const s = await startService({ dir, conf: `record_retention_days=1\nrecord_min_free_percent=${MIN_FREE_PERCENT}\n` });
  t.after(() => s.stop());
  const deletions = () => s.logs().filter((l) => l.msg === 'retention deleted a file');
  await waitFor('the first retention pass', () => deletions().length >= 3, 10_000, 100);
  const rows = async () => ((await s.json('/rest-api/recordings?limit=1000')).body as { recordings: { id: number; fileName: string; state: string }[] }).recordings;
  const present = async () => (await rows()).map((r) => r.fileName).sort();
  assert.deepEqual(
    deletions().map((l) => `${l.file}:${l.reason}`),
    ['seed-old.mp4:age', 'seed-b.mp4:free-space', 'seed-c.mp4:free-space'],
    'the oldest go first, each logged with its reason',
  );
  assert.deepEqual(await present(), ['seed-d.mp4', 'seed-e.mp4', 'seed-f.mp4', 'seed-g.mp4']);
  for (const k of ['old', 'b', 'c']) assert.ok(!existsSync(join(records, `seed-${k}.mp4`)), `seed-${k}.mp4 is deleted`);
  for (const k of ['d', 'e', 'f', 'g']) assert.ok(existsSync(join(records, `seed-${k}.mp4`)), `seed-${k}.mp4 is kept`);
  const h = (await s.json('/rest-api/health')).body as { retention: { totalDeleted: number; recentDeletions: { file: string; reason: string }[] } };
  assert.equal(h.retention.totalDeleted, 3);
  assert.deepEqual(h.retention.recentDeletions.map((d) => d.file), ['seed-old.mp4', 'seed-b.mp4', 'seed-c.mp4'], 'health lists the deletions');

  // A file being written, 5 days old, on the record disk (record_tmp_dir defaults to record_dir), which then
  // needs space again: the next pass
  // (30 s later) deletes the oldest finished file (d) and leaves the one being written alone.
  const writing = join(records, 'being-written.mp4');
  const db2 = openDb(join(dir, 'edgerec.db'));
  new RecordingsStore(db2).insert({
    fileName: 'being-written.mp4',
    path: writing,
    tmpPath: writing,
    streamName: 'live',
    mediaSessionId: 'live',
    sourceProtocol: 'rtsp',
    startMs: now - 120 * HOUR,
    container: 'mp4',
    fragmentIndex: 1,
    state: 'recording',
  });
  closeDb(db2);
  copyFileSync(clip, writing); // its S bytes bring free space to need - 0.5 S
  await waitFor('the next retention pass', () => deletions().length >= 4, 40_000, 200);
  assert.equal(deletions()[3]?.file, 'seed-d.mp4', 'the oldest finished file goes next');
  assert.equal(deletions()[3]?.reason, 'free-space');
  assert.ok(existsSync(writing), 'the file being written is kept');
  const after = await rows();
  assert.ok(after.some((r) => r.fileName === 'being-written.mp4' && r.state === 'recording'), 'its row too');
  assert.deepEqual(after.map((r) => r.fileName).filter((n) => n.startsWith('seed-')).sort(), ['seed-e.mp4', 'seed-f.mp4', 'seed-g.mp4']);
});
