import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextTmpState } from '../../../src/recorder/tmp-space';

const MiB = 1024 * 1024;

test('record_tmp_dir goes low under 10 % or 32 MiB free, and back only at 15 % and 40 MiB (no flapping)', () => {
  assert.equal(nextTmpState(false, { freeBytes: 500 * MiB, freePercent: 50 }), false);
  assert.equal(nextTmpState(false, { freeBytes: 500 * MiB, freePercent: 9.9 }), true, 'under 10 %');
  assert.equal(nextTmpState(false, { freeBytes: 31 * MiB, freePercent: 60 }), true, 'under 32 MiB on a small tmpfs');
  // between the thresholds the state stays what it was
  assert.equal(nextTmpState(false, { freeBytes: 36 * MiB, freePercent: 12 }), false);
  assert.equal(nextTmpState(true, { freeBytes: 36 * MiB, freePercent: 12 }), true);
  assert.equal(nextTmpState(true, { freeBytes: 100 * MiB, freePercent: 14.9 }), true, 'not yet 15 %');
  assert.equal(nextTmpState(true, { freeBytes: 39 * MiB, freePercent: 90 }), true, 'not yet 40 MiB');
  assert.equal(nextTmpState(true, { freeBytes: 40 * MiB, freePercent: 15 }), false, 'room again');
});
