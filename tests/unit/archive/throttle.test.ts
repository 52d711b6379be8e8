import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Throttle } from '../../../src/archive/throttle';

test('Throttle: 0 is no limit; a limit holds the average rate across callers', async () => {
  const free = new Throttle(0);
  const t0 = Date.now();
  for (let i = 0; i < 100; i++) await free.take(1e6);
  assert.ok(Date.now() - t0 < 200);

  const rate = 400_000;
  const th = new Throttle(rate);
  const start = Date.now();
  // two uploads share the bucket: 2 × 200 kB after the first burst (100 kB) needs ≥ ~0.75 s
  await Promise.all([0, 1].map(async () => {
    for (let i = 0; i < 4; i++) await th.take(50_000);
  }));
  const s = (Date.now() - start) / 1000;
  assert.ok(s >= 0.7, `400 kB at 400 kB/s with a 100 kB burst took ${s} s`);
  assert.ok(s < 3, `took ${s} s`);
});

test('Throttle: an abort ends a wait, also one queued behind another', async () => {
  const th = new Throttle(1000);
  const c1 = new AbortController();
  const c2 = new AbortController();
  const first = th.take(100_000, c1.signal);
  const second = th.take(1000, c2.signal);
  const t0 = Date.now();
  c2.abort();
  await assert.rejects(second, /aborted/);
  c1.abort();
  await assert.rejects(first, /aborted/);
  assert.ok(Date.now() - t0 < 500);
});
