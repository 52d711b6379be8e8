/** One schema step: applied once, in its own transaction, in version order. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Upper bound (ms, inclusive) of end_ms - start_ms for span classes 0..7; class 8 is anything longer.
 * Part of schema 1 (recordings.span_class): change it only with a new migration.
 */
export const SPAN_CLASS_LIMITS_MS: readonly number[] = [15e3, 60e3, 240e3, 900e3, 3600e3, 4 * 3600e3, 16 * 3600e3, 64 * 3600e3];

/** Number of span classes (the last one unbounded). */
export const SPAN_CLASSES = SPAN_CLASS_LIMITS_MS.length + 1;

const SPAN_CLASS_SQL = `CASE WHEN end_ms IS NULL THEN NULL ${SPAN_CLASS_LIMITS_MS.map((l, c) => `WHEN end_ms - start_ms <= ${l} THEN ${c}`).join(' ')} ELSE ${SPAN_CLASS_LIMITS_MS.length} END`;

/*
 * How "files overlapping [from, to)" stays an index range scan at 1M rows (see RecordingsStore.list).
 * A finished row overlaps `from` only if it started at most its own length before it. Bounding the scan with the
 * longest file of all would let one 3-day file (record_rotation=disabled is the default) make every query read
 * 3 days of every camera's 10 s files. So finished rows are grouped by length into span classes (factor ~4,
 * span_class, a generated column) and list() reads each class from its own range
 * [from - class limit, to) of one index, merging the classes in (start_ms, id) order: per class it reads at most
 * ~4 files per stream that end before `from`. The unbounded last class uses the longest file, found with one seek
 * in recordings_span (an expression index, so it is exact and shrinks when retention deletes a long file).
 * end_ms trails the list indexes so `end_ms > from` is checked in the index, before the table row is read.
 * The list indexes lead with stream_name and/or state when the query filters on them, so a rare state (failed)
 * over a long range is still a short range. Rows still open (end_ms null: recording, or failed before an end
 * was known) overlap everything after their start; they come from the small partial index recordings_open.
 * recording_stats keeps counts and bytes per state by trigger so health and metrics never scan the table.
 */
/**
 * The table `stats` (count and bytes per state, one row per state of `states`) and the triggers
 * `<table>_stats_insert|delete|update` that keep it in step with `table`.
 */
function statsTable(table: string, stats: string, states: readonly string[]): string {
  const add = (sign: '+' | '-', row: 'NEW' | 'OLD') => `  UPDATE ${stats} SET count = count ${sign} 1, bytes = bytes ${sign} ${row}.bytes WHERE state = ${row}.state;`;
  return [
    `CREATE TABLE ${stats} (`,
    '  state TEXT PRIMARY KEY,',
    '  count INTEGER NOT NULL,',
    '  bytes INTEGER NOT NULL',
    ') STRICT, WITHOUT ROWID;',
    `INSERT INTO ${stats} (state, count, bytes) VALUES ${states.map((st) => `('${st}', 0, 0)`).join(', ')};`,
    `CREATE TRIGGER ${table}_stats_insert AFTER INSERT ON ${table} BEGIN`,
    add('+', 'NEW'),
    'END;',
    `CREATE TRIGGER ${table}_stats_delete AFTER DELETE ON ${table} BEGIN`,
    add('-', 'OLD'),
    'END;',
    `CREATE TRIGGER ${table}_stats_update AFTER UPDATE OF state, bytes ON ${table} BEGIN`,
    add('-', 'OLD'),
    add('+', 'NEW'),
    'END;',
  ].join('\n');
}

const M1 = `
CREATE TABLE recordings (
  id INTEGER PRIMARY KEY,
  file_name TEXT NOT NULL,
  path TEXT NOT NULL,
  tmp_path TEXT,
  stream_name TEXT NOT NULL,
  media_session_id TEXT NOT NULL,
  source_protocol TEXT NOT NULL CHECK (source_protocol IN ('rtsp', 'rtmp', 'webrtc')),
  start_ms INTEGER NOT NULL,
  end_ms INTEGER CHECK (end_ms IS NULL OR end_ms >= start_ms),
  duration_ms INTEGER,
  bytes INTEGER NOT NULL DEFAULT 0,
  audio_codec TEXT,
  video_codec TEXT,
  container TEXT NOT NULL CHECK (container IN ('mp4', 'webm', 'ts')),
  fragment_index INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('recording', 'finalizing', 'complete', 'recovered', 'failed')),
  error TEXT,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  span_class INTEGER GENERATED ALWAYS AS (${SPAN_CLASS_SQL}) VIRTUAL
) STRICT;

CREATE INDEX recordings_list ON recordings (span_class, start_ms, id, end_ms);
CREATE INDEX recordings_list_stream ON recordings (stream_name, span_class, start_ms, id, end_ms);
CREATE INDEX recordings_list_state ON recordings (state, span_class, start_ms, id, end_ms);
CREATE INDEX recordings_list_stream_state ON recordings (stream_name, state, span_class, start_ms, id, end_ms);
CREATE INDEX recordings_span ON recordings (end_ms - start_ms) WHERE end_ms IS NOT NULL;
CREATE INDEX recordings_open ON recordings (start_ms, id) WHERE end_ms IS NULL;
CREATE INDEX recordings_done_end ON recordings (end_ms, id) WHERE state IN ('complete', 'recovered');
CREATE INDEX recordings_tmp_path ON recordings (tmp_path) WHERE tmp_path IS NOT NULL;

${statsTable('recordings', 'recording_stats', ['recording', 'finalizing', 'complete', 'recovered', 'failed'])}
`;

