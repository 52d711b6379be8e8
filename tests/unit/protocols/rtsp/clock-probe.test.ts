import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clockOffsetMs, findSenderReport } from '../../../../src/protocols/rtcp/sender-report';
import { controlUrl } from '../../../../src/protocols/rtsp/session';
import { RtspTcpSplitter, type RtspTcpItem } from '../../../../src/protocols/rtsp/interleaved';

const NTP_UNIX = 2_208_988_800;

/** An RTCP SR (no report blocks): V=2, PT=200, length 6. */
function sr(ssrc: number, ntpSec: number, ntpFrac: number, rtpTime: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(ntpSec, 8);
  b.writeUInt32BE(ntpFrac, 12);
  b.writeUInt32BE(rtpTime, 16);
  b.writeUInt32BE(25, 20);
  b.writeUInt32BE(25_000, 24);
  return b;
}

/** An RTCP RR with one report block: V=2, RC=1, PT=201, length 7. */
function rr(ssrc: number): Buffer {
  const b = Buffer.alloc(32, 0x55);
  b[0] = 0x81;
  b[1] = 201;
  b.writeUInt16BE(7, 2);
  b.writeUInt32BE(ssrc, 4);
  return b;
}

/** An SDES with one CNAME chunk "cam" padded to 32 bits: V=2, SC=1, PT=202. */
function sdes(ssrc: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x81;
  b[1] = 202;
  b.writeUInt16BE(3, 2);
  b.writeUInt32BE(ssrc, 4);
  b[8] = 1;
  b[9] = 3;
  b.write('cam', 10, 'latin1');
  return b;
}

function frame(channel: number, payload: Buffer): Buffer {
  const h = Buffer.from([0x24, channel, 0, 0]);
  h.writeUInt16BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}

test('findSenderReport reads a lone SR and the SR inside a compound RR + SR + SDES packet', () => {
  const lone = findSenderReport(sr(0xdeadbeef, NTP_UNIX + 1_700_000_000, 0x8000_0000, 123_456));
  assert.deepEqual(lone, { ssrc: 0xdeadbeef, ntp: (BigInt(NTP_UNIX + 1_700_000_000) << 32n) | 0x8000_0000n, rtpTime: 123_456 });
  const compound = findSenderReport(Buffer.concat([rr(1), sr(2, NTP_UNIX + 5, 0, 9), sdes(2)]));
  assert.equal(compound?.ssrc, 2);
  assert.equal(compound?.rtpTime, 9);
  assert.equal(compound?.ntp, BigInt(NTP_UNIX + 5) << 32n);
});

test('findSenderReport: RR only, RTP, truncated or wrong-version packets hold no SR', () => {
  assert.equal(findSenderReport(Buffer.concat([rr(1), sdes(1)])), null);
  assert.equal(findSenderReport(sr(1, 2, 3, 4).subarray(0, 20)), null, 'truncated SR');
  assert.equal(findSenderReport(Buffer.concat([rr(1), sr(1, 2, 3, 4)]).subarray(0, 40)), null, 'compound cut inside the SR');
  const v1 = sr(1, 2, 3, 4);
  v1[0] = 0x40;
  assert.equal(findSenderReport(v1), null, 'version 1');
  // An RTP packet whose marker bit + PT 72 makes byte 1 equal 200 is not RTCP if its length does not fit.
  const rtp = Buffer.alloc(12);
  rtp[0] = 0x80;
  rtp[1] = 200;
  rtp.writeUInt16BE(0x1234, 2);
  assert.equal(findSenderReport(rtp), null);
  assert.equal(findSenderReport(Buffer.alloc(0)), null);
});

test('clockOffsetMs converts NTP (1900, 32.32 fixed point) to epoch ms and subtracts the arrival time', () => {
  const half = 0x8000_0000;
  const at = 1_700_000_000_000;
  assert.equal(clockOffsetMs({ ssrc: 0, ntp: (BigInt(NTP_UNIX + 1_700_000_000) << 32n) | BigInt(half), rtpTime: 0 }, at), 500);
  assert.equal(clockOffsetMs({ ssrc: 0, ntp: BigInt(NTP_UNIX + 1_700_003_600) << 32n, rtpTime: 0 }, at), 3_600_000);
  assert.equal(clockOffsetMs({ ssrc: 0, ntp: BigInt(NTP_UNIX + 1_699_999_990) << 32n, rtpTime: 0 }, at), -10_000);
  assert.ok(Object.is(clockOffsetMs({ ssrc: 0, ntp: BigInt(NTP_UNIX + 1_700_000_000) << 32n, rtpTime: 0 }, at + 0.3), 0), 'no -0');
});

const PLAY_OK = 'RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: abc;timeout=60\r\nRTP-Info: url=rtsp://h/s/stream=0\r\n\r\n';
const DESCRIBE_OK = 'RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=x\r\n';
const GET_PARAMETER = 'GET_PARAMETER rtsp://h/s RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 0\r\n\r\n';

