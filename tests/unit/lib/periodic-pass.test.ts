import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeriodicPass } from '../../../src/lib/periodic-pass';

/** A pass that counts its starts and ends only when released. */
function gated() {
  let started = 0;
  const releases: (() => void)[] = [];
  const pass = () => {
    started++;
    return new Promise<void>((resolve) => releases.push(resolve));
  };
  return { pass, started: () => started, release: () => releases.shift()?.() };
}

test('PeriodicPass: a call while a pass runs gets that pass; the next call after it ended starts a new one', async () => {
  const g = gated();
  const p = new PeriodicPass(g.pass, { everyMs: 60_000 });
  const a = p.run();
  const b = p.run();
  assert.equal(a, b, 'the same promise');
  assert.equal(g.started(), 1);
  g.release();
  await a;
  const c = p.run();
  assert.notEqual(c, a);
  assert.equal(g.started(), 2);
  g.release();
  await c;
  await p.close();
});

test('PeriodicPass: start() runs one at once and then every everyMs, never two at once; close() waits for the running one and stops', async (t) => {
  let started = 0;
  let running = 0;
  let most = 0;
  const p = new PeriodicPass(async () => {
    started++;
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 35)); // longer than everyMs: ticks during a pass join it
    running--;
  }, { everyMs: 10 });
  t.after(() => p.close());
  p.start();
  assert.equal(started, 1, 'the first pass starts at once');
  const until = Date.now() + 5000;
  while (started < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  assert.ok(started >= 3, `passes went on (${started})`);
  assert.equal(most, 1, 'never two at once');
  await p.close();
  assert.equal(running, 0, 'close() resolved after the running pass ended');
  const after = started;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(started, after, 'no pass after close()');
  await p.close();
});

test('PeriodicPass: atStart false waits everyMs for the first pass; a second start() adds no second timer', async (t) => {
  let started = 0;
  const p = new PeriodicPass(async () => void started++, { everyMs: 1000, atStart: false, unref: true });
  t.after(() => p.close());
  p.start();
  p.start();
  assert.equal(started, 0);
  const until = Date.now() + 5000;
  while (started < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  assert.equal(started, 1, 'one pass after everyMs');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(started, 1, 'one timer: no second pass in the same period');
  await p.close();
});
