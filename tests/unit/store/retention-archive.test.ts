import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordingRow } from '../../../src/store/recordings';
import { chooseLocalDeletions, type LocalChoiceInput } from '../../../src/store/retention';

// Retention with archiving (issue 16): archived copies go first and keep their rows; unarchived files are protected.

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

function row(id: number, endAgoDays: number, bytes: number): RecordingRow {
  const endMs = NOW - endAgoDays * DAY;
  return {
    id, fileName: `f${id}.mp4`, path: `/r/f${id}.mp4`, tmpPath: null, streamName: 's', mediaSessionId: 'm', sourceProtocol: 'rtmp',
    startMs: endMs - 10_000, endMs, durationMs: 10_000, bytes, audioCodec: null, videoCodec: 'H264', container: 'mp4',
    fragmentIndex: 1, state: 'complete', error: null, createdMs: endMs, updatedMs: endMs,
  };
}

function input(o: Partial<LocalChoiceInput> & { rows: [RecordingRow, boolean][] }): LocalChoiceInput {
  return {
    local: o.rows.map(([r, archived]) => ({ row: r, archived })),
    archived: o.rows.filter(([, a]) => a).map(([r]) => r),
    now: NOW,
    retentionDays: 0,
    keepLocalDays: -1,
    archiving: true,
    disk: { totalBytes: 1000, freeBytes: 900 },
    minFreePercent: 10,
    ...o,
  };
}

const ids = (d: ReturnType<typeof chooseLocalDeletions>) => d.map((x) => [x.row.id, x.reason, x.keepRow]);

test('archive_keep_local_days=N: archived files N days past their end lose the local copy, keep the row; unarchived ones never', () => {
  const rows: [RecordingRow, boolean][] = [[row(1, 10, 10), true], [row(2, 9, 10), false], [row(3, 6, 10), true], [row(4, 1, 10), true]];
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, keepLocalDays: 5 }))), [[1, 'archived', true], [3, 'archived', true]]);
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, keepLocalDays: 0 }))), [[1, 'archived', true], [3, 'archived', true], [4, 'archived', true]]);
  assert.deepEqual(chooseLocalDeletions(input({ rows, keepLocalDays: -1 })), []);
});

test('record_retention_days while archiving: archived files keep their rows; an unarchived file waits for the archive', () => {
  const rows: [RecordingRow, boolean][] = [[row(1, 40, 10), true], [row(2, 40, 10), false]];
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, retentionDays: 30 }))), [[1, 'age', true]]);
  // archiving off: as before, the file and its row go
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, retentionDays: 30, archiving: false }))), [[1, 'age', false], [2, 'age', false]]);
});

test('free space: archived local copies first (oldest first), unarchived files last', () => {
  const rows: [RecordingRow, boolean][] = [[row(1, 5, 30), false], [row(2, 4, 30), true], [row(3, 3, 30), false], [row(4, 2, 30), true]];
  // 45 free, 100 needed: two archived copies (2, 4) give 105
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, disk: { totalBytes: 1000, freeBytes: 45 } }))), [[2, 'free-space', true], [4, 'free-space', true]]);
  // 10 free: both archived, then the oldest unarchived
  assert.deepEqual(ids(chooseLocalDeletions(input({ rows, disk: { totalBytes: 1000, freeBytes: 10 } }))), [
    [2, 'free-space', true], [4, 'free-space', true], [1, 'free-space', false],
  ]);
});
