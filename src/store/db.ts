import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AppError, errMessage } from '../lib/errors';
import { type Migration, MIGRATIONS } from './migrations';

/** An open better-sqlite3 connection. */
export type Db = Database.Database;

/** How long a statement waits for a lock held by another connection (ms). */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Open (or create) the index at `path`: parent folder created, WAL, synchronous=NORMAL, foreign keys on,
 * pending migrations applied. Throws when the file cannot be opened or was written by a newer edgerec.
 */
export function openDb(path: string, migrations: readonly Migration[] = MIGRATIONS): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let db: Db | null = null;
  try {
    db = new Database(path);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    // NORMAL under WAL: a power cut may lose the last commits, never corrupt the file; recovery rebuilds rows.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db?.close();
    throw new AppError('INTERNAL', `cannot open the index database [path:${path}, reason:${errMessage(err)}]`);
  }
  try {
    migrate(db, path, migrations);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Close the connection; safe to call twice. */
export function closeDb(db: Db): void {
  if (!db.open) return;
  try {
    db.pragma('optimize');
  } catch {
    // best effort: statistics only
  }
  db.close();
}

/** Versions recorded in schema_migrations, ascending. */
export function appliedMigrations(db: Db): number[] {
  const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
  return rows.map((r) => r.version);
}

function migrate(db: Db, path: string, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_ms INTEGER NOT NULL
  ) STRICT`);
  const applied = new Set(appliedMigrations(db));
  const known = migrations.length ? Math.max(...migrations.map((m) => m.version)) : 0;
  const newest = applied.size ? Math.max(...applied) : 0;
  if (newest > known) {
    throw new AppError('INTERNAL', 
      `the index database was written by a newer edgerec [path:${path}, schema:${newest}, this version knows up to:${known}]: ` +
        'upgrade edgerec, or move the file away to start a new index',
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)');
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    try {
      db.transaction(() => {
        db.exec(m.sql);
        record.run(m.version, m.name, Date.now());
      })();
    } catch (err) {
      throw new AppError('INTERNAL', `index migration failed [path:${path}, version:${m.version}, name:${m.name}, reason:${errMessage(err)}]`);
    }
  }
}
