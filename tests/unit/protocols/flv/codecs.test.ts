import assert from 'node:assert/strict';
import { test } from 'node:test';
import { audioCodecOf, isSequenceHeader, videoCodecOf } from '../../../../src/protocols/flv/codecs';

const avcConfig = Buffer.from([0x17, 0x00, 0, 0, 0, 1]);
const avcKey = Buffer.from([0x17, 0x01, 0, 0, 0, 9]);
const aacConfig = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const aacFrame = Buffer.from([0xaf, 0x01, 0x21]);

test('sequence headers and codecs, classic and enhanced RTMP', () => {
  assert.ok(isSequenceHeader(9, avcConfig));
  assert.ok(!isSequenceHeader(9, avcKey));
  assert.ok(isSequenceHeader(8, aacConfig));
  assert.ok(!isSequenceHeader(8, aacFrame));
  assert.ok(!isSequenceHeader(8, Buffer.from([0x2f, 0x00]))); // MP3 has none
  const hvcStart = Buffer.concat([Buffer.from([0x90]), Buffer.from('hvc1')]);
  assert.ok(isSequenceHeader(9, hvcStart));
  assert.equal(videoCodecOf(hvcStart), 'H265');
  assert.equal(videoCodecOf(avcKey), 'H264');
  assert.equal(videoCodecOf(Buffer.from([0x22])), null); // Sorenson H.263
  assert.equal(audioCodecOf(aacFrame), 'AAC');
  assert.equal(audioCodecOf(Buffer.from([0x2f])), 'MP3');
  assert.equal(audioCodecOf(Buffer.from([0x72])), 'PCMA');
  assert.equal(audioCodecOf(Buffer.concat([Buffer.from([0x90]), Buffer.from('Opus')])), 'OPUS');
  assert.equal(isSequenceHeader(9, Buffer.alloc(0)), false);
});
