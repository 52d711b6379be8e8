import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AacDepay, parseAacConfig } from '../../../../src/protocols/rtp/aac-depay';
import { depayloaderFor, G711Depay, H264Depay, H265Depay, unsupportedTrack } from '../../../../src/protocols/rtp/depay';
import type { AccessUnit } from '../../../../src/protocols/rtp/depayloader';
import { parseRtp, type RtpPacket } from '../../../../src/protocols/rtp/packet';
import { RtpTimeline } from '../../../../src/protocols/rtp/timeline';
import type { SdpMedia } from '../../../../src/protocols/sdp/sdp';

const SC = [0, 0, 0, 1];

/** A depayloader input packet without going through bytes (parseRtp has its own tests). */
function pkt(seq: number, timestamp: number, payload: number[] | Buffer, marker = false): RtpPacket {
  return { payloadType: 96, marker, seq: seq & 0xffff, timestamp: timestamp >>> 0, ssrc: 1, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload) };
}

function feed(d: { push(p: RtpPacket): AccessUnit[] }, packets: RtpPacket[]): AccessUnit[] {
  return packets.flatMap((p) => d.push(p));
}

/** Annex B: start code before each NAL. */
function annexB(...nals: number[][]): Buffer {
  return Buffer.from(nals.flatMap((n) => [...SC, ...n]));
}

/** STAP-A (type 24, NRI 3) carrying the given NALs. */
function stapA(...nals: number[][]): number[] {
  return [0x78, ...nals.flatMap((n) => [n.length >> 8, n.length & 0xff, ...n])];
}

// H.264 NAL units: header byte (forbidden 0, NRI, type) + a few body bytes
const SPS = [0x67, 0x4d, 0x40, 0x0c, 0xaa];
const PPS = [0x68, 0xce, 0x0f, 0xc8];
const IDR = [0x65, 0x88, 0x84, 0x00, 0x11, 0x22, 0x33];
const P1 = [0x41, 0x9a, 0x01];
const P2 = [0x41, 0x9a, 0x02];

/** Split a NAL into FU-A packets' payloads of `chunk` body bytes each. */
function fuA(nal: number[], chunk: number): number[][] {
  const hdr = nal[0] ?? 0;
  const body = nal.slice(1);
  const out: number[][] = [];
  for (let off = 0; off < body.length; off += chunk) {
    const s = off === 0 ? 0x80 : 0;
    const e = off + chunk >= body.length ? 0x40 : 0;
    out.push([(hdr & 0xe0) | 28, s | e | (hdr & 0x1f), ...body.slice(off, off + chunk)]);
  }
  return out;
}

