import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKeyframeStart } from '../../../../src/protocols/rtp/keyframe';
import { rtpPayload } from '../../../../src/protocols/rtp/packet';

/** An RTP packet: 12-byte header (optional CSRCs and a one-word header extension) + payload. */
function rtp(payload: number[], o: { csrc?: number; ext?: boolean } = {}): Buffer {
  const cc = o.csrc ?? 0;
  const head = Buffer.alloc(12 + 4 * cc + (o.ext ? 8 : 0));
  head[0] = 0x80 | (o.ext ? 0x10 : 0) | cc;
  head[1] = 96;
  if (o.ext) {
    head.writeUInt16BE(0xbede, 12 + 4 * cc);
    head.writeUInt16BE(1, 14 + 4 * cc);
  }
  return Buffer.concat([head, Buffer.from(payload)]);
}

test('rtpPayload skips CSRCs and the header extension, refuses non-RTP', () => {
  assert.deepEqual([...(rtpPayload(rtp([1, 2], { csrc: 2, ext: true })) ?? [])], [1, 2]);
  assert.equal(rtpPayload(Buffer.from([0x40, 0, 0])), null);
  assert.equal(rtpPayload(rtp([])), null);
});

test('VP8: key frame only on the first packet of partition 0 with P=0, with or without extensions', () => {
  assert.equal(isKeyframeStart('VP8', rtp([0x10, 0x00])), true); // S=1, PID 0, P=0
  assert.equal(isKeyframeStart('vp8', rtp([0x10, 0x01])), false); // interframe
  assert.equal(isKeyframeStart('VP8', rtp([0x00, 0x00])), false); // not the start of a frame
  assert.equal(isKeyframeStart('VP8', rtp([0x11, 0x00])), false); // partition 1
  // X=1, I=1 with a 15-bit picture id (M bit), L=1, T=1: descriptor is 6 bytes
  assert.equal(isKeyframeStart('VP8', rtp([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00], { ext: true })), true);
  assert.equal(isKeyframeStart('VP8', rtp([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x01])), false);
  assert.equal(isKeyframeStart('VP8', rtp([0x90, 0x80, 0x05, 0x00])), true); // 7-bit picture id
});

test('H.264: SPS or IDR alone, in STAP-A, or as the first FU-A fragment', () => {
  assert.equal(isKeyframeStart('H264', rtp([0x67, 0x42])), true); // SPS
  assert.equal(isKeyframeStart('H264', rtp([0x65, 0x88])), true); // IDR
  assert.equal(isKeyframeStart('H264', rtp([0x41, 0x9a])), false); // non-IDR slice
  assert.equal(isKeyframeStart('H264', rtp([0x68, 0xce])), false); // PPS alone
  assert.equal(isKeyframeStart('H264', rtp([0x78, 0, 2, 0x09, 0x10, 0, 2, 0x67, 0x42])), true); // STAP-A: AUD, SPS
  assert.equal(isKeyframeStart('H264', rtp([0x78, 0, 2, 0x09, 0x10, 0, 2, 0x41, 0x9a])), false);
  assert.equal(isKeyframeStart('H264', rtp([0x7c, 0x85, 0x88])), true); // FU-A start of an IDR
  assert.equal(isKeyframeStart('H264', rtp([0x7c, 0x05, 0x88])), false); // FU-A middle
  assert.equal(isKeyframeStart('H264', rtp([0x7c, 0x81, 0x9a])), false); // FU-A start of a P slice
});

test('other codecs are never taken for a keyframe start', () => {
  assert.equal(isKeyframeStart('OPUS', rtp([0x10, 0x00])), false);
});

/** An RTP packet with the P bit set and `padding` appended (its last byte: the padding's length, RFC 3550 §5.1). */
function padded(payload: number[], padding: number[]): Buffer {
  const p = rtp(payload);
  p[0] = (p[0] ?? 0) | 0x20;
  return Buffer.concat([p, Buffer.from(padding)]);
}

test('padding is not payload: a STAP-A or VP8 descriptor is read only up to where the padding starts', () => {
  // STAP-A holding one P slice; the 4 padding bytes would read as a 1-byte IDR NAL unit (size 0x0001, 0x65)
  assert.equal(isKeyframeStart('H264', padded([0x78, 0, 2, 0x41, 0x9a], [0x00, 0x01, 0x65, 0x04])), false);
  assert.equal(isKeyframeStart('H264', padded([0x78, 0, 2, 0x67, 0x42], [0x00, 0x01, 0x41, 0x04])), true, 'a real SPS still counts');
  // a packet of padding only (a keep-alive): its bytes would read as a VP8 key frame start
  assert.equal(isKeyframeStart('VP8', padded([], [0x10, 0x00, 0x00, 0x04])), false);
  assert.equal(isKeyframeStart('VP8', padded([0x10, 0x00], [0x00, 0x02])), true);
  assert.equal(rtpPayload(padded([1, 2], [9, 9, 3])) && [...(rtpPayload(padded([1, 2], [9, 9, 3])) ?? [])].join(','), '1,2');
  assert.equal(rtpPayload(padded([1], [0x20])), null, 'padding longer than the packet');
});
