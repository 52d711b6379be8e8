import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelError, FrameReader, MAX_FRAME_BYTES, encodePushFrame, encodeRequestFrame } from '../../../src/pipeline/host-channel';

const bytes = (parts: Uint8Array[]) => Buffer.concat(parts);

test('push and request frames come back in order, whatever the read boundaries', () => {
  const a = Buffer.from('FLV-header'),
    b = Buffer.alloc(70_000, 7),
    c = Buffer.from([1, 2, 3]);
  const stream = bytes([...encodePushFrame('pipe-1', 'src', [a, b]), encodeRequestFrame({ t: 'eos', id: 'pipe-1' }), ...encodePushFrame('p2', 'vsrc', [c])]);
  for (const step of [1, 3, 7, 4096, 65536, stream.length]) {
    const r = new FrameReader();
    const frames = [];
    for (let o = 0; o < stream.length; o += step) frames.push(...r.push(stream.subarray(o, o + step)));
    assert.equal(frames.length, 3, `step ${step}`);
    const [f0, f1, f2] = frames;
    assert.ok(f0?.kind === 'push' && f1?.kind === 'request' && f2?.kind === 'push');
    assert.equal(f0.id, 'pipe-1');
    assert.equal(f0.src, 'src');
    assert.deepEqual(f0.lengths, [a.length, b.length]);
    assert.ok(f0.data.equals(Buffer.concat([a, b])));
    assert.deepEqual(f1.req, { t: 'eos', id: 'pipe-1' });
    assert.equal(f2.id, 'p2');
    assert.equal(f2.src, 'vsrc');
    assert.ok(f2.data.equals(c));
    assert.equal(r.buffered, 0);
  }
});

test('a frame read in one piece is a view of what was read (no copy)', () => {
  const payload = Buffer.alloc(1000, 9);
  const wire = bytes(encodePushFrame('x', 'src', [payload]));
  const f = new FrameReader().push(wire)[0];
  assert.ok(f?.kind === 'push');
  assert.equal(f.data.buffer, wire.buffer, 'the frame data shares the read buffer');
});

test('the media chunks are written as given: encodePushFrame copies no media', () => {
  const payload = Buffer.alloc(100, 1);
  const parts = encodePushFrame('x', 'src', [payload]);
  assert.equal(parts[1], payload);
});

test('a malformed channel is an error naming what was wrong', () => {
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  assert.throws(() => new FrameReader().push(bad), (e: unknown) => e instanceof ChannelError && /allowed: 1–/.test(e.message));
  const kind = Buffer.from([0, 0, 0, 1, 7]);
  assert.throws(() => new FrameReader().push(kind), /kind 7 \(allowed: 0 request, 1 push\)/);
  const lying = Buffer.concat(encodePushFrame('x', 'src', [Buffer.alloc(10)]));
  lying.writeUInt32BE(lying.readUInt32BE(0) - 1, 0); // one media byte fewer than the lengths say
  assert.throws(() => new FrameReader().push(lying), /chunk lengths say 10/);
  assert.throws(() => encodePushFrame('x'.repeat(256), 'src', []), /longer than 255/);
});
