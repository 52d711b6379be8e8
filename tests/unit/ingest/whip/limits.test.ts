import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countMediaSections } from '../../../../src/ingest/whip/whip-ingest';
import { PortReservations } from '../../../../src/ingest/whip/werift-ice';

test('countMediaSections counts m= lines only at a line start', () => {
  assert.equal(countMediaSections('v=0\r\nm=audio 9 x\r\na=x:m=video\r\nm=video 9 y\r\n'), 2);
  assert.equal(countMediaSections('m=video 9 y\nm=video 9 y\n'), 2);
  assert.equal(countMediaSections('v=0\r\ns=-\r\n'), 0);
});

test('PortReservations: a reserved port is skipped by a concurrent search; searches go on after the last port handed out', () => {
  const r = new PortReservations();
  const a = r.candidates(100, 104, 0);
  assert.equal(a.next().value, 100);
  r.reserve(100, 0);
  // a second search running meanwhile does not get 100
  assert.equal(r.candidates(100, 104, 0).next().value, 101);
  r.handedOut(100, 100, 104);
  r.reserve(101, 0);
  assert.deepEqual([...r.candidates(100, 104, 0)], [102, 103, 104]);
  r.release(101);
  assert.deepEqual([...r.candidates(100, 104, 0)], [101, 102, 103, 104]);
  // reservations run out: werift has bound the port by then, and a probe finds it in use
  assert.deepEqual([...r.candidates(100, 104, 60_000)], [101, 102, 103, 104, 100]);
});
