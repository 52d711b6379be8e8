import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRotation, parseStartBody } from '../../../src/api/rest';
import { AppError } from '../../../src/lib/errors';

test('parseRotation takes "20", "20M", "disabled" and names what is allowed otherwise', () => {
  assert.deepEqual(parseRotation('20'), { kind: 'seconds', seconds: 20 });
  assert.deepEqual(parseRotation(20), { kind: 'seconds', seconds: 20 });
  assert.deepEqual(parseRotation('10M'), { kind: 'megabytes', megabytes: 10 });
  assert.deepEqual(parseRotation('disabled'), { kind: 'disabled' });
  for (const bad of ['0', '-1', '20X', '', 'M', true, null]) {
    assert.throws(() => parseRotation(bad), (e: unknown) => e instanceof AppError && e.status === 400 && /disabled/.test(e.message), String(bad));
  }
});

test('parseStartBody: the reference manual bodies, and clear 400s', () => {
  assert.deepEqual(parseStartBody({ mediaSessionId: 'abc' }), { mediaSessionId: 'abc', overrides: {} });
  assert.deepEqual(parseStartBody({ mediaSessionId: 'abc', config: { fileTemplate: '{streamName}', rotation: '20' } }), {
    mediaSessionId: 'abc',
    overrides: { template: '{streamName}', rotation: { kind: 'seconds', seconds: 20 } },
  });
  for (const bad of [undefined, [], 'x', {}, { mediaSessionId: 5 }, { mediaSessionId: 'a', config: 3 }, { mediaSessionId: 'a', config: { fileTemplate: '' } }]) {
    assert.throws(() => parseStartBody(bad), (e: unknown) => e instanceof AppError && e.status === 400, JSON.stringify(bad));
  }
});
