import assert from 'node:assert/strict';
import { test } from 'node:test';
import Rtmp from 'node-media-server/src/protocol/rtmp.js';
import { chunkSizeRefusal, DEFAULT_RTMP_LIMITS, guardParser, messageRefusal, RtmpLimitError } from '../../../../src/ingest/rtmp/limits';
import { PendingConnections } from '../../../../src/ingest/rtmp/pending';

const L = DEFAULT_RTMP_LIMITS;

test('PendingConnections: past the per-address cap the oldest of that address goes', () => {
  const p = new PendingConnections<string>(() => ({ total: 100, perIp: 2 }));
  assert.deepEqual(p.add('a1', 'A'), []);
  assert.deepEqual(p.add('a2', 'A'), []);
  assert.deepEqual(p.add('b1', 'B'), []);
  assert.deepEqual(p.add('a3', 'A'), ['a1']);
  assert.equal(p.countOf('A'), 2);
  assert.equal(p.size, 3);
});

test('PendingConnections: past the overall cap the oldest of the address holding the most goes, never a lone newcomer', () => {
  const p = new PendingConnections<string>(() => ({ total: 4, perIp: 10 }));
  for (const c of ['x1', 'x2', 'x3']) assert.deepEqual(p.add(c, 'X'), []);
  assert.deepEqual(p.add('v', 'V'), []); // the victim publisher's connection, alone on its address
  assert.deepEqual(p.add('x4', 'X'), ['x1']);
  assert.deepEqual(p.add('y1', 'Y'), ['x2']);
  assert.deepEqual(p.add('z1', 'Z'), ['x3']);
  // X, V, Y, Z hold one each now: the oldest goes (v, added before x4)
  assert.deepEqual(p.add('w1', 'W'), ['v']);
  assert.equal(p.size, 4);
});

test('PendingConnections: a removed connection (published, proved the token, closed) no longer counts', () => {
  const p = new PendingConnections<string>(() => ({ total: 2, perIp: 2 }));
  p.add('a', 'A');
  p.add('b', 'A');
  p.remove('a');
  p.remove('a'); // twice is harmless
  assert.deepEqual(p.add('c', 'A'), []);
  assert.deepEqual(p.add('d', 'A'), ['b']);
});

test('messageRefusal: message size, pending buffer, total buffer and chunk streams', () => {
  assert.equal(messageRefusal(1000, 1000, 2, false, L), null);
  assert.match(messageRefusal(L.maxMessageSize + 1, 0, 1, true, L) ?? '', /rtmp_max_message_size/);
  assert.match(messageRefusal(70_000, 70_000, 1, false, L) ?? '', /before publishing.*rtmp_max_pending_bytes/);
  assert.equal(messageRefusal(L.maxMessageSize, L.maxMessageSize + 4096, 3, true, L), null, 'a publisher may send a max-size keyframe');
  assert.match(messageRefusal(L.maxMessageSize, 2 * L.maxMessageSize + 1, 3, true, L) ?? '', /two messages/);
  assert.match(messageRefusal(10, 10, 65, true, L) ?? '', /chunk streams/);
  assert.equal(chunkSizeRefusal(4096, L), null);
  assert.match(chunkSizeRefusal(0, L) ?? '', /rtmp_max_chunk_size/);
  assert.match(chunkSizeRefusal(L.maxChunkSize + 1, L) ?? '', /allowed: 1–/);
});

/** C0 + C1 + C2 of a simple handshake: NMS answers and then parses chunks. */
function handshake(): Buffer {
  return Buffer.concat([Buffer.from([3]), Buffer.alloc(1536), Buffer.alloc(1536)]);
}

/** A type-0 chunk header on chunk stream `cid` announcing a message of `length` bytes of `type`, and its first byte. */
function messageHeader(length: number, type: number, cid = 4): Buffer {
  const b = Buffer.alloc(13);
  b[0] = cid;
  b.writeUIntBE(length, 4, 3);
  b[7] = type;
  return b;
}

test('guardParser: a message over the pending bound is refused before NMS allocates it; a publisher gets the full bound', () => {
  const rtmp = new Rtmp();
  rtmp.onOutputCallback = () => undefined;
  let publishing = false;
  guardParser(rtmp, () => L, () => publishing);
  assert.equal(rtmp.parserData(handshake()), null);
  assert.throws(() => rtmp.parserData(messageHeader(L.maxMessageSize, 9)), RtmpLimitError);
  assert.ok([...rtmp.inPackets.values()].every((p) => p.capacity < L.maxPendingBytes), 'nothing big was allocated');

  const pub = new Rtmp();
  pub.onOutputCallback = () => undefined;
  guardParser(pub, () => L, () => publishing);
  publishing = true;
  pub.parserData(handshake());
  assert.equal(pub.parserData(messageHeader(1_000_000, 9)), null);
  assert.throws(() => pub.parserData(Buffer.concat([Buffer.alloc(127), messageHeader(L.maxMessageSize + 1, 9, 6)])), RtmpLimitError);
});

test('guardParser: a Set Chunk Size over rtmp_max_chunk_size (or 0) drops the connection', () => {
  for (const size of [0, L.maxChunkSize + 1]) {
    const rtmp = new Rtmp();
    rtmp.onOutputCallback = () => undefined;
    guardParser(rtmp, () => L, () => false);
    rtmp.parserData(handshake());
    const body = Buffer.alloc(4);
    body.writeUInt32BE(size);
    const h = messageHeader(4, 1, 2).subarray(0, 12); // chunk stream 2: protocol control
    assert.throws(() => rtmp.parserData(Buffer.concat([h, body])), /rtmp_max_chunk_size/);
  }
});

test('tokenShown: the token in a connect URL or a stream name, right or wrong; none when absent or not required', async () => {
  const { tokenShown } = await import('../../../../src/ingest/rtmp/token');
  assert.equal(tokenShown(['rtmp://h/live?token=s3cret', 'live'], 's3cret'), 'right');
  assert.equal(tokenShown([undefined, 'live?token=nope'], 's3cret'), 'wrong');
  assert.equal(tokenShown(['cam1?login=a&token=s3cret'], 's3cret'), 'right');
  assert.equal(tokenShown(['rtmp://h/live', 'live', 42], 's3cret'), 'none');
  assert.equal(tokenShown(['rtmp://h/live?token=x'], ''), 'none');
});
