import assert from 'node:assert/strict';
import { test } from 'node:test';
import { objectKey, uniqueKey } from '../../../src/archive/object-key';

test('objectKey: the default template, {date} is the UTC day of the start', () => {
  const startMs = Date.UTC(2026, 0, 31, 23, 59, 59);
  assert.equal(objectKey('{boxId}/{streamName}/{date}/{fileName}', { boxId: 'box1', streamName: 'lobby', startMs, fileName: 'lobby_3.mp4' }), 'box1/lobby/2026-01-31/lobby_3.mp4');
});

test('objectKey: a value can never add a path segment, climb, or hold control characters', () => {
  const k = objectKey('{boxId}/{streamName}/{fileName}', { boxId: '..', streamName: 'a/../b\u0001', startMs: 0, fileName: '.' });
  assert.equal(k, '_/a_.._b_/_');
  assert.equal(objectKey('x/{streamName}/{fileName}', { boxId: 'b', streamName: '', startMs: 0, fileName: 'f.mp4' }), 'x/_/f.mp4');
});

test('uniqueKey: the recording id goes before the extension, the folder kept', () => {
  assert.equal(uniqueKey('box/cam/2026-01-01/cam_1.mp4', 42), 'box/cam/2026-01-01/cam_1(r42).mp4');
  assert.equal(uniqueKey('noext', 7), 'noext(r7)');
});
