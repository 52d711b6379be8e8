import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickHost, restartDelayMs, type HostLoad } from '../../../src/pipeline/host-pool';

const host = (pipelines: number, createdCount: number, accepting = true): HostLoad => ({ accepting, pipelines, createdCount });

test('pickHost takes the accepting host with the fewest running pipelines, then the fewest created', () => {
  assert.equal(pickHost([]), -1);
  assert.equal(pickHost([host(0, 0, false)]), -1);
  assert.equal(pickHost([host(3, 3), host(1, 9), host(2, 2)]), 1);
  assert.equal(pickHost([host(1, 9), host(1, 4), host(1, 4)]), 1);
  assert.equal(pickHost([host(0, 0, false), host(5, 5)]), 1, 'a draining or dead host is skipped even when idle');
});

test('restartDelayMs waits briefly after a first death and backs off, capped, when deaths come quickly', () => {
  assert.equal(restartDelayMs(0), 0);
  const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map(restartDelayMs);
  assert.deepEqual(delays.slice(0, 4), [250, 500, 1000, 2000]);
  for (let i = 1; i < delays.length; i++) assert.ok((delays[i] ?? 0) >= (delays[i - 1] ?? 0));
  assert.equal(restartDelayMs(20), 10_000);
  assert.equal(restartDelayMs(1000), 10_000);
});
