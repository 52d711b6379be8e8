import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { probeCameraClock } from '../../src/protocols/rtsp/clock-probe';
import { rejectsWith } from '../helpers/rtsp-errors';
import { freePort, waitFor } from '../helpers/proc';
import { startRtspServer } from '../helpers/rtsp-server';

const PASSWORD = 'S3cr#t:pw@x';
const NTP_UNIX = 2_208_988_800;


function near(actual: number | null, expected: number, tolerance: number, what: string): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} ms, expected ${expected} ± ${tolerance}`);
}

test('the offset of a real RTSP server: --clock-offset-s 3600 gives +1 h, the plain server ~0, on every track kind', async (t) => {
  const [shifted, plain] = await Promise.all([startRtspServer({ clockOffsetS: 3600 }), startRtspServer()]);
  t.after(() => Promise.all([shifted.stop(), plain.stop()]));
  const [a, b, c] = await Promise.all([
    probeCameraClock(shifted.url('h264aac'), { timeoutMs: 10_000 }),
    probeCameraClock(shifted.url('mjpeg'), { timeoutMs: 10_000 }),
    probeCameraClock(plain.url('h264aac'), { timeoutMs: 10_000 }),
  ]);
  near(a, 3_600_000, 2000, 'h264aac, +3600 s');
  near(b, 3_600_000, 2000, 'mjpeg, +3600 s');
  near(c, 0, 1000, 'h264aac, true clock');
});

test('Basic and Digest credentials from the URL work; wrong ones fail with a 401 error that hides the password', async (t) => {
  const servers = await Promise.all(
    (['basic', 'digest'] as const).map((method) => startRtspServer({ auth: { user: 'cam', password: PASSWORD, method }, clockOffsetS: -120 })),
  );
  t.after(() => Promise.all(servers.map((s) => s.stop())));
  const offsets = await Promise.all(servers.map((s) => probeCameraClock(s.url('h264', { user: 'cam', password: PASSWORD }), { timeoutMs: 10_000 })));
  offsets.forEach((o, i) => near(o, -120_000, 2000, `auth ${i ? 'digest' : 'basic'}`));
  for (const s of servers) {
    const wrong = await rejectsWith(probeCameraClock(s.url('h264', { user: 'cam', password: 'Wr0ngPass' }), { timeoutMs: 5000 }), 'unauthorized');
    assert.ok(!wrong.message.includes('Wr0ngPass') && !wrong.message.includes('cam:'), wrong.message);
    await rejectsWith(probeCameraClock(s.url('h264'), { timeoutMs: 5000 }), 'unauthorized');
  }
});

type FakeMode = 'rtp-only' | 'sr-with-play' | 'silent';

/** A scripted RTSP camera on 127.0.0.1: one video track over TCP; records the methods it got. */
async function fakeCamera(mode: FakeMode): Promise<{ port: number; methods: string[]; open: () => number; stop: () => Promise<void> }> {
  const methods: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    sock.on('close', () => {
      clearInterval(timer);
      sockets.delete(sock);
    });
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'), i = 0; end >= 0 && i < 20; end = buf.indexOf('\r\n\r\n'), i++) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const method = head.split(' ')[0] ?? '';
        const cseq = /CSeq: (\d+)/i.exec(head)?.[1] ?? '0';
        methods.push(method);
        if (mode === 'silent') continue;
        const ok = (extra: string, body = ''): string => `RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;
        if (method === 'DESCRIBE') {
          const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n';
          sock.write(ok(`Content-Base: rtsp://127.0.0.1:${port}/fake/\r\nContent-Type: application/sdp\r\n`, sdp));
        } else if (method === 'SETUP') {
          sock.write(ok('Session: fake1;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n'));
        } else if (method === 'PLAY') {
          const answer = Buffer.from(ok('Session: fake1\r\n'), 'latin1');
          const rtp = frame(0, Buffer.alloc(1000, 0x80));
          if (mode === 'sr-with-play') {
            // One TCP write: the PLAY answer, RTP, an SR with NTP 0 (no wall clock: skipped), a real SR 2 min ahead.
            const ahead = Date.now() / 1000 + 120 + NTP_UNIX;
            sock.write(Buffer.concat([answer, rtp, frame(1, sr(0)), frame(1, sr(ahead))]));
          } else {
            sock.write(answer);
            let n = 0;
            timer = setInterval(() => (n++ < 400 ? sock.write(Buffer.concat([rtp, rtp, rtp])) : clearInterval(timer)), 20);
          }
        } else if (method === 'TEARDOWN') {
          sock.end(ok(''));
        }
      }
    });
  });
  let port = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  const stop = (): Promise<void> => {
    sockets.forEach((s) => s.destroy());
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return { port, methods, open: () => sockets.size, stop };
}

