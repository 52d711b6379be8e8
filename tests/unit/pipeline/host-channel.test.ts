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

test('transient reads: one reused buffer, overwritten after each read, still gives every frame whole (the tail of an unfinished frame is copied)', () => {
  const a = Buffer.alloc(70_000, 7),
    b = Buffer.from('second'),
    c = Buffer.alloc(3000, 5);
  const stream = bytes([...encodePushFrame('pipe-1', 'src', [a]), encodeRequestFrame({ t: 'eos', id: 'pipe-1' }), ...encodePushFrame('p2', 'src', [b, c])]);
  for (const size of [1, 5, 997, 4096, 65536, stream.length]) {
    const r = new FrameReader();
    const buf = Buffer.alloc(size);
    const seen: string[] = [];
    for (let o = 0; o < stream.length; o += size) {
      const n = stream.copy(buf, 0, o, o + size);
      // each frame is used during its read, as the media host does (appsrc copies pushes)
      for (const f of r.push(buf.subarray(0, n), true)) {
        if (f.kind === 'request') seen.push(`req ${f.req.t}`);
        else seen.push(`${f.id} ${f.data.equals(f.id === 'pipe-1' ? a : Buffer.concat([b, c])) ? 'ok' : 'CORRUPT'}`);
      }
      buf.fill(0xee); // the next read overwrites the buffer
    }
    assert.deepEqual(seen, ['pipe-1 ok', 'req eos', 'p2 ok'], `read size ${size}`);
    assert.equal(r.buffered, 0);
  }
});

test('transient reads: a frame whole in one read is still a view of it (no copy of the media)', () => {
  const wire = bytes(encodePushFrame('x', 'src', [Buffer.alloc(1000, 9)]));
  const f = new FrameReader().push(wire, true)[0];
  assert.ok(f?.kind === 'push');
  assert.equal(f.data.buffer, wire.buffer);
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
