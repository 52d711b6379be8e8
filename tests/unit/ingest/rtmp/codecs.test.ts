import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodecTracker, flvHeader, flvTag, scriptPayload } from '../../../../src/ingest/rtmp/codecs';

const avcConfig = Buffer.from([0x17, 0x00, 0, 0, 0, 1]);
const avcKey = Buffer.from([0x17, 0x01, 0, 0, 0, 9]);
const aacConfig = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const aacFrame = Buffer.from([0xaf, 0x01, 0x21]);

test('flvTag: header, 32-bit timestamp split, payload copy, PreviousTagSize', () => {
  const payload = Buffer.from([1, 2, 3]);
  const tag = flvTag(9, 0x12345678, payload);
  payload[0] = 99; // the tag is a copy
  assert.deepEqual([...tag.subarray(0, 11)], [9, 0, 0, 3, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
  assert.deepEqual([...tag.subarray(11, 14)], [1, 2, 3]);
  assert.equal(tag.readUInt32BE(14), 14);
});

test('flvHeader flags follow the codecs; unknown flags both', () => {
  assert.equal(flvHeader(null)[4], 5);
  assert.equal(flvHeader({ video: 'H264', audio: null })[4], 1);
  assert.equal(flvHeader({ video: null, audio: 'AAC' })[4], 4);
  assert.equal(flvHeader({ video: null, audio: null })[4], 5);
});

test('scriptPayload drops the @setDataFrame prefix only', () => {
  const meta = Buffer.concat([Buffer.from([2, 0, 10]), Buffer.from('onMetaData'), Buffer.from([8])]);
  const set = Buffer.concat([Buffer.from([2, 0, 13]), Buffer.from('@setDataFrame'), meta]);
  assert.deepEqual(scriptPayload(set), meta);
  assert.deepEqual(scriptPayload(meta), meta);
});

test('CodecTracker: both tracks seen → known at once', () => {
  const t = new CodecTracker();
  assert.equal(t.tag(9, 0, avcConfig), null);
  assert.deepEqual(t.tag(8, 0, aacConfig), { video: 'H264', audio: 'AAC' });
  assert.deepEqual(t.codecs(), { video: 'H264', audio: 'AAC' });
  assert.equal(t.tag(9, 40, avcKey), null, 'reported once');
});

test('CodecTracker: metadata announcing audio only → known at the first audio tag', () => {
  const t = new CodecTracker();
  t.metadata({ audiocodecid: 10, duration: 0 });
  assert.deepEqual(t.tag(8, 0, aacConfig), { video: null, audio: 'AAC' });
});

test('CodecTracker: no metadata (or metadata without codec ids), one track → known after 1 s of media', () => {
  const t = new CodecTracker();
  t.metadata({ width: 640, height: 360 });
  assert.equal(t.tag(9, 5000, avcConfig), null);
  assert.equal(t.tag(9, 5960, avcKey), null);
  assert.deepEqual(t.tag(9, 6000, avcKey), { video: 'H264', audio: null });
});

test('CodecTracker: announced track that never comes → known after 3 s; settle() forces', () => {
  const t = new CodecTracker();
  t.metadata({ videocodecid: 7, audiocodecid: 10 });
  assert.equal(t.tag(9, 0, avcConfig), null);
  assert.equal(t.tag(9, 2000, avcKey), null);
  assert.deepEqual(t.tag(9, 3000, avcKey), { video: 'H264', audio: null });
  const u = new CodecTracker();
  u.tag(8, 0, aacFrame);
  assert.deepEqual(u.settle(), { video: null, audio: 'AAC' });
});
