import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SlabPool } from '../../../../src/lib/slab-pool';
import { flvTag } from '../../../../src/ingest/rtmp/codecs';
import { type FlvTag, FlvParser, flvCodecs, tagOf } from '../../../../src/ingest/rtmp/flv';
import type { RtmpPublish } from '../../../../src/ingest/rtmp/publish';
import { RtmpStream } from '../../../../src/ingest/rtmp/stream';

// Issue 14/15: the RTMP path without the FLV round trip. The stream gets the publish's tags as objects and pushes
// their bytes as they are (no re-parse, no copy for a recording attached at the start); codecs come from codecs.ts.

const tag = (type: number, ts: number, payload: number[]) => tagOf(type, ts, flvTag(type, ts, Buffer.from(payload)));

/** A publish that hands out the given tags when the stream subscribes, then more through `emit`. */
function fakePublish(first: FlvTag[]): { pub: RtmpPublish; emit: (t: FlvTag) => void } {
  let cb: ((t: FlvTag) => void) | null = null;
  const pub: RtmpPublish = {
    id: 'p1',
    app: 'live',
    name: 'cam',
    query: {},
    ip: '127.0.0.1',
    login: '',
    startedAt: Date.now(),
    codecs: () => ({ video: 'H264', audio: 'AAC' }),
    onData: () => assert.fail('the stream must not ask for FLV bytes'),
    onTag: (f) => {
      cb = f;
      for (const t of first) f(t);
    },
    onEnd: () => {},
    pause: () => {},
    resume: () => {},
    stats: () => ({ bytes: 0, tags: 0, paused: false }),
    close: () => {},
  };
  return { pub, emit: (t) => cb?.(t) };
}

const avcConfig = [0x17, 0x00, 0, 0, 0, 1];
const aacConfig = [0xaf, 0x00, 0x12, 0x10];
const key = (n: number) => [0x17, 0x01, 0, 0, 0, n];
const inter = (n: number) => [0x27, 0x01, 0, 0, 0, n];
const aac = (n: number) => [0xaf, 0x01, n];

test('a recording attached at the start gets the FLV header, then the very tag buffers of the publish', () => {
  const start = [tag(9, 0, avcConfig), tag(8, 0, aacConfig), tag(9, 0, key(1)), tag(8, 10, aac(1))];
  const { pub, emit } = fakePublish(start);
  const s = new RtmpStream(pub);
  const pushed: Buffer[] = [];
  s.attach((src, b) => {
    assert.equal(src, 'src');
    pushed.push(b);
  });
  const live = tag(9, 40, inter(2));
  emit(live);
  assert.equal(pushed[0]?.toString('latin1', 0, 3), 'FLV');
  assert.equal(pushed[0]?.[4], 5, 'header flags: audio and video');
  // the same Buffer objects: written once in the publish, never parsed or copied again
  const media = pushed.slice(1);
  assert.equal(media.length, 5);
  for (const t of [...start, live]) assert.ok(media.includes(t.bytes), `tag at ${t.timestamp} (type ${t.type}) pushed as the publish's own buffer`);
  // what goes out is a well-formed FLV stream
  const parsed = new FlvParser().push(Buffer.concat(pushed));
  assert.deepEqual(parsed.map((t) => [t.type, t.timestamp, t.keyframe]), [
    [9, 0, false],
    [8, 0, false],
    [9, 0, true],
    [8, 10, false],
    [9, 40, false],
  ]);
  assert.deepEqual(s.codecs(), { video: 'H264', audio: 'AAC' });
});

test('a recording attached later starts at the cached GOP, rebased to 0, sequence headers first', () => {
  const { pub, emit } = fakePublish([tag(9, 0, avcConfig), tag(8, 0, aacConfig), tag(9, 0, key(1))]);
  const s = new RtmpStream(pub);
  for (let i = 1; i < 50; i++) emit(tag(9, i * 40, inter(i)));
  emit(tag(9, 2000, key(2)));
  emit(tag(8, 2010, aac(3)));
  const pushed: Buffer[] = [];
  s.attach((_src, b) => pushed.push(b));
  emit(tag(9, 2040, inter(3)));
  const parsed = new FlvParser().push(Buffer.concat(pushed));
  assert.deepEqual(parsed.map((t) => [t.type, t.timestamp, t.sequenceHeader, t.keyframe]), [
    [9, 0, true, false],
    [8, 0, true, false],
    [9, 0, false, true],
    [8, 10, false, false],
    [9, 40, false, false],
  ]);
});