function rtpBytes(o: { seq: number; ts: number; marker?: boolean; pt?: number; csrc?: number; ext?: number[]; pad?: number; payload: number[] }): Buffer {
  const cc = o.csrc ?? 0;
  const b0 = 0x80 | (o.pad ? 0x20 : 0) | (o.ext ? 0x10 : 0) | cc;
  const h = [b0, (o.marker ? 0x80 : 0) | (o.pt ?? 96), o.seq >> 8, o.seq & 0xff, ...u32(o.ts), ...u32(0x11223344)];
  for (let i = 0; i < cc; i++) h.push(...u32(0xc0000000 + i));
  if (o.ext) h.push(0xbe, 0xde, (o.ext.length / 4) >> 8, (o.ext.length / 4) & 0xff, ...o.ext);
  const pad = o.pad ? [...new Array<number>(o.pad - 1).fill(0), o.pad] : [];
  return Buffer.from([...h, ...o.payload, ...pad]);
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

test('parseRtp reads the fixed header and skips CSRCs, the header extension and padding', () => {
  const plain = parseRtp(rtpBytes({ seq: 0xfffe, ts: 0xfedcba98, marker: true, pt: 97, payload: [1, 2, 3] }));
  assert.deepEqual(plain && { ...plain, payload: [...plain.payload] }, { payloadType: 97, marker: true, seq: 0xfffe, timestamp: 0xfedcba98, ssrc: 0x11223344, payload: [1, 2, 3] });
  const all = parseRtp(rtpBytes({ seq: 5, ts: 7, csrc: 2, ext: [9, 9, 9, 9, 8, 8, 8, 8], pad: 3, payload: [4, 5, 6, 7] }));
  assert.ok(all);
  assert.deepEqual([...all.payload], [4, 5, 6, 7]);
  assert.equal(all.marker, false);
  assert.deepEqual([...(parseRtp(rtpBytes({ seq: 1, ts: 1, ext: [], payload: [42] }))?.payload ?? [])], [42], 'empty extension');
});

test('parseRtp rejects what is not a whole RTP v2 packet', () => {
  assert.equal(parseRtp(Buffer.alloc(11, 0x80)), null, 'shorter than the fixed header');
  const v1 = rtpBytes({ seq: 1, ts: 1, payload: [1] });
  v1[0] = 0x40;
  assert.equal(parseRtp(v1), null, 'version 1');
  assert.equal(parseRtp(rtpBytes({ seq: 1, ts: 1, csrc: 3, payload: [] }).subarray(0, 20)), null, 'CSRC list past the end');
  const longExt = rtpBytes({ seq: 1, ts: 1, ext: [1, 2, 3, 4], payload: [] });
  longExt.writeUInt16BE(5, 14);
  assert.equal(parseRtp(longExt), null, 'extension longer than the packet');
  const bigPad = rtpBytes({ seq: 1, ts: 1, pad: 2, payload: [1, 2] });
  bigPad[bigPad.length - 1] = 10;
  assert.equal(parseRtp(bigPad), null, 'padding longer than the payload');
});

test('H264Depay: STAP-A SPS+PPS and an FU-A IDR become one keyframe with the rebuilt NAL header', () => {
  const d = new H264Depay();
  assert.equal(d.caps, 'video/x-h264,stream-format=byte-stream,alignment=au');
  const fus = fuA(IDR, 2); // start, middle, end
  assert.equal(fus.length, 3);
  const out = feed(d, [pkt(100, 3000, stapA(SPS, PPS)), pkt(101, 3000, fus[0] ?? []), pkt(102, 3000, fus[1] ?? []), pkt(103, 3000, fus[2] ?? [], true)]);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]?.data, annexB(SPS, PPS, IDR));
  assert.equal(out[0]?.rtpTime, 3000);
  assert.equal(out[0]?.key, true);
});

test('H264Depay: nothing comes out before the first IDR, and its parameter sets are remembered', () => {
  const d = new H264Depay();
  const before = feed(d, [pkt(1, 0, stapA(SPS, PPS), true), pkt(2, 3600, P1, true), pkt(3, 7200, P2, true)]);
  assert.deepEqual(before, []);
  const [idr, p] = feed(d, [pkt(4, 10800, IDR, true), pkt(5, 14400, P1, true)]);
  assert.deepEqual(idr?.data, annexB(SPS, PPS, IDR), 'SPS/PPS seen before the IDR go in front of it');
  assert.equal(idr?.key, true);
  assert.deepEqual(p?.data, annexB(P1));
  assert.equal(p?.key, false);
});

test('H264Depay: the marker bit and a timestamp change both end a frame', () => {
  const d = new H264Depay();
  assert.deepEqual(d.push(pkt(10, 900, stapA(SPS, PPS))), []);
  assert.deepEqual(d.push(pkt(11, 900, IDR)), [], 'no marker, same timestamp: the frame goes on');
  const [byTs] = d.push(pkt(12, 4500, P1));
  assert.deepEqual(byTs?.data, annexB(SPS, PPS, IDR), 'a new timestamp closes the previous frame');
  assert.equal(byTs?.rtpTime, 900);
  // two slices of one frame, ended by the marker
  assert.deepEqual(d.push(pkt(13, 4500, P2)), []);
  const [byMarker] = d.push(pkt(14, 4500, P1, true));
  assert.deepEqual(byMarker?.data, annexB(P1, P2, P1));
  assert.equal(byMarker?.rtpTime, 4500);
  assert.deepEqual(d.push(pkt(15, 8100, P2, true)).map((u) => u.rtpTime), [8100]);
});

test('H264Depay: a lost FU-A middle drops that frame only', () => {
  const d = new H264Depay();
  const big = [0x41, ...Array.from({ length: 30 }, (_, i) => i)];
  const fus = fuA(big, 10);
  assert.equal(fus.length, 3);
  const out = feed(d, [
    pkt(65534, 0, stapA(SPS, PPS)),
    pkt(65535, 0, IDR, true), // the sequence number wraps right after
    pkt(0, 3600, fus[0] ?? []),
    // seq 1 (the middle) is lost
    pkt(2, 3600, fus[2] ?? [], true),
    pkt(3, 7200, P2, true),
    ...fuA(big, 10).map((f, i) => pkt(4 + i, 10800, f, i === 2)),
  ]);
  assert.deepEqual(
    out.map((u) => u.rtpTime),
    [0, 7200, 10800],
  );
  assert.deepEqual(out[1]?.data, annexB(P2), 'nothing of the broken frame is glued to the next one');
  assert.deepEqual(out[2]?.data, annexB(big), 'a whole FU-A is rebuilt');
});