/*
 * The cut cache (GET /client/records/<file>?start=&end=): one row per cut file edgerec made, keyed by source and
 * range (tenths of a second, -1 = absent). A file is served as a cut only when its inode, size and ctime match
 * its row (a file planted or swapped in mp4_cutter_dir is never served); used_ms orders LRU eviction.
 */
const M2 = `
CREATE TABLE cuts (
  id INTEGER PRIMARY KEY,
  source_path TEXT NOT NULL,
  start_ds INTEGER NOT NULL,
  end_ds INTEGER NOT NULL,
  path TEXT NOT NULL UNIQUE,
  bytes INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  ctime_ms REAL NOT NULL,
  created_ms INTEGER NOT NULL,
  used_ms INTEGER NOT NULL,
  UNIQUE (source_path, start_ds, end_ds)
) STRICT;
CREATE INDEX cuts_lru ON cuts (used_ms, id);
`;

const NOW_MS = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`;

/*
 * The archive queue (src/archive/). Every finished file (complete or recovered) gets a row here by trigger, in the
 * same transaction as its recordings row, so a crash can never finish a file without queueing it. States: pending
 * → uploading (object_key fixed before the first byte goes out, so a file has one key for life) → archived, or
 * failed with the reason (next_try_ms set while it is retried). recordings.local_gone_ms marks a file whose local
 * copy was deleted after it was archived: the row stays, the file is served from the bucket.
 */
const M3 = `
ALTER TABLE recordings ADD COLUMN local_gone_ms INTEGER;
CREATE INDEX recordings_local_done_end ON recordings (end_ms, id) WHERE state IN ('complete', 'recovered') AND local_gone_ms IS NULL;
CREATE INDEX recordings_gone_name ON recordings (file_name, id) WHERE local_gone_ms IS NOT NULL;

CREATE TABLE archive (
  recording_id INTEGER PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'archived', 'failed')),
  object_key TEXT,
  bytes INTEGER NOT NULL,
  etag TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try_ms INTEGER,
  error TEXT,
  queued_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  archived_ms INTEGER
) STRICT;
CREATE UNIQUE INDEX archive_object_key ON archive (object_key) WHERE object_key IS NOT NULL;
CREATE INDEX archive_backlog ON archive (state, recording_id);

${statsTable('archive', 'archive_stats', ['pending', 'uploading', 'archived', 'failed'])}

CREATE TRIGGER archive_enqueue_insert AFTER INSERT ON recordings WHEN NEW.state IN ('complete', 'recovered') BEGIN
  INSERT OR IGNORE INTO archive (recording_id, state, bytes, queued_ms, updated_ms) VALUES (NEW.id, 'pending', NEW.bytes, ${NOW_MS}, ${NOW_MS});
END;
CREATE TRIGGER archive_enqueue_update AFTER UPDATE OF state ON recordings
  WHEN NEW.state IN ('complete', 'recovered') AND OLD.state NOT IN ('complete', 'recovered') BEGIN
  INSERT OR IGNORE INTO archive (recording_id, state, bytes, queued_ms, updated_ms) VALUES (NEW.id, 'pending', NEW.bytes, ${NOW_MS}, ${NOW_MS});
END;

INSERT INTO archive (recording_id, state, bytes, queued_ms, updated_ms)
  SELECT id, 'pending', bytes, ${NOW_MS}, ${NOW_MS} FROM recordings WHERE state IN ('complete', 'recovered') ORDER BY id;
`;

/** Every schema step, oldest first; append only — never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'recordings index', sql: M1 },
  { version: 2, name: 'cut cache', sql: M2 },
  { version: 3, name: 'archive queue', sql: M3 },
];