test('flvCodecs reads through codecs.ts: G.711, Opus and enhanced-RTMP HEVC are known (flv.ts had its own, shorter table)', () => {
  const cfg = (type: number, p: number[]) => tag(type, 0, p);
  assert.deepEqual(flvCodecs(null, cfg(8, [0x72, 0])), { video: null, audio: 'PCMA' });
  assert.deepEqual(flvCodecs(null, cfg(8, [0x82, 0])), { video: null, audio: 'PCMU' });
  assert.deepEqual(flvCodecs(cfg(9, [0x90, ...Buffer.from('hvc1')]), cfg(8, [0x90, ...Buffer.from('Opus')])), { video: 'H265', audio: 'OPUS' });
  // enhanced RTMP: a coded-frames keyframe is a keyframe; its SequenceStart is a sequence header, not a keyframe
  const hvcKey = tag(9, 0, [0x91, ...Buffer.from('hvc1'), 0, 0, 0]);
  const hvcStart = tag(9, 0, [0x90, ...Buffer.from('hvc1'), 1]);
  assert.deepEqual([hvcKey.keyframe, hvcKey.sequenceHeader, hvcStart.keyframe, hvcStart.sequenceHeader], [true, false, false, true]);
});

test('a publisher whose video starts at 23 ms (ffmpeg: AAC priming): live tags go out rebased as their own buffers, no copy per tag', () => {
  const { pub, emit } = fakePublish([tag(8, 0, aacConfig), tag(9, 0, avcConfig), tag(8, 0, aac(0)), tag(9, 23, key(1))]);
  const s = new RtmpStream(pub);
  const pushed: Buffer[] = [];
  s.attach((_src, b) => pushed.push(b));
  const live = [tag(8, 23, aac(1)), tag(9, 63, inter(2)), tag(8, 46, aac(2)), tag(9, 103, inter(3))];
  for (const t of live) emit(t);
  for (const t of live) assert.ok(pushed.includes(t.bytes), `live tag at ${t.timestamp} pushed as the publish's own buffer`);
  const parsed = new FlvParser().push(Buffer.concat(pushed));
  assert.deepEqual(parsed.map((t) => [t.type, t.timestamp]), [
    [9, 0],
    [8, 0],
    [9, 0],
    [8, 0],
    [9, 40],
    [8, 23],
    [9, 80],
  ]);
});

test('a second recording attached later gets its own timestamps from cached tags the first rebased in place; what the first pushed is unchanged', () => {
  const { pub, emit } = fakePublish([tag(9, 0, avcConfig), tag(8, 0, aacConfig), tag(9, 23, key(1))]);
  const s = new RtmpStream(pub);
  const first: Buffer[] = [];
  const detach = s.attach((_src, b) => first.push(b));
  emit(tag(8, 33, aac(2))); // audio from the start (no filler at 0)
  for (let i = 1; i < 50; i++) emit(tag(9, 23 + i * 40, inter(i)));
  emit(tag(9, 2023, key(2)));
  emit(tag(8, 2033, aac(3)));
  emit(tag(9, 2063, inter(3)));
  const firstBefore = Buffer.concat(first);
  const second: Buffer[] = [];
  s.attach((_src, b) => second.push(b));
  assert.deepEqual(Buffer.concat(first), firstBefore, 'attaching a second recording rewrote nothing the first one pushed');
  const lastOfFirst = new FlvParser().push(firstBefore).slice(-3);
  assert.deepEqual(lastOfFirst.map((t) => t.timestamp), [2000, 2010, 2040], 'the first recording: rebased to its keyframe at 23 ms');
  // two consumers now: live tags are copied per consumer, each with its own base
  emit(tag(9, 2103, inter(4)));
  detach();
  const parsed = new FlvParser().push(Buffer.concat(second));
  assert.deepEqual(parsed.map((t) => [t.type, t.timestamp, t.keyframe]), [
    [9, 0, false],
    [8, 0, false],
    [9, 0, true],
    [8, 10, false],
    [9, 40, false],
    [9, 80, false],
  ]);
  assert.equal(new FlvParser().push(Buffer.concat(first)).at(-1)?.timestamp, 2080, 'and the first got the same live tag on its own base');
});

/** A stream whose publish starts with a keyframe at 100 ms, recorded from the start: its tags, and the pushed bytes. */
function recordedFromKeyframe(): { emit: (t: FlvTag) => void; audioPushed: () => Buffer[] } {
  const { pub, emit } = fakePublish([tag(9, 100, avcConfig), tag(8, 100, aacConfig), tag(9, 100, key(1))]);
  const s = new RtmpStream(pub);
  const pushed: Buffer[] = [];
  s.attach((_src, b) => pushed.push(Buffer.from(b)));
  return { emit, audioPushed: () => pushed.filter((b) => b[0] === 8 && b[12] === 0x01) };
}