test('H264Depay: a lost packet inside a many-NAL frame drops the whole frame, parameter sets included', () => {
  const d = new H264Depay();
  const out = feed(d, [
    pkt(1, 0, stapA(SPS, PPS, IDR), true),
    pkt(2, 3600, P1),
    // seq 3, the second slice, is lost
    pkt(4, 3600, P2, true),
    pkt(5, 7200, stapA(SPS, PPS)),
    pkt(6, 7200, fuA(IDR, 2)[0] ?? []),
    // seq 7, the FU middle, is lost
    pkt(8, 7200, fuA(IDR, 2)[2] ?? [], true),
    pkt(9, 10800, P1, true),
  ]);
  assert.deepEqual(
    out.map((u) => u.rtpTime),
    [0, 10800],
  );
});

test('H264Depay: a lost FU-A end (with the marker) drops that frame only, not the whole next one', () => {
  const d = new H264Depay();
  const big = [0x41, ...Array.from({ length: 30 }, (_, i) => 100 + i)];
  const fus = fuA(big, 10);
  const out = feed(d, [
    pkt(1, 0, stapA(SPS, PPS, IDR), true),
    pkt(2, 3600, fus[0] ?? []),
    pkt(3, 3600, fus[1] ?? []),
    // seq 4, the FU end with the marker, is lost
    ...fuA(big, 10).map((f, i) => pkt(5 + i, 7200, f, i === 2)),
    pkt(8, 10800, P1, true),
  ]);
  assert.deepEqual(
    out.map((u) => u.rtpTime),
    [0, 7200, 10800],
  );
  assert.deepEqual(out[1]?.data, annexB(big));
});

test('H264Depay: sprop-parameter-sets go before an IDR that lacks them, never twice, and in-band sets replace them', () => {
  const b64 = (n: number[]) => Buffer.from(n).toString('base64');
  const d = new H264Depay({ 'sprop-parameter-sets': `${b64(SPS)},${b64(PPS)}` });
  const [first] = d.push(pkt(1, 0, IDR, true));
  assert.deepEqual(first?.data, annexB(SPS, PPS, IDR));
  const SPS2 = [0x67, 0x64, 0x00, 0x1f, 0xbb];
  const PPS2 = [0x68, 0xee, 0x3c, 0x80];
  const [inBand] = d.push(pkt(2, 3600, stapA(SPS2, PPS2, IDR), true));
  assert.deepEqual(inBand?.data, annexB(SPS2, PPS2, IDR), 'in-band sets present: not duplicated');
  const [later] = d.push(pkt(3, 7200, IDR, true));
  assert.deepEqual(later?.data, annexB(SPS2, PPS2, IDR), 'the latest sets are used');
  const [p] = d.push(pkt(4, 10800, P1, true));
  assert.deepEqual(p?.data, annexB(P1), 'not before a non-IDR frame');
});

// H.265: 2-byte NAL headers: F(1) type(6) layerId(6) tid(3)
test('H264Depay: parameter sets put before a keyframe go after its access unit delimiter, which stays first', () => {
  const b64 = (n: number[]) => Buffer.from(n).toString('base64');
  const AUD = [0x09, 0xf0];
  const d = new H264Depay({ 'sprop-parameter-sets': `${b64(SPS)},${b64(PPS)}` });
  const [first] = d.push(pkt(1, 0, stapA(AUD, IDR), true));
  assert.deepEqual(first?.data, annexB(AUD, SPS, PPS, IDR));
  const [p] = d.push(pkt(2, 3600, stapA(AUD, P1), true));
  assert.deepEqual(p?.data, annexB(AUD, P1));
});

const h265 = (type: number, ...body: number[]) => [type << 1, 0x01, ...body];
const VPS = h265(32, 0x0c, 0x01);
const HSPS = h265(33, 0x01, 0x01);
const HPPS = h265(34, 0xc1, 0x72);

