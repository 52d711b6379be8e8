import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlvTagError, flvFrames } from '../../../src/pipeline/flv-frames';
import { flvHeader, flvTag } from '../../../src/ingest/rtmp/codecs';

const AVCC = Buffer.from('0164001fffe1001967640', 'hex');
const ASC = Buffer.from([0x12, 0x10]);

function avc(packetType: number, cts: number, body: Buffer, key = true): Buffer {
  const h = Buffer.alloc(5);
  h[0] = (key ? 0x10 : 0x20) | 7;
  h[1] = packetType;
  h.writeIntBE(cts, 2, 3);
  return Buffer.concat([h, body]);
}
const aac = (packetType: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([0xaf, packetType]), body]);

test('FLV header and script tags give nothing; sequence headers give caps with codec_data', () => {
  assert.deepEqual(flvFrames(flvHeader({ video: 'H264', audio: 'AAC' })), []);
  assert.deepEqual(flvFrames(flvTag(18, 0, Buffer.from([2, 0, 10]))), []);
  assert.deepEqual(flvFrames(flvTag(9, 0, avc(0, 0, AVCC))), [{ kind: 'caps', track: 'video', caps: `video/x-h264,stream-format=avc,alignment=au,codec_data=(buffer)${AVCC.toString('hex')}` }]);
  assert.deepEqual(flvFrames(flvTag(8, 0, aac(0, ASC))), [{ kind: 'caps', track: 'audio', caps: 'audio/mpeg,mpegversion=4,stream-format=raw,framed=true,codec_data=(buffer)1210' }]);
});

test('H.264 NALUs: PTS = timestamp + composition time (signed 24 bit), extended timestamp byte included', () => {
  const nalus = Buffer.from([0, 0, 0, 2, 0x65, 0x88]);
  const [f] = flvFrames(flvTag(9, 1000, avc(1, 80, nalus)));
  assert.deepEqual(f, { kind: 'frame', track: 'video', data: nalus, ptsNs: 1080e6 });
  const [g] = flvFrames(flvTag(9, 1000, avc(1, -40, nalus, false)));
  assert.equal(g?.kind === 'frame' ? g.ptsNs : -1, 960e6);
  // 0x01000010 ms: the upper byte is the tag's extended timestamp
  const [h] = flvFrames(flvTag(9, 0x01000010, avc(1, 0, nalus)));
  assert.equal(h?.kind === 'frame' ? h.ptsNs : -1, 0x01000010 * 1e6);
  // a composition time that would make the PTS negative is clamped to 0
  const [n] = flvFrames(flvTag(9, 10, avc(1, -40, nalus)));
  assert.equal(n?.kind === 'frame' ? n.ptsNs : -1, 0);
  // end of sequence: nothing
  assert.deepEqual(flvFrames(flvTag(9, 10, avc(2, 0, Buffer.alloc(0)))), []);
});

test('AAC raw frames: PTS = timestamp; several whole tags in one chunk, with or without PreviousTagSize', () => {
  const a = flvTag(8, 23, aac(1, Buffer.from([1, 2, 3])));
  const v = flvTag(9, 40, avc(1, 0, Buffer.from([0, 0, 0, 1, 0x41])));
  const frames = flvFrames(Buffer.concat([a, v.subarray(0, v.length - 4)]));
  assert.deepEqual(
    frames.map((f) => (f.kind === 'frame' ? [f.track, f.ptsNs, f.data.toString('hex')] : [])),
    [
      ['audio', 23e6, '010203'],
      ['video', 40e6, '0000000141'],
    ],
  );
});

test('malformed or unsupported tags are refused with an error naming what is allowed', () => {
  const v = flvTag(9, 0, avc(1, 0, Buffer.from([0, 0, 0, 1, 0x41])));
  assert.throws(() => flvFrames(v.subarray(0, 8)), (e: unknown) => e instanceof FlvTagError && e.code === 'PEER_FAILED' && /cut short: 8 bytes left at offset 0, a tag header is 11/.test(e.message));
  assert.throws(() => flvFrames(v.subarray(0, 14)), /cut short: its header says 10 bytes of data, 3 are there/);
  assert.throws(() => flvFrames(flvTag(9, 0, Buffer.from([0x1c, 1, 0, 0, 0, 1]))), /FLV video codec id 12 \[allowed: 7 \(H\.264\)\]/);
  assert.throws(() => flvFrames(flvTag(9, 0, Buffer.from([0x90, 0x68, 0x76, 0x63, 0x31]))), /enhanced-RTMP video tag .*\[allowed: H\.264, codec id 7\]/);
  assert.throws(() => flvFrames(flvTag(8, 0, Buffer.from([0x2f, 1, 2]))), /FLV sound format 2 \[allowed: 10 \(AAC\)\]/);
  assert.throws(() => flvFrames(flvTag(7, 0, Buffer.from([1]))), /FLV tag type 7 is not known \[allowed: 8 audio, 9 video, 18 script\]/);
  assert.throws(() => flvFrames(flvTag(0x29, 0, Buffer.from([1]))), /filtered \(encrypted\)/);
  assert.throws(() => flvFrames(flvTag(9, 0, avc(0, 0, Buffer.alloc(0)))), /sequence header with no AVCDecoderConfigurationRecord/);
  assert.throws(() => flvFrames(flvTag(9, 0, Buffer.from([0x17, 1]))), /H\.264 FLV video tag of 2 bytes \[allowed: 5 or more\]/);
  assert.throws(() => flvFrames(flvTag(8, 0, aac(3, ASC))), /AAC packet type 3 \[allowed: 0 AudioSpecificConfig, 1 raw frame\]/);
});