function frame(channel: number, payload: Buffer): Buffer {
  const h = Buffer.from([0x24, channel, 0, 0]);
  h.writeUInt16BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}

function sr(ntpSeconds: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(Math.floor(ntpSeconds), 8);
  b.writeUInt32BE(Math.floor((ntpSeconds % 1) * 2 ** 32), 12);
  return b;
}

test('no SR within the timeout or the byte budget gives null; a refused or mute camera is an RtspError; TEARDOWN is sent', async (t) => {
  const closed = await freePort();
  const pw = encodeURIComponent(PASSWORD);
  const refused = await rejectsWith(probeCameraClock(`rtsp://cam:${pw}@127.0.0.1:${closed}/x`, { timeoutMs: 3000 }), 'refused');
  assert.match(refused.message, new RegExp(`connection refused by 127\\.0\\.0\\.1:${closed}`));
  // A raw '#' in the password makes the URL unparsable: the error must not echo it.
  const bad = await rejectsWith(probeCameraClock(`rtsp://cam:${PASSWORD}@127.0.0.1:${closed}/x`, { timeoutMs: 3000 }), 'bad-url');
  assert.ok(!bad.message.includes('S3cr'), bad.message);

  const rtpOnly = await fakeCamera('rtp-only');
  t.after(() => rtpOnly.stop());
  assert.equal(await probeCameraClock(`rtsp://127.0.0.1:${rtpOnly.port}/fake`, { timeoutMs: 1500 }), null);
  assert.deepEqual(rtpOnly.methods, ['DESCRIBE', 'SETUP', 'PLAY', 'TEARDOWN']);
  await waitFor('the probe to close its connection', () => rtpOnly.open() === 0, 3000, 20);
  // The byte budget ends the wait long before the 20 s timeout.
  const t0 = Date.now();
  assert.equal(await probeCameraClock(`rtsp://127.0.0.1:${rtpOnly.port}/fake`, { timeoutMs: 20_000, maxBytes: 64 * 1024 }), null);
  assert.ok(Date.now() - t0 < 15_000, 'maxBytes ended the probe');

  const withPlay = await fakeCamera('sr-with-play');
  t.after(() => withPlay.stop());
  near(await probeCameraClock(`rtsp://127.0.0.1:${withPlay.port}/fake`, { timeoutMs: 3000 }), 120_000, 1000, 'SR in the PLAY answer chunk');
  assert.deepEqual(withPlay.methods, ['DESCRIBE', 'SETUP', 'PLAY', 'TEARDOWN']);

  const mute = await fakeCamera('silent');
  t.after(() => mute.stop());
  const err = await rejectsWith(probeCameraClock(`rtsp://cam:${pw}@127.0.0.1:${mute.port}/fake`, { timeoutMs: 800 }), 'timeout');
  assert.equal(err.message, `no answer to DESCRIBE from 127.0.0.1:${mute.port} within 800 ms`);
  await waitFor('the probe to close its connection', () => mute.open() === 0, 3000, 20);
});