test('H265Depay: an AP with VPS/SPS/PPS and an FU IDR give one keyframe; the FU header is rebuilt to 2 bytes', () => {
  const d = new H265Depay();
  assert.equal(d.caps, 'video/x-h265,stream-format=byte-stream,alignment=au');
  const ap = [48 << 1, 0x01, ...[VPS, HSPS, HPPS].flatMap((n) => [0, n.length, ...n])];
  const fu = (s: boolean, e: boolean, ...body: number[]) => [49 << 1, 0x01, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 19, ...body];
  const out = feed(d, [pkt(7, 1000, ap), pkt(8, 1000, fu(true, false, 0xaf, 0x01)), pkt(9, 1000, fu(false, false, 0x02)), pkt(10, 1000, fu(false, true, 0x03), true)]);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]?.data, annexB(VPS, HSPS, HPPS, [0x26, 0x01, 0xaf, 0x01, 0x02, 0x03]));
  assert.equal(out[0]?.key, true);
  // F bit and the top layer-id bit survive from the payload header; the type comes from the FU header
  const d2 = new H265Depay();
  feed(d2, [pkt(1, 0, ap)]);
  assert.deepEqual(d2.push(pkt(2, 0, [0xe3, 0x41, 0x80 | 21, 0x55])), []);
  const [u] = d2.push(pkt(3, 0, [0xe3, 0x41, 0x40 | 21, 0x56], true));
  assert.deepEqual(u?.data.subarray(-8), Buffer.from([0, 0, 0, 1, 0xab, 0x41, 0x55, 0x56]), 'type 21 (CRA), F and layer bits kept, TID byte kept');
  assert.equal(u?.key, true);
});

test('H265Depay: sprop-vps/sps/pps go before an IRAP without them; non-IRAP frames before the first one are dropped', () => {
  const b64 = (n: number[]) => Buffer.from(n).toString('base64');
  const d = new H265Depay({ 'sprop-vps': b64(VPS), 'sprop-sps': b64(HSPS), 'sprop-pps': b64(HPPS) });
  const trail = h265(1, 0xd0, 0x01);
  const idr = h265(20, 0xaf, 0x09);
  const out = feed(d, [pkt(1, 0, trail, true), pkt(2, 3000, idr, true), pkt(3, 6000, trail, true)]);
  assert.deepEqual(
    out.map((u) => [u.rtpTime, u.key]),
    [
      [3000, true],
      [6000, false],
    ],
  );
  assert.deepEqual(out[0]?.data, annexB(VPS, HSPS, HPPS, idr));
  assert.deepEqual(out[1]?.data, annexB(trail));
});

/** An MPEG4-GENERIC AAC-hbr payload: AU-headers-length, 13+3-bit headers, then the data. */
function aacPayload(sizes: number[], data: Buffer): Buffer {
  const h = Buffer.alloc(2 + 2 * sizes.length);
  h.writeUInt16BE(16 * sizes.length, 0);
  sizes.forEach((s, i) => h.writeUInt16BE(s << 3, 2 + 2 * i));
  return Buffer.concat([h, data]);
}

/** Big-endian bit fields [value, bits] packed into bytes, zero-padded. */
function bitsToBuffer(fields: [number, number][]): Buffer {
  const bits = fields.flatMap(([v, n]) => Array.from({ length: n }, (_, i) => (v >> (n - 1 - i)) & 1));
  return Buffer.from(Array.from({ length: Math.ceil(bits.length / 8) }, (_, i) => bits.slice(i * 8, i * 8 + 8).reduce((a, bit, j) => a | (bit << (7 - j)), 0)));
}

const HBR = { mode: 'AAC-hbr', config: '1210', sizelength: '13', indexlength: '3', indexdeltalength: '3' };
const adtsLength = (b: Buffer | undefined) => (b ? (((b[3] ?? 0) & 3) << 11) | ((b[4] ?? 0) << 3) | ((b[5] ?? 0) >> 5) : -1);

test('AacDepay: the ADTS header for config 1210 matches what ffmpeg -f adts writes', () => {
  const d = new AacDepay(HBR);
  assert.equal(d.caps, 'audio/mpeg,mpegversion=4,stream-format=adts');
  const au = Buffer.alloc(340, 0x5a); // ffmpeg's first frame of an LC 44.1 kHz stereo clip was 347 bytes with its header
  const [u] = d.push(pkt(1, 0, aacPayload([au.length], au), true));
  assert.ok(u);
  // `ffmpeg -i clip.mp4 -vn -c:a copy -f adts -` (aac 44100 Hz stereo LC): ff f1 50 80 2b 7f fc
  const ffmpeg = Buffer.from([0xff, 0xf1, 0x50, 0x80, 0x2b, 0x7f, 0xfc]);
  assert.deepEqual(u.data.subarray(0, 7), ffmpeg);
  assert.equal(adtsLength(u.data), 347);
  assert.deepEqual(u.data.subarray(7), au);
  // with the 13-bit length masked, any size gives the same header
  const [v] = d.push(pkt(2, 1024, aacPayload([1500], Buffer.alloc(1500)), true));
  const mask = (b: Buffer) => Buffer.from([b[0] ?? 0, b[1] ?? 0, b[2] ?? 0, (b[3] ?? 0) & 0xfc, 0, (b[5] ?? 0) & 0x1f, b[6] ?? 0]);
  assert.deepEqual(mask(v?.data.subarray(0, 7) ?? Buffer.alloc(0)), mask(ffmpeg));
  assert.equal(adtsLength(v?.data), 1507);
});

