import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRange, parseTime, spansOf, type SpanRow } from '../../../src/playback/range';

test('parseTime: epoch ms and RFC 3339 with a zone; anything else names the parameter and the forms allowed', () => {
  assert.equal(parseTime('from', '1795750000000'), 1795750000000);
  assert.equal(parseTime('from', '2026-12-03T14:02:10Z'), Date.UTC(2026, 11, 3, 14, 2, 10));
  assert.equal(parseTime('from', '2026-12-03T14:02:10.5Z'), Date.UTC(2026, 11, 3, 14, 2, 10, 500));
  assert.equal(parseTime('from', '2026-12-03t14:02:10.123456789z'), Date.UTC(2026, 11, 3, 14, 2, 10, 123));
  assert.equal(parseTime('from', '2026-12-03T15:02:10+01:00'), Date.UTC(2026, 11, 3, 14, 2, 10));
  assert.equal(parseTime('from', '2026-12-03 14:02:10-00:30'), Date.UTC(2026, 11, 3, 14, 32, 10));
  for (const bad of ['yesterday', '2026-12-03', '2026-12-03T14:02:10', '2026-02-30T10:00:00Z', '2026-13-01T00:00:00Z', '2026-12-03T24:00:00Z', '-5', '1e12', '17957500000001234567', 'March 7, 2026']) {
    assert.throws(() => parseTime('to', bad), (e: Error & { status?: number }) => e.status === 400 && /^to: .* is not a time; use epoch ms .* or RFC 3339/.test(e.message), bad);
  }
  assert.throws(() => parseTime('from', undefined), /from: required/);
  assert.throws(() => parseTime('from', ''), /from: required/);
});

test('checkRange: to after from, and at most the limit, naming the key', () => {
  checkRange(1000, 2000, 1, 'playback_max_duration');
  assert.throws(() => checkRange(2000, 2000, 10, 'k'), /to \(2000\) must be after from \(2000\)/);
  assert.throws(() => checkRange(3000, 2000, 10, 'k'), /must be after from/);
  assert.throws(() => checkRange(0, 3_600_001, 3600, 'playback_max_duration'), /3600\.001 s long; at most 3600 s is allowed \(playback_max_duration\)/);
});

const row = (startMs: number, endMs: number | null, mediaSessionId = 'a', state = 'complete'): SpanRow => ({ startMs, endMs, mediaSessionId, state });

test('spansOf: files that follow each other make one span (any session), gaps between, failed files left out, a running file reaches now', () => {
  const rows = [
    row(0, 5000),
    row(5000, 10_000),
    row(10_100, 15_000, 'b'), // 100 ms later: below the reported gap, still one span
    row(20_000, 25_000, 'c', 'failed'),
    row(30_000, 35_000, 'd'),
    row(35_000, null, 'd', 'recording'),
  ];
  const { spans, gaps } = spansOf(rows, 2000, 100_000, 40_000);
  assert.deepEqual(
    spans.map((s) => [s.startMs, s.endMs, s.recording, s.mediaSessionIds.join('+'), s.files]),
    [
      [2000, 15_000, false, 'a+b', 3],
      [30_000, 40_000, true, 'd', 2],
    ],
  );
  // the gap after the running file ends at now: the future is not a gap
  assert.deepEqual(gaps, [{ startMs: 15_000, endMs: 30_000 }]);
  assert.deepEqual(spansOf(rows, 36_000, 38_000, 40_000).gaps, []);
  assert.deepEqual(spansOf([], 0, 1000, 5000), { spans: [], gaps: [{ startMs: 0, endMs: 1000 }] });
  // overlapping files (a restart of the same recording) do not shorten the span
  assert.deepEqual(spansOf([row(0, 10_000), row(2000, 4000, 'x')], 0, 10_000, 99_999).spans.map((s) => [s.startMs, s.endMs]), [[0, 10_000]]);
});
