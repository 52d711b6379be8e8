import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../../src/lib/backoff';

test('without jitter it grows min → min·factor^n and stays at the cap', () => {
  const b = new Backoff({ minMs: 1000, maxMs: 30_000, jitter: 0 });
  const seen = Array.from({ length: 8 }, () => b.next());
  assert.deepEqual(seen, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  assert.equal(b.attempt, 8);
  const slow = new Backoff({ minMs: 500, maxMs: 5000, factor: 1.5, jitter: 0 });
  assert.deepEqual([slow.next(), slow.next(), slow.next()], [500, 750, 1125]);
});

test('reset() starts over at minMs and zeroes the attempt counter', () => {
  const b = new Backoff({ minMs: 200, maxMs: 10_000, jitter: 0 });
  for (let i = 0; i < 5; i++) b.next();
  assert.equal(b.attempt, 5);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 200);
  assert.equal(b.next(), 400);
});

test('jitter stays within ±jitter of the delay and never passes the cap', () => {
  const edges = [0, 0.999999, 0.5];
  for (const r of edges) {
    const b = new Backoff({ minMs: 1000, maxMs: 8000, jitter: 0.2, random: () => r });
    const d = Array.from({ length: 6 }, () => b.next());
    const base = [1000, 2000, 4000, 8000, 8000, 8000];
    d.forEach((v, i) => {
      const want = base[i] ?? 0;
      assert.ok(v >= Math.floor(want * 0.8) && v <= Math.min(8000, Math.ceil(want * 1.2)), `r=${r} step ${i}: ${v} vs ${want}`);
    });
  }
  const low = new Backoff({ minMs: 1000, maxMs: 8000, jitter: 0.2, random: () => 0 });
  assert.equal(low.next(), 800, 'lowest draw is min·(1-jitter)');
  // with Math.random: many draws, all in bounds, and not all equal (the jitter is real)
  const b = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.1 });
  const many = Array.from({ length: 200 }, () => b.next());
  assert.ok(many.every((v) => v >= 900 && v <= 1000), 'capped at maxMs, down to -10 %');
  assert.ok(new Set(many).size > 5, 'the delays vary');
});

test('bad settings are refused with the allowed values named', () => {
  assert.throws(() => new Backoff({ minMs: 5000, maxMs: 1000 }), /maxMs must be finite and ≥ minMs/);
  assert.throws(() => new Backoff({ minMs: -1, maxMs: 1000 }), /minMs must be/);
  assert.throws(() => new Backoff({ minMs: 1, maxMs: 1000, factor: 0.5 }), /factor must be ≥ 1/);
  assert.throws(() => new Backoff({ minMs: 1, maxMs: 1000, jitter: 1 }), /jitter must be in \[0, 1\)/);
});

test('a huge number of attempts stays finite and capped', () => {
  const b = new Backoff({ minMs: 1000, maxMs: 60_000, jitter: 0 });
  let last = 0;
  for (let i = 0; i < 5000; i++) last = b.next();
  assert.equal(last, 60_000);
  assert.equal(b.attempt, 5000);
});