test('AacDepay: two AUs in one packet leave as two ADTS frames at ts and ts+1024', () => {
  const d = new AacDepay(HBR);
  const a = Buffer.alloc(100, 1);
  const b = Buffer.alloc(200, 2);
  const ts = 2 ** 32 - 512; // the second AU's timestamp wraps
  const out = d.push(pkt(9, ts, aacPayload([100, 200], Buffer.concat([a, b])), true));
  assert.deepEqual(
    out.map((u) => [u.rtpTime, u.data.length, adtsLength(u.data), u.key]),
    [
      [ts, 107, 107, true],
      [512, 207, 207, true],
    ],
  );
  assert.deepEqual(out[0]?.data.subarray(7), a);
  assert.deepEqual(out[1]?.data.subarray(7), b);
});

test('AacDepay: AU headers of other bit lengths (AAC-lbr, a shorter index-delta) are read at the right bits', () => {
  const lbr = new AacDepay({ mode: 'AAC-lbr', config: '1408', sizelength: '6', indexlength: '2', indexdeltalength: '2' });
  // three 8-bit headers (6-bit size + 2-bit index): sizes 3, 1, 2
  const p = Buffer.from([0, 24, 3 << 2, 1 << 2, 2 << 2, 10, 11, 12, 20, 30, 31]);
  assert.deepEqual(
    lbr.push(pkt(1, 160, p, true)).map((u) => [u.rtpTime, [...u.data.subarray(7)]]),
    [
      [160, [10, 11, 12]],
      [1184, [20]],
      [2208, [30, 31]],
    ],
  );
  // 13+3 bits for the first header, 13+1 for each next one: 44 bits, padded to 6 bytes
  const odd = new AacDepay({ ...HBR, indexdeltalength: '1' });
  const h = bitsToBuffer([[44, 16], [2, 13], [0, 3], [3, 13], [0, 1], [1, 13], [0, 1]]);
  const q = Buffer.concat([h, Buffer.from([1, 2, 3, 4, 5, 6])]);
  assert.deepEqual(
    odd.push(pkt(1, 0, q, true)).map((u) => [...u.data.subarray(7)]),
    [
      [1, 2],
      [3, 4, 5],
      [6],
    ],
  );
});

test('AacDepay: one AU split over 3 packets leaves whole from the last one; a lost part drops only that AU', () => {
  const d = new AacDepay(HBR);
  const au = Buffer.from(Array.from({ length: 2500 }, (_, i) => i & 0xff));
  const parts = [au.subarray(0, 1000), au.subarray(1000, 2000), au.subarray(2000)];
  const frag = (seq: number, ts: number, i: number) => pkt(seq, ts, aacPayload([au.length], parts[i] ?? Buffer.alloc(0)), i === 2);
  assert.deepEqual(d.push(frag(1, 4096, 0)), []);
  assert.deepEqual(d.push(frag(2, 4096, 1)), []);
  const [whole] = d.push(frag(3, 4096, 2));
  assert.equal(whole?.rtpTime, 4096);
  assert.equal(adtsLength(whole?.data), 2507);
  assert.deepEqual(whole?.data.subarray(7), au);
  // the middle part of the next AU is lost
  assert.deepEqual(feed(d, [frag(4, 5120, 0), frag(6, 5120, 2)]), []);
  const next = d.push(pkt(7, 6144, aacPayload([3], Buffer.from([7, 8, 9])), true));
  assert.deepEqual(
    next.map((u) => [u.rtpTime, [...u.data.subarray(7)]]),
    [[6144, [7, 8, 9]]],
  );
});

test('AacDepay refuses a config it cannot turn into ADTS', () => {
  assert.throws(() => new AacDepay({ mode: 'AAC-hbr' }), /config=absent/);
  assert.throws(() => new AacDepay({ config: 'zz' }), /config=zz/);
});