test('audio that starts 3 s after the first keyframe gets a silent AAC-LC frame at 0, so that it keeps its place in the file', () => {
  const { emit, audioPushed } = recordedFromKeyframe();
  emit(tag(9, 140, inter(2)));
  emit(tag(8, 3100, aac(7)));
  emit(tag(8, 3123, aac(8)));
  const audio = audioPushed();
  const ts = (b: Buffer) => b.readUIntBE(4, 3) | ((b[7] ?? 0) << 24);
  assert.deepEqual(audio.map(ts), [0, 3000, 3023], 'a frame at the file\'s 0, then the real ones at their times');
  // the filler: AAC raw frame (AF 01) holding the stereo silent frame (the config says AAC-LC, 2 channels)
  assert.deepEqual([...(audio[0] ?? Buffer.alloc(0)).subarray(11, 11 + 2 + 9)], [0xaf, 0x01, 0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80]);
});

test('audio that starts with the video gets no filler', () => {
  const { emit, audioPushed } = recordedFromKeyframe();
  emit(tag(8, 123, aac(7)));
  emit(tag(9, 140, inter(2)));
  const audio = audioPushed();
  assert.equal(audio.length, 1);
  assert.equal(audio[0]?.[13], 7, 'the publisher\'s own first frame, no filler before it');
});

// Session 8: the publish's tag bytes are cut from reused slabs (lib/slab-pool). Whatever keeps a tag must hold it
// (the GOP cache) or get it pinned (a consumer that did not promise to hold): its bytes must not change while the
// pool cuts the other slabs again.
test('slab-cut tags: the GOP cache and a consumer that keeps what it is pushed see their bytes unchanged while the pool is cut again', () => {
  const pool = new SlabPool(2048, 4, 512);
  const slabTag = (type: number, ts: number, head: number[]) => {
    const payload = Buffer.concat([Buffer.from(head), randomBytes(180)]);
    return tagOf(type, ts, flvTag(type, ts, payload, (n) => pool.alloc(n)));
  };
  const { pub, emit } = fakePublish([tag(9, 0, avcConfig), tag(8, 0, aacConfig)]);
  const s = new RtmpStream(pub);
  // a recording attached at the start that keeps nothing past the call (it holds: MediaHost's way)
  let live = 0;
  s.attach(() => live++, { holds: true });
  // a consumer that keeps what it is pushed without holding it
  const kept: Buffer[] = [];
  const detachKept = s.attach((_src, b) => kept.push(b));
  const payloads = new Map<number, Buffer>(); // timestamp → payload as emitted
  const send = (type: number, ts: number, head: number[]) => {
    const t = slabTag(type, ts, head);
    payloads.set(ts, Buffer.from(t.bytes.subarray(11, t.bytes.length - 4)));
    emit(t); // the publish keeps nothing: what is not held or pinned may be cut again from here on
  };
  // starting at 0, tags go out rebased to themselves: both consumers get the slab-cut bytes, not copies
  send(9, 0, key(1));
  for (let i = 1; i < 50; i++) send(9, i * 40, inter(i));
  detachKept(); // the second GOP is kept by the GOP cache alone
  send(9, 2000, key(2));
  for (let i = 1; i < 10; i++) send(9, 2000 + i * 40, inter(i));
  // other publishes cut the pool meanwhile
  for (let i = 0; i < 200; i++) pool.alloc(300).fill(0xee);
  assert.ok(pool.stats().reused > 20, `the pool cut released slabs again: ${JSON.stringify(pool.stats())}`);
  assert.ok(live > 40);
  const check = (bufs: Buffer[], base: number, what: string) => {
    for (const b of bufs) {
      if (b.toString('latin1', 0, 3) === 'FLV' || b.length < 100) continue; // the header, the sequence headers
      const ts = writtenTs(b);
      const want = payloads.get(ts + base);
      assert.ok(want?.equals(b.subarray(11, b.length - 4)), `${what}: tag written at ${ts} ms has other bytes than were emitted`);
    }
  };
  assert.ok(kept.filter((b) => b.length >= 100).every((b) => b.buffer.byteLength === 2048), 'the consumer got the slab-cut bytes themselves');
  check(kept, 0, 'a consumer that keeps its pushes');
  // a recording attached now replays the cached GOP (the second one, rebased to 0)
  const late: Buffer[] = [];
  s.attach((_src, b) => late.push(Buffer.from(b)), { holds: true });
  assert.equal(late.filter((b) => b.length >= 100).length, 10);
  check(late, 2000, 'the GOP cache');
});

function writtenTs(b: Buffer): number {
  return (b.readUIntBE(4, 3) | ((b[7] ?? 0) << 24)) >>> 0;
}
