import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordingRow } from '../../../src/store/recordings';
import { chooseDeletions } from '../../../src/store/retention';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

function row(id: number, endAgoDays: number, bytes: number, state: RecordingRow['state'] = 'complete'): RecordingRow {
  const endMs = NOW - endAgoDays * DAY;
  return {
    id, fileName: `f${id}.mp4`, path: `/r/f${id}.mp4`, tmpPath: null, streamName: 's', mediaSessionId: 'm', sourceProtocol: 'rtsp',
    startMs: endMs - 10_000, endMs, durationMs: 10_000, bytes, audioCodec: null, videoCodec: 'H264', container: 'mp4',
    fragmentIndex: 1, state, error: null, createdMs: endMs, updatedMs: endMs,
  };
}

test('by age: exactly the files that ended before the cutoff, oldest first', () => {
  const rows = [row(1, 40, 10), row(2, 31, 10), row(3, 29, 10), row(4, 1, 10)];
  const d = chooseDeletions(rows, NOW, 30, { totalBytes: 1000, freeBytes: 900 }, 10);
  assert.deepEqual(d.map((x) => [x.row.id, x.reason]), [[1, 'age'], [2, 'age']]);
});

test('retention off (0 days) and enough space: nothing', () => {
  assert.deepEqual(chooseDeletions([row(1, 400, 10)], NOW, 0, { totalBytes: 1000, freeBytes: 500 }, 10), []);
});

test('by free space: the oldest until free reaches the minimum, counting what each frees', () => {
  const rows = [row(1, 5, 30), row(2, 4, 30), row(3, 3, 30), row(4, 2, 30)];
  // 1000 total, 10 % = 100 needed, 45 free: deleting 1 → 75, 2 → 105 ≥ 100: stop.
  const d = chooseDeletions(rows, NOW, 0, { totalBytes: 1000, freeBytes: 45 }, 10);
  assert.deepEqual(d.map((x) => [x.row.id, x.reason]), [[1, 'free-space'], [2, 'free-space']]);
});

test('never a file being written or finalized; recovered files count as finished', () => {
  const rows = [row(1, 50, 10, 'recording'), row(2, 50, 10, 'finalizing'), row(3, 50, 10, 'failed'), row(4, 50, 10, 'recovered')];
  assert.deepEqual(chooseDeletions(rows, NOW, 30, { totalBytes: 1000, freeBytes: 900 }, 10).map((x) => x.row.id), [4]);
});