test('parseAacConfig reads object type, frequency index and channels', () => {
  assert.deepEqual(parseAacConfig('1210'), { objectType: 2, freqIndex: 4, channels: 2 });
  assert.deepEqual(parseAacConfig('121056E500'), { objectType: 2, freqIndex: 4, channels: 2 }, 'with an SBR extension, upper case');
  assert.deepEqual(parseAacConfig('1188'), { objectType: 2, freqIndex: 3, channels: 1 });
  assert.deepEqual(parseAacConfig('1408'), { objectType: 2, freqIndex: 8, channels: 1 }, '16 kHz mono');
  assert.deepEqual(parseAacConfig('12100'), { objectType: 2, freqIndex: 4, channels: 2 }, 'odd length');
  assert.equal(parseAacConfig('1780'), null, 'explicit frequency (index 15)');
  assert.equal(parseAacConfig('f8e0'), null, 'escaped object type (31)');
  for (const bad of ['', '12', 'xyz0', '12 10']) assert.equal(parseAacConfig(bad), null, bad);
});

function media(o: Partial<SdpMedia> & Pick<SdpMedia, 'encodingName'>): SdpMedia {
  const audio = /^(MPEG4|PCM|OPUS)/i.test(o.encodingName);
  return { media: audio ? 'audio' : 'video', payloadType: 96, clockRate: audio ? 8000 : 90000, fmtp: {}, control: '', ...o };
}

test('unsupportedTrack accepts what the depayloaders handle and names what they do not', () => {
  const ok: SdpMedia[] = [
    media({ encodingName: 'H264' }),
    media({ encodingName: 'h264', fmtp: { 'packetization-mode': '1' } }),
    media({ encodingName: 'H265' }),
    media({ encodingName: 'HEVC', fmtp: { 'sprop-max-don-diff': '0' } }),
    media({ encodingName: 'MPEG4-GENERIC', clockRate: 44100, fmtp: HBR }),
    media({ encodingName: 'mpeg4-generic', clockRate: 16000, fmtp: { mode: 'aac-lbr', config: '1408', sizelength: '6', indexlength: '2', indexdeltalength: '2' } }),
    media({ encodingName: 'PCMA' }),
    media({ encodingName: 'PCMU' }),
  ];
  for (const m of ok) assert.equal(unsupportedTrack(m), null, `${m.encodingName} ${JSON.stringify(m.fmtp)}`);
  const no: [SdpMedia, RegExp][] = [
    [media({ encodingName: 'H264', fmtp: { 'packetization-mode': '2' } }), /interleaved/],
    [media({ encodingName: 'H265', fmtp: { 'sprop-max-don-diff': '2' } }), /sprop-max-don-diff/],
    [media({ encodingName: 'MPEG4-GENERIC', clockRate: 44100, fmtp: { mode: 'AAC-hbr' } }), /config \(absent\)/],
    [media({ encodingName: 'MPEG4-GENERIC', clockRate: 48000, fmtp: { ...HBR, config: '2990' } }), /object type 5/],
    [media({ encodingName: 'MPEG4-GENERIC', clockRate: 44100, fmtp: { mode: 'CELP-cbr', config: '1210' } }), /mode celp-cbr/],
    [media({ encodingName: 'MPEG4-GENERIC', clockRate: 44100, fmtp: { config: '1210' } }), /mode absent/],
    [media({ encodingName: 'H264', clockRate: 0 }), /no clock rate/],
    [media({ encodingName: 'OPUS', clockRate: 48000 }), /audio codec OPUS/],
    [media({ encodingName: '', payloadType: 34 }), /video codec PT 34/],
  ];
  for (const [m, re] of no) assert.match(unsupportedTrack(m) ?? 'null', re);
});

test('depayloaderFor picks the depayloader and caps by codec', () => {
  assert.ok(depayloaderFor(media({ encodingName: 'H264' })) instanceof H264Depay);
  assert.ok(depayloaderFor(media({ encodingName: 'HEVC' })) instanceof H265Depay);
  assert.ok(depayloaderFor(media({ encodingName: 'MPEG4-GENERIC', clockRate: 44100, fmtp: HBR })) instanceof AacDepay);
  assert.equal(depayloaderFor(media({ encodingName: 'PCMA' })).caps, 'audio/x-alaw,rate=8000,channels=1');
  assert.equal(depayloaderFor(media({ encodingName: 'PCMU', clockRate: 16000, channels: 2 })).caps, 'audio/x-mulaw,rate=16000,channels=2');
  assert.throws(() => depayloaderFor(media({ encodingName: 'VP8' })), /VP8/);
});

