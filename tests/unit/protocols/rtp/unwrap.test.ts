import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RtpUnwrapper } from '../../../../src/protocols/rtp/unwrap';

test('RtpUnwrapper: the first timestamp is itself; forward steps add up across the 32-bit wrap', () => {
  const u = new RtpUnwrapper();
  assert.equal(u.last, null);
  assert.equal(u.step(123), 0, 'no step before the first');
  const start = 2 ** 32 - 3000;
  assert.equal(u.extend(start), start);
  assert.equal(u.extend(start + 1500), start + 1500);
  assert.equal(u.extend(500), 2 ** 32 + 500, 'past the wrap it counts on');
  assert.equal(u.last, 2 ** 32 + 500);
  // three more times round the circle in steps of 2^30 (12 steps): still counting up
  let t = 500;
  for (let i = 0; i < 12; i++) {
    t = (t + 2 ** 30) >>> 0;
    u.extend(t);
  }
  assert.equal(t, 500);
  assert.equal(u.last, 4 * 2 ** 32 + 500);
});

test('RtpUnwrapper: a step back stays a step back, across the wrap too', () => {
  const u = new RtpUnwrapper();
  u.extend(1000);
  assert.equal(u.step(400), -600);
  assert.equal(u.extend(400), 400);
  assert.equal(u.extend(2 ** 32 - 600), -600, 'back over the wrap goes below 0, not 4 G ahead');
  assert.equal(u.extend(200), 200);
});

test('RtpUnwrapper: a big jump is taken the shorter way round; restart begins a new timeline at an origin', () => {
  const u = new RtpUnwrapper();
  u.extend(0);
  assert.equal(u.step(2 ** 31 - 1), 2 ** 31 - 1, 'just under half the circle: forward');
  assert.equal(u.step(2 ** 31 + 1), -(2 ** 31 - 1), 'just over half the circle: backward');
  assert.equal(u.last, 0, 'step() does not move');
  assert.equal(u.extend(90000 * 3600), 90000 * 3600, 'an hour at 90 kHz is a step forward');
  assert.equal(u.restart(77, 2 ** 32), 2 ** 32 + 77);
  assert.equal(u.step(70), -7, 'steps count from the restart');
  assert.equal(u.extend(70), 2 ** 32 + 70);
});
