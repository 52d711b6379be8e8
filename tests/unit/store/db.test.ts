import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { appliedMigrations, closeDb, openDb } from '../../../src/store/db';
import { MIGRATIONS } from '../../../src/store/migrations';
import { RecordingsStore, type NewRecording } from '../../../src/store/recordings';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ROW: NewRecording = {
  fileName: 'cam1_{endTime}.mp4',
  path: '/tmp/rec/cam1.mp4.tmp',
  streamName: 'cam1',
  mediaSessionId: 'ms-1',
  sourceProtocol: 'rtsp',
  startMs: 1_700_000_000_000,
  container: 'mp4',
  fragmentIndex: 1,
  state: 'recording',
};

test('fresh DB: parent folder created, WAL, NORMAL sync, foreign keys, busy timeout, migrations applied once', (t) => {
  const path = join(tempDir(t), 'a', 'b', 'index.db');
  const db = openDb(path);
  t.after(() => closeDb(db));
  assert.ok(existsSync(path));
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('synchronous', { simple: true }), 1); // NORMAL
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
  assert.ok(Number(db.pragma('busy_timeout', { simple: true })) >= 1000);
  assert.deepEqual(appliedMigrations(db), MIGRATIONS.map((m) => m.version));
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
  assert.deepEqual(tables, ['archive', 'archive_stats', 'cuts', 'recording_stats', 'recordings', 'schema_migrations']);
});

test('reopen: migrations are skipped, rows are kept, the migration count is unchanged', (t) => {
  const path = join(tempDir(t), 'index.db');
  const db1 = openDb(path);
  const id = new RecordingsStore(db1).insert(ROW);
  const count1 = db1.prepare('SELECT count(*) FROM schema_migrations').pluck().get();
  closeDb(db1);

  const db2 = openDb(path);
  t.after(() => closeDb(db2));
  assert.equal(db2.prepare('SELECT count(*) FROM schema_migrations').pluck().get(), count1);
  assert.equal(count1, MIGRATIONS.length);
  const row = new RecordingsStore(db2).get(id);
  assert.equal(row?.fileName, ROW.fileName);
  assert.equal(row?.state, 'recording');
  assert.equal(row?.endMs, null);
});

test('a new migration runs once on an existing DB, the old ones are not rerun', (t) => {
  const path = join(tempDir(t), 'index.db');
  closeDb(openDb(path));
  const next = [...MIGRATIONS, { version: 99, name: 'test column', sql: 'ALTER TABLE recordings ADD COLUMN note TEXT' }];
  const db = openDb(path, next);
  closeDb(db);
  const again = openDb(path, next); // would fail with "duplicate column" if rerun
  t.after(() => closeDb(again));
  assert.deepEqual(appliedMigrations(again), [...MIGRATIONS.map((m) => m.version), 99]);
  const cols = again.prepare("SELECT name FROM pragma_table_info('recordings')").pluck().all();
  assert.ok(cols.includes('note'));
});

test('a failing migration is rolled back whole and named in the error', (t) => {
  const path = join(tempDir(t), 'index.db');
  const known = MIGRATIONS.map((m) => m.version);
  const v = Math.max(...known) + 1;
  const bad = [...MIGRATIONS, { version: v, name: 'half', sql: 'CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;' }];
  assert.throws(() => openDb(path, bad), new RegExp(`index migration failed \\[.*version:${v}, name:half, reason:no such table: no_such_table`));
  const db = openDb(path);
  t.after(() => closeDb(db));
  assert.deepEqual(appliedMigrations(db), known);
  assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").pluck().get(), 0);
});

test('a DB written by a newer edgerec is refused with a clear error', (t) => {
  const path = join(tempDir(t), 'index.db');
  const db = openDb(path);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)').run(1000, 'future', Date.now());
  closeDb(db);
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  assert.throws(() => openDb(path), new RegExp(`written by a newer edgerec \\[path:.*index\\.db, schema:1000, this version knows up to:${known}\\]`));
});

test('closeDb is safe twice; a path that cannot be a file gives an error naming it', (t) => {
  const dir = tempDir(t);
  const db = openDb(join(dir, 'index.db'));
  closeDb(db);
  closeDb(db);
  assert.equal(db.open, false);
  assert.throws(() => openDb(dir), /cannot open the index database \[path:/);
});
