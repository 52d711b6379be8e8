import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../helpers/proc';

// waitFor: "not yet" (a plain error, a falsy value) is retried; a failed assertion is a check that must hold at
// every sample and fails at once, even when a later sample would have passed.

test('a failed assertion inside waitFor fails at the sample where it fails', async () => {
  let n = 0;
  await assert.rejects(
    waitFor('a liveness check', () => {
      n++;
      assert.ok(n !== 2, 'stalled at sample 2');
      return n >= 5;
    }, 5000, 1),
    (e: unknown) => e instanceof assert.AssertionError && /while waiting for a liveness check \(sample 2\): stalled at sample 2/.test(e.message),
  );
  assert.equal(n, 2, 'no sample after the failed one');
});

test('plain errors and falsy values are retried until the value comes', async () => {
  let n = 0;
  const v = await waitFor('a value', () => {
    n++;
    if (n < 3) throw new Error('not yet');
    return n >= 4 ? { n } : null;
  }, 5000, 1);
  assert.deepEqual(v, { n: 4 });
  await assert.rejects(waitFor('never', () => { throw new Error('still no'); }, 30, 5), /timed out after 30 ms waiting for never: Error: still no/);
});