test('G711Depay: each payload is one unit, copied out of the packet', () => {
  const d = new G711Depay('alaw', 8000, 1);
  const payload = Buffer.from([0xd5, 0xd5, 0x55]);
  const [u] = d.push(pkt(1, 160, payload));
  assert.deepEqual(u, { data: Buffer.from([0xd5, 0xd5, 0x55]), rtpTime: 160, key: true });
  payload[0] = 0;
  assert.equal(u?.data[0], 0xd5, 'a copy, not a view of a buffer the caller may reuse');
  assert.deepEqual(d.push(pkt(2, 320, [])), []);
});

test('RtpTimeline: the first unit takes `now`, then RTP time counts, across the 32-bit wrap', () => {
  const t = new RtpTimeline(90000);
  const start = 2 ** 32 - 45000; // 0.5 s before the wrap
  assert.equal(t.ptsNs(start, 7e9), 7e9);
  assert.equal(t.ptsNs(start + 3600, 99e9), 7.04e9, 'later `now` values do not move it');
  assert.equal(t.ptsNs(45000, 0), 8e9, '1 s on, past the wrap');
  // an hour in 5 s steps: no drift, no rebase
  let ts = 45000;
  let pts = 0;
  for (let i = 0; i < 720; i++) {
    ts = (ts + 450000) >>> 0;
    pts = t.ptsNs(ts, 0);
  }
  assert.equal(pts, 8e9 + 3600e9);
  const near = new RtpTimeline(8000);
  near.ptsNs(0xffffff00, 0);
  assert.equal(near.ptsNs(0x100, 0), (0x200 * 1e9) / 8000);
});

test('RtpTimeline: a B-frame earlier than the first unit gets an earlier PTS, clamped at 0', () => {
  const t = new RtpTimeline(90000);
  assert.equal(t.ptsNs(1000, 5e9), 5e9);
  assert.equal(t.ptsNs(1000 + 3 * 3600, 0), 5.12e9);
  assert.equal(t.ptsNs(1000 - 3600, 0), 4.96e9, 'before the first unit');
  assert.equal(t.ptsNs(1000 + 3600, 0), 5.04e9);
  const wrapped = new RtpTimeline(90000);
  assert.equal(wrapped.ptsNs(1800, 1e6), 1e6);
  assert.equal(wrapped.ptsNs(2 ** 32 - 1800, 0), 0, 'earlier across the wrap, below 0: clamped');
  assert.equal(wrapped.ptsNs(1800 + 9000, 0), 1e6 + 1e8);
});

test('RtpTimeline: a jump over 10 s either way rebases to the given now; up to 10 s is time passing', () => {
  const t = new RtpTimeline(90000);
  t.ptsNs(500, 1e9);
  assert.equal(t.ptsNs(500 + 10 * 90000, 0), 11e9, 'exactly 10 s: still the same timeline');
  assert.equal(t.ptsNs(500 + 21 * 90000 + 1, 30e9), 30e9, 'forward jump: rebased to now');
  assert.equal(t.ptsNs(500 + 22 * 90000 + 1, 0), 31e9, 'and counts from there');
  assert.equal(t.ptsNs(12345, 40e9), 40e9, 'backward jump (camera restart): rebased to now');
  assert.equal(t.ptsNs(12345 + 45000, 0), 40.5e9);
  // a jump when `now` lags behind what was already given out never goes back in time
  assert.equal(t.ptsNs(99_000_000, 1e9), 40.5e9 + 1);
  const custom = new RtpTimeline(1000, 2);
  custom.ptsNs(0, 0);
  assert.equal(custom.ptsNs(2500, 7e9), 7e9, 'maxJumpS is honoured');
});

/** Push each packet with its payload in one shared buffer that is scribbled over after every push (a reused read buffer). */
function feedReused(d: { push(p: RtpPacket): AccessUnit[] }, packets: RtpPacket[]): AccessUnit[] {
  const shared = Buffer.alloc(4096);
  const out: AccessUnit[] = [];
  for (const p of packets) {
    const n = p.payload.copy(shared);
    out.push(...d.push({ ...p, payload: shared.subarray(0, n) }));
    shared.fill(0xee);
  }
  return out;
}

