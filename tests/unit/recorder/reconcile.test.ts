import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findOrphans, PipelineReconciler, type RunningPipeline } from '../../../src/recorder/reconcile';

const p = (id: string): RunningPipeline => ({ id, hostPid: 1 });

test('findOrphans: a pipeline unknown at two passes in a row is an orphan; a known one never', () => {
  const first = findOrphans([p('a'), p('b'), p('c')], new Set(['a']), new Set());
  assert.deepEqual(first.orphans, []);
  assert.deepEqual([...first.suspects].sort(), ['b', 'c']);
  // b became known meanwhile (its owner caught up); c is still unknown; d is new
  const second = findOrphans([p('a'), p('b'), p('c'), p('d')], new Set(['a', 'b']), first.suspects);
  assert.deepEqual(second.orphans.map((x) => x.id), ['c']);
  assert.deepEqual([...second.suspects], ['d']);
  // a suspect that ended by itself is forgotten
  assert.deepEqual(findOrphans([], new Set(), new Set(['x'])), { orphans: [], suspects: new Set() });
});

test('PipelineReconciler ends orphans only, counts and reports them', () => {
  const running = [p('rec-1'), p('orphan')];
  const ended: string[] = [];
  const reported: string[] = [];
  const r = new PipelineReconciler({
    running: () => running,
    known: () => new Set(['rec-1']),
    end: (id) => {
      ended.push(id);
      return true;
    },
    onOrphan: (x) => reported.push(x.id),
  });
  assert.deepEqual(r.runOnce(), []);
  assert.deepEqual(r.runOnce().map((x) => x.id), ['orphan']);
  assert.deepEqual(ended, ['orphan']);
  assert.deepEqual(reported, ['orphan']);
  assert.equal(r.stopped, 1);
});
