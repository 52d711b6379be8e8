import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRunningTime } from '../../../src/recorder/recorder';

test('isRunningTime: GST_CLOCK_STIME_NONE as the binding hands it over (2^63) is not a time; real running times are', () => {
  assert.equal(isRunningTime(2 ** 63), false, 'a muxer opened before any media: a name ~292 years ahead otherwise');
  assert.equal(isRunningTime(2 ** 64 - 1), false, 'GST_CLOCK_TIME_NONE');
  assert.equal(isRunningTime(-1), false);
  assert.equal(isRunningTime(Number.NaN), false);
  assert.equal(isRunningTime(0), true);
  assert.equal(isRunningTime(3_600e9 * 24 * 365), true, 'a year of running time');
});