test('depayloaders copy what they keep: payloads in a buffer reused after each push give the same units', () => {
  const big = Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  const idr = [0x65, ...big];
  const fus = fuA(idr, 1000);
  const h264 = () => [pkt(1, 90, stapA(SPS, PPS)), ...fus.map((f, i) => pkt(2 + i, 90, f, i === fus.length - 1)), pkt(2 + fus.length, 180, P1), pkt(3 + fus.length, 180, P2, true)];
  const fresh = feed(new H264Depay(), h264());
  assert.equal(fresh.length, 2);
  assert.deepEqual(fresh[0]?.data, annexB(SPS, PPS, idr));
  assert.deepEqual(feedReused(new H264Depay(), h264()), fresh);
  const au = Buffer.from(big);
  const aac = () => [0, 1, 2].map((i) => pkt(20 + i, 4096, aacPayload([au.length], au.subarray(i * 1000, (i + 1) * 1000)), i === 2));
  const aacFresh = feed(new AacDepay(HBR), aac());
  assert.equal(aacFresh.length, 1);
  assert.deepEqual(aacFresh[0]?.data.subarray(7), au);
  assert.deepEqual(feedReused(new AacDepay(HBR), aac()), aacFresh);
  // and a unit handed out stays intact while the depayloader goes on (it owns its bytes)
  const d = new H264Depay();
  const [first] = feedReused(d, h264().slice(0, 1 + fus.length));
  feedReused(d, [pkt(2 + fus.length, 270, fuA([0x65, ...big.map((x) => x ^ 0xff)], 1000)[0] ?? [])]);
  assert.deepEqual(first?.data, annexB(SPS, PPS, idr));
});

test('H264Depay: a new FU start while one is open (its end lost without a gap) drops only the open one', () => {
  const d = new H264Depay();
  const a = fuA(IDR, 2);
  const b = fuA([0x65, 9, 8, 7, 6], 2);
  const out = feed(d, [pkt(1, 90, stapA(SPS, PPS)), pkt(2, 90, a[0] ?? []), pkt(3, 90, b[0] ?? []), pkt(4, 90, b[1] ?? []), pkt(5, 90, b[2] ?? [], true)]);
  assert.deepEqual(out.map((u) => u.data), [annexB(SPS, PPS, [0x65, 9, 8, 7, 6])]);
});

test('H264Depay with lend: the same frames, as views into one reused buffer (no Buffer per frame)', () => {
  const fus = fuA([0x65, ...Array.from({ length: 3000 }, (_, i) => i & 0xff)], 1000);
  const packets = [pkt(1, 90, stapA(SPS, PPS)), ...fus.map((f, i) => pkt(2 + i, 90, f, i === fus.length - 1)), pkt(2 + fus.length, 180, P1, true), pkt(3 + fus.length, 270, P2, true)];
  const owned = feed(new H264Depay(), packets);
  const d = new H264Depay({}, { lend: true });
  const lent: AccessUnit[] = [];
  for (const p of packets) for (const u of d.push(p)) lent.push({ ...u, data: Buffer.from(u.data) }); // copied at once, as appsrc's push does
  assert.deepEqual(lent, owned);
  assert.equal(owned.length, 3);
  const views = packets.flatMap((p) => d.push({ ...p, seq: p.seq + packets.length, timestamp: p.timestamp + 900 }));
  assert.equal(views.length, 3);
  assert.ok(views.every((u) => u.data.buffer === views[0]?.data.buffer), 'every lent frame is in the same buffer');
  assert.ok(views.every((u) => u.data.byteOffset === views[0]?.data.byteOffset), 'every lent frame starts where the last one did');
});

test('H264Depay with lend: a frame ended by the next timestamp (no marker) is not overwritten by that packet', () => {
  // a camera that never sets the marker: each frame ends when the next one's first packet arrives, in the same push()
  const frames = [IDR, P1, P2, [0x41, 0x9a, 0x03, 0x04]];
  const packets = [pkt(1, 0, stapA(SPS, PPS)), ...frames.map((f, i) => pkt(2 + i, 3000 * (i + 1), f, i === frames.length - 1))];
  const owned = feed(new H264Depay(), packets);
  const d = new H264Depay({}, { lend: true });
  const lent: AccessUnit[] = [];
  for (const p of packets) for (const u of d.push(p)) lent.push({ ...u, data: Buffer.from(u.data) });
  assert.equal(owned.length, 4);
  assert.deepEqual(lent, owned);
  assert.deepEqual(owned[1]?.data, annexB(P1));
});