function stream(): { bytes: Buffer; srAt: number } {
  const rtp = Buffer.alloc(1400, 0xaa);
  rtp[0] = 0x80;
  rtp[1] = 96;
  const parts = [Buffer.from(DESCRIBE_OK, 'latin1'), Buffer.from(PLAY_OK, 'latin1'), frame(0, rtp), Buffer.from(GET_PARAMETER, 'latin1'), frame(0, rtp)];
  const srAt = Buffer.concat(parts).length;
  parts.push(frame(1, Buffer.concat([rr(7), sr(7, NTP_UNIX + 10, 0, 1)])), frame(2, Buffer.alloc(0)), frame(0, rtp));
  return { bytes: Buffer.concat(parts), srAt };
}

function summary(items: RtspTcpItem[]): string[] {
  return items.map((it) =>
    it.kind === 'frame' ? `frame ${it.channel} ${it.payload.length} ${findSenderReport(it.payload)?.ssrc ?? '-'}` : it.kind === 'answer' ? `answer ${it.status} ${it.body.length}` : `request ${it.method}`,
  );
}

test('RtspTcpSplitter separates answers, server requests and $ frames, whatever the TCP chunking', () => {
  const { bytes, srAt } = stream();
  const expected = ['answer 200 10', 'answer 200 0', 'frame 0 1400 -', 'request GET_PARAMETER', 'frame 0 1400 -', 'frame 1 60 7', 'frame 2 0 -', 'frame 0 1400 -'];
  const whole = new RtspTcpSplitter();
  assert.deepEqual(summary(whole.push(bytes)), expected);
  assert.equal(whole.pending(), 0);
  const answer = new RtspTcpSplitter().push(Buffer.from(PLAY_OK, 'latin1'))[0];
  assert.equal(answer?.kind === 'answer' && answer.headers.get('session')?.[0], 'abc;timeout=60');

  // The SR frame split inside its 4-byte header, then inside its payload.
  for (const cuts of [[srAt + 2], [srAt + 4 + 30], [srAt + 1, srAt + 3, srAt + 50]]) {
    const s = new RtspTcpSplitter();
    const got: RtspTcpItem[] = [];
    let from = 0;
    for (const c of [...cuts, bytes.length]) {
      got.push(...s.push(bytes.subarray(from, c)));
      from = c;
    }
    assert.deepEqual(summary(got), expected, `cut at ${cuts.join(',')}`);
  }
  // One byte at a time (copies: the splitter may keep views into earlier chunks).
  const s = new RtspTcpSplitter();
  const got: RtspTcpItem[] = [];
  for (let i = 0; i < bytes.length; i++) got.push(...s.push(Buffer.from(bytes.subarray(i, i + 1))));
  assert.deepEqual(summary(got), expected);
});

test('RtspTcpSplitter: chunks read into one reused buffer (as the RTSP client does) give intact frames', () => {
  const { bytes } = stream();
  const fingerprint = (items: RtspTcpItem[]) => items.map((it) => (it.kind === 'frame' ? `${it.channel}:${it.payload.toString('hex')}` : it.kind));
  const want = fingerprint(new RtspTcpSplitter().push(Buffer.from(bytes)));
  for (const size of [1, 3, 5, 700, 1403, 4096]) {
    const reused = Buffer.alloc(4096);
    const s = new RtspTcpSplitter();
    const got: string[] = [];
    for (let from = 0; from < bytes.length; from += size) {
      const n = bytes.copy(reused, 0, from, Math.min(bytes.length, from + size));
      // payloads are read during the push's turn, then the buffer is scribbled over, as the next read would
      got.push(...fingerprint(s.push(reused.subarray(0, n))));
      reused.fill(0xee);
    }
    assert.deepEqual(got, want, `chunks of ${size}`);
    assert.equal(s.pending(), 0);
  }
});

test('RtspTcpSplitter refuses bytes that are neither RTSP nor $ frames, and oversized headers', () => {
  assert.throws(() => new RtspTcpSplitter().push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n', 'latin1')), /not RTSP: "HTTP\/1\.1 200 OK/);
  assert.throws(() => new RtspTcpSplitter().push(Buffer.from([0x80, 0x60, 1, 2, 3, 4, 5, 6, 7, 8])), /not RTSP/);
  assert.throws(() => new RtspTcpSplitter().push(Buffer.from('RTSP/1.0 200 OK\r\nContent-Length: -4\r\n\r\n', 'latin1')), /bad Content-Length/);
  const big = new RtspTcpSplitter();
  assert.throws(() => big.push(Buffer.from(`RTSP/1.0 200 OK\r\nX: ${'a'.repeat(70_000)}`, 'latin1')), /header larger than/);
});

test('controlUrl resolves a=control against Content-Base as cameras expect', () => {
  assert.equal(controlUrl('rtsp://h:554/live/', 'stream=0'), 'rtsp://h:554/live/stream=0');
  assert.equal(controlUrl('rtsp://h:554/live', 'trackID=1'), 'rtsp://h:554/live/trackID=1');
  assert.equal(controlUrl('rtsp://h:554/live/', '*'), 'rtsp://h:554/live/');
  assert.equal(controlUrl('rtsp://h:554/live/', ''), 'rtsp://h:554/live/');
  assert.equal(controlUrl('rtsp://h:554/live/', 'rtsp://u:p@h:554/other/track1'), 'rtsp://h:554/other/track1');
});
