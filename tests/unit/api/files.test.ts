import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRange, resolveRecordFile } from '../../../src/api/files';
import { AppError } from '../../../src/lib/errors';

test('parseRange: full, open, suffix, clipped, unsatisfiable, malformed', () => {
  assert.equal(parseRange(undefined, 100), null);
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-1000', 100), { start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=50-5000', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=20-10', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), null, 'multi-range: whole file');
  assert.equal(parseRange('items=0-1', 100), null);
});

test('resolveRecordFile serves only media files inside record_dir', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'edgerec-files-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'records');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.mp4'), 'x');
  writeFileSync(join(dir, 'edgerec.db'), 'db');
  writeFileSync(join(dir, '.a.mp4.part'), 'p');
  writeFileSync(join(root, 'secret.mp4'), 's');
  symlinkSync(join(root, 'secret.mp4'), join(dir, 'link.mp4'));
  mkdirSync(join(dir, 'sub.mp4'));
  const ok = await resolveRecordFile(dir, 'a.mp4');
  assert.equal(ok.size, 1);
  for (const bad of ['../secret.mp4', 'edgerec.db', '.a.mp4.part', 'link.mp4', 'sub.mp4', '/etc/passwd', 'a.mp4\0', '', 'nope.mp4', '..', 'a.txt']) {
    await assert.rejects(resolveRecordFile(dir, bad), (e: unknown) => e instanceof AppError && e.status === 404, bad);
  }
});
