import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { parseTarget, RtspError } from '../../../../src/protocols/rtsp/target';
import { RtspSession } from '../../../../src/protocols/rtsp/session';
import { answer, camera, fakeCamera, PASSWORD, type Camera, type Packet, type Script } from '../../../helpers/fake-rtsp-camera';
import { freePort, waitFor } from '../../../helpers/proc';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
/** every test ends within this, even when the code under test hangs */
const BOUND = { timeout: 10_000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


/** A session through PLAY, closed after the test. */
async function playing(t: TestContext, cam: Camera, batchMs: number, onFrame?: RtspSession['onFrame']): Promise<RtspSession> {
  const s = new RtspSession(cam.url);
  t.after(() => s.close());
  s.readBatchMs = batchMs;
  if (onFrame) s.onFrame = onFrame;
  const d = await s.describe();
  await s.setup(d, d.media);
  await s.play();
  return s;
}

/** `n` packets of varied sizes (0 to 65535) and channels, each payload's bytes unique to it. */
function packets(n: number, sizes = [1, 1400, 12, 0, 3000, 200, 65535, 7, 900]): Packet[] {
  return Array.from({ length: n }, (_, i) => {
    const payload = Buffer.alloc(sizes[i % sizes.length] ?? 1);
    for (let j = 0; j < payload.length; j++) payload[j] = (i * 31 + j * 7 + (j >> 8)) & 0xff;
    return { channel: [0, 1, 6, 7][i % 4] ?? 0, payload };
  });
}
const framed = (p: Packet): Buffer => Buffer.concat([Buffer.from([0x24, p.channel, p.payload.length >> 8, p.payload.length & 0xff]), p.payload]);

function assertSameFrames(got: readonly Packet[], want: readonly Packet[]): void {
  assert.equal(got.length, want.length, 'frame count');
  for (const [i, w] of want.entries()) {
    assert.equal(got[i]?.channel, w.channel, `frame ${i} channel`);
    assert.ok(got[i]?.payload.equals(w.payload), `frame ${i} bytes (${w.payload.length}) intact`);
  }
}

test('handshake: methods, URIs from Content-Base, CSeq, Transport, Session; setup() returns the channels the server picked', BOUND, async (t) => {
  const cam = await fakeCamera(t, camera({ transport: (n, asked) => (n === 1 ? 'RTP/AVP/TCP;unicast;interleaved=6-7' : asked) }));
  const s = new RtspSession(cam.url);
  t.after(() => s.close());
  const d = await s.describe();
  assert.equal(d.base, `rtsp://127.0.0.1:${cam.port}/base/`);
  assert.deepEqual(d.media.map((m) => m.media), ['video', 'audio']);
  const tracks = await s.setup(d, d.media);
  assert.deepEqual(tracks.map((x) => [x.rtpChannel, x.rtcpChannel]), [[0, 1], [6, 7]]);
  await s.play();
  assert.equal(s.playing, true);
  const reqs = cam.peers[0]?.requests ?? [];
  const host = `rtsp://127.0.0.1:${cam.port}`;
  assert.deepEqual(reqs.map((r) => `${r.method} ${r.uri}`), [
    `DESCRIBE ${host}/stream`, `SETUP ${host}/base/trackID=1`, `SETUP ${host}/elsewhere/audio`, `PLAY ${host}/base/`,
  ]);
  assert.deepEqual(reqs.map((r) => r.cseq), [1, 2, 3, 4]);
  assert.equal(reqs[0]?.headers.get('accept'), 'application/sdp');
  assert.equal(reqs[1]?.headers.get('transport'), 'RTP/AVP/TCP;unicast;interleaved=0-1');
  assert.equal(reqs[2]?.headers.get('transport'), 'RTP/AVP/TCP;unicast;interleaved=2-3');
  assert.deepEqual(reqs.map((r) => r.headers.get('session')), [undefined, undefined, 'abc', 'abc']);
  assert.ok(!Buffer.concat(cam.peers[0]?.raw ?? []).includes(PASSWORD), 'the password never goes on the wire');
});

test('Digest: the 401 is answered once, then every request carries a valid Digest with nc counting up', BOUND, async (t) => {
  const user = 'admin';
  const nonce = 'n0nce42';
  const good = camera();
  const ncs: string[] = [];
  const cam = await fakeCamera(t, (req, peer, c) => {
    const auth = req.headers.get('authorization');
    const p = Object.fromEntries([...(auth ?? '').matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]));
    const ha1 = md5(`${user}:cam:${PASSWORD}`);
    const want = md5(`${ha1}:${nonce}:${p.nc}:${p.cnonce}:auth:${md5(`${req.method}:${req.uri}`)}`);
    if (!auth?.startsWith('Digest ') || p.uri !== req.uri || p.response !== want) {
      answer(peer, req, 401, { 'WWW-Authenticate': `Digest realm="cam", nonce="${nonce}", qop="auth"` });
      return;
    }
    ncs.push(`${req.method} ${p.nc ?? ''}`);
    good(req, peer, c);
  });
  await playing(t, cam, 0);
  assert.deepEqual(ncs, ['DESCRIBE 00000001', 'SETUP 00000002', 'SETUP 00000003', 'PLAY 00000004']);
  assert.equal(cam.peers[0]?.requests.length, 5, 'one unauthenticated DESCRIBE, then four');
});

test('a redirect is followed once, to a new connection, and credentials follow to the same host', BOUND, async (t) => {
  const target = await fakeCamera(t, (req, peer, c) => {
    if (req.headers.get('authorization') !== `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`) {
      answer(peer, req, 401, { 'WWW-Authenticate': 'Basic realm="cam"' });
    } else camera()(req, peer, c);
  });
  const first = await fakeCamera(t, (req, peer) => answer(peer, req, 302, { Location: `rtsp://127.0.0.1:${target.port}/moved` }));
  const s = new RtspSession(first.url);
  t.after(() => s.close());
  const d = await s.describe();
  assert.equal(d.base, `rtsp://127.0.0.1:${target.port}/base/`);
  assert.deepEqual(target.peers[0]?.requests.map((r) => r.uri), [`rtsp://127.0.0.1:${target.port}/moved`, `rtsp://127.0.0.1:${target.port}/moved`]);
  await waitFor('the first connection to be closed', () => first.peers[0]?.closed, 2000, 10);
  assert.equal(s.where, `127.0.0.1:${target.port}`);
});

test('a camera that closes the connection after its 401 (Connection: close) is authenticated on a new one', BOUND, async (t) => {
  const cam = await fakeCamera(t, (req, peer, c) => {
    if (req.headers.has('authorization')) return camera()(req, peer, c);
    answer(peer, req, 401, { 'WWW-Authenticate': 'Basic realm="cam"', Connection: 'close' });
    peer.socket.end();
  });
  await playing(t, cam, 0);
  assert.equal(cam.peers.length, 2);
  assert.deepEqual(cam.peers[1]?.requests.map((r) => `${r.method} ${r.headers.has('authorization')}`), ['DESCRIBE true', 'SETUP true', 'SETUP true', 'PLAY true']);
});

for (const batchMs of [0, 50]) {
  test(`frames in awkward TCP chunks reach onFrame whole, in order, and stay intact (readBatchMs ${batchMs})`, BOUND, async (t) => {
    const want = packets(31);
    const stream = Buffer.concat(want.slice(1).map(framed));
    const sizes = [1, 1, 5, 700, 3, 9000, 2, 4096, 13, 60000];
    let writes = 0;
    const cam = await fakeCamera(t, camera({
      transport: (n, asked) => (n === 1 ? 'RTP/AVP/TCP;unicast;interleaved=6-7' : asked),
      // before PLAY: must not reach onFrame
      setupExtra: framed({ channel: 9, payload: Buffer.from('early') }),
      play: (req, peer) => {
        // the first packet and 2 bytes of the next header share the write with the answer
        answer(peer, req, 200, { Session: 'abc' }, '', Buffer.concat([framed(want[0] ?? { channel: 0, payload: Buffer.alloc(0) }), stream.subarray(0, 2)]));
        void (async () => {
          for (let pos = 2, i = 0; pos < stream.length && i < 10_000 && !peer.socket.destroyed; i++) {
            const n = sizes[i % sizes.length] ?? 1;
            peer.socket.write(stream.subarray(pos, pos + n));
            writes++;
            pos += n;
            await sleep(1);
          }
        })();
      },
    }));
    const got: Packet[] = [];
    // payloads are views valid during the call (into the reused read buffer): kept, they are copied
    await playing(t, cam, batchMs, (channel, payload) => got.push({ channel, payload: Buffer.from(payload) }));
    await waitFor('every frame', () => got.length >= want.length, 5000, 10);
    assert.ok(writes > 20, `the server wrote in many chunks (${writes})`);
    assertSameFrames(got, want);
  });
}

test('readBatchMs 50: a packet written every 2 ms arrives in far fewer event-loop turns than writes', BOUND, async (t) => {
  const want = packets(100, [180, 1200, 40]);
  let batches = 0;
  let turnOpen = false;
  let written = 0;
  let startedAt = 0;
  let endedAt = 0;
  const cam = await fakeCamera(t, camera({
    play: (req, peer) => {
      answer(peer, req, 200, { Session: 'abc' });
      void (async () => {
        startedAt = Date.now();
        for (const p of want) {
          if (peer.socket.destroyed) break;
          peer.socket.write(framed(p));
          written++;
          await sleep(2);
        }
        endedAt = Date.now();
      })();
    },
  }));
  const got: Packet[] = [];
  await playing(t, cam, 50, (channel, payload) => {
    got.push({ channel, payload: Buffer.from(payload) });
    if (!turnOpen) {
      turnOpen = true;
      batches++;
      setImmediate(() => (turnOpen = false));
    }
  });
  await waitFor('every frame', () => got.length >= want.length, 10_000, 10);
  assertSameFrames(got, want);
  const spanMs = endedAt - startedAt;
  t.diagnostic(`${batches} onFrame turns for ${written} writes over ${spanMs} ms`);
  assert.equal(written, 100);
  assert.ok(batches <= written / 4, `${batches} onFrame turns for ${written} writes over ${spanMs} ms`);
  assert.ok(batches <= Math.ceil(spanMs / 50) + 3, `${batches} onFrame turns over ${spanMs} ms: at most one per 50 ms`);
});

test('keep-alive: RTCP receiver reports on channels 1 and 3 and OPTIONS with the session at half a 10 s timeout', BOUND, async (t) => {
  const cam = await fakeCamera(t, camera({ session: 'abc;timeout=10' }));
  const s = await playing(t, cam, 0);
  s.startKeepalive();
  const peer = cam.peers[0];
  assert.ok(peer);
  await waitFor('receiver reports and OPTIONS', () => peer.frames.length >= 2 && peer.requests.some((r) => r.method === 'OPTIONS'), 7000, 50);
  assert.deepEqual(peer.frames.map((f) => f.channel).sort(), [1, 3]);
  for (const f of peer.frames) {
    assert.equal(f.payload.length, 8, 'an RR without report blocks is 8 bytes');
    assert.equal(f.payload[0], 0x80, 'V=2, RC=0');
    assert.equal(f.payload[1], 201, 'PT=RR');
    assert.equal(f.payload.readUInt16BE(2), 1, 'length in words - 1');
  }
  const options = peer.requests.find((r) => r.method === 'OPTIONS');
  assert.equal(options?.headers.get('session'), 'abc');
  assert.equal(options?.uri, `rtsp://127.0.0.1:${cam.port}/base/`);
  assert.equal(options?.cseq, 5);
});

for (const batchMs of [0, 50]) {
  test(`onEnd fires once, naming host:port, when the camera drops the connection while playing (readBatchMs ${batchMs})`, BOUND, async (t) => {
    const cam = await fakeCamera(t, camera());
    const s = await playing(t, cam, batchMs);
    const ends: RtspError[] = [];
    s.onEnd = (err) => ends.push(err);
    cam.peers[0]?.socket.destroy();
    await waitFor('onEnd', () => ends.length > 0, 3000, 10);
    await s.close();
    await sleep(50); // a second onEnd would come from the same close event: give it a chance
    assert.equal(ends.length, 1);
    assert.ok(ends[0] instanceof RtspError);
    assert.match(ends[0].message, new RegExp(`127\\.0\\.0\\.1:${cam.port}`));
    assert.ok(!ends[0].message.includes(PASSWORD));
  });
}

test('close() sends TEARDOWN with the session and onEnd stays silent, even when the camera then hangs up', BOUND, async (t) => {
  const cam = await fakeCamera(t, (req, peer, c) => {
    camera()(req, peer, c);
    if (req.method === 'TEARDOWN') peer.socket.end();
  });
  const s = await playing(t, cam, 0);
  let ends = 0;
  s.onEnd = () => ends++;
  await s.close();
  await s.close();
  const peer = cam.peers[0];
  await waitFor('the connection to close', () => peer?.closed, 2000, 10);
  await sleep(50); // onEnd would follow the close event within a turn or two
  const td = peer?.requests.filter((r) => r.method === 'TEARDOWN') ?? [];
  assert.equal(td.length, 1, 'one TEARDOWN for two close() calls');
  assert.equal(td[0]?.headers.get('session'), 'abc');
  assert.equal(td[0]?.uri, `rtsp://127.0.0.1:${cam.port}/base/`);
  assert.equal(ends, 0);
});

for (const batchMs of [0, 10_000]) {
  test(`close() returns within ~600 ms when TEARDOWN is never answered (readBatchMs ${batchMs})`, BOUND, async (t) => {
    const marker = framed({ channel: 0, payload: Buffer.from('sent-while-paused') });
    const cam = await fakeCamera(t, camera({ answerTeardown: false }));
    const got: string[] = [];
    const s = await playing(t, cam, batchMs, (_, p) => got.push(p.toString()));
    cam.peers[0]?.socket.write(marker);
    if (batchMs > 0) {
      await sleep(150); // proving the socket is paused needs a span without delivery
      assert.deepEqual(got, [], 'paused by batching: nothing read');
    } else {
      await waitFor('the frame', () => got.length > 0, 2000, 10);
    }
    const t0 = Date.now();
    await s.close();
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 1500, `close() took ${took} ms`);
    assert.deepEqual(got, ['sent-while-paused'], 'close() resumed the socket to read');
    assert.equal(cam.peers[0]?.requests.at(-1)?.method, 'TEARDOWN');
    await waitFor('the socket destroyed', () => cam.peers[0]?.closed, 2000, 10);
  });
}

test('close() on a socket paused by batching reads the TEARDOWN answer at once', BOUND, async (t) => {
  const cam = await fakeCamera(t, camera());
  const s = await playing(t, cam, 10_000);
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 450, `close() took ${Date.now() - t0} ms: the answer was not read before the 500 ms bound`);
});

test('close() while PLAY waits for its answer makes play() reject instead of leaving it pending', BOUND, async (t) => {
  const cam = await fakeCamera(t, camera({ play: () => undefined, answerTeardown: false }));
  const s = new RtspSession(cam.url);
  t.after(() => s.close());
  const d = await s.describe();
  await s.setup(d, d.media);
  let outcome = 'pending';
  const played = s.play().then(() => (outcome = 'resolved'), (e: unknown) => (outcome = e instanceof RtspError ? `rejected: ${e.message}` : String(e)));
  await waitFor('PLAY at the camera', () => cam.peers[0]?.requests.some((r) => r.method === 'PLAY'), 2000, 10);
  await s.close();
  await Promise.race([played, sleep(1000)]);
  assert.match(outcome, /^rejected: .*127\.0\.0\.1:\d+.*PLAY/);
  assert.equal(cam.peers[0]?.requests.at(-1)?.method, 'TEARDOWN');
});

/** Run the handshake to its failure; checks the error is an RtspError naming host:port and not the password. */
async function handshakeError(t: TestContext, script: Script): Promise<{ err: RtspError; cam: Camera }> {
  const cam = await fakeCamera(t, script);
  const s = new RtspSession(cam.url);
  t.after(() => s.close());
  const err = await s.describe().then((d) => s.setup(d, d.media)).then(() => s.play()).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof RtspError, `expected an RtspError, got ${String(err)}`);
  assert.ok(err.message.includes(`127.0.0.1:${cam.port}`), err.message);
  assert.ok(!err.message.includes(PASSWORD) && !String(err.stack).includes(PASSWORD), err.message);
  return { err, cam };
}

test('404 on DESCRIBE is not-found', BOUND, async (t) => {
  const { err } = await handshakeError(t, (req, peer) => answer(peer, req, 404));
  assert.equal(err.kind, 'not-found');
  assert.equal(err.status, 404);
});

test('461 on SETUP says the camera does not offer TCP', BOUND, async (t) => {
  const good = camera();
  const { err } = await handshakeError(t, (req, peer, c) => (req.method === 'SETUP' ? answer(peer, req, 461) : good(req, peer, c)));
  assert.equal(err.kind, 'status');
  assert.equal(err.status, 461);
  assert.match(err.message, /SETUP.*461.*TCP/);
});

test('a non-RTSP answer is bad-answer', BOUND, async (t) => {
  const { err } = await handshakeError(t, (_, peer) => peer.socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  assert.equal(err.kind, 'bad-answer');
  assert.match(err.message, /not RTSP|speak RTSP/);
});

test('wrong credentials are unauthorized after one retry', BOUND, async (t) => {
  const { err, cam } = await handshakeError(t, (req, peer) => answer(peer, req, 401, { 'WWW-Authenticate': 'Basic realm="cam"' }));
  assert.equal(err.kind, 'unauthorized');
  assert.equal(cam.peers[0]?.requests.length, 2);
});

test('more than 4 MB before PLAY fails the handshake and drops the connection', BOUND, async (t) => {
  const junk = Buffer.concat(Array.from({ length: 66 }, () => framed({ channel: 0, payload: Buffer.alloc(65535, 0xab) })));
  const { err, cam } = await handshakeError(t, (_, peer) => peer.socket.write(junk));
  assert.equal(err.kind, 'bad-answer');
  assert.match(err.message, /more than 4194304 bytes before PLAY/);
  await waitFor('the connection dropped', () => cam.peers[0]?.closed, 3000, 10);
});

test('a refused connection is refused, without the password', BOUND, async () => {
  const port = await freePort();
  const s = new RtspSession(`rtsp://admin:${PASSWORD}@127.0.0.1:${port}/x`);
  const err: unknown = await s.describe().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof RtspError);
  assert.equal(err.kind, 'refused');
  assert.ok(err.message.includes(`127.0.0.1:${port}`) && !err.message.includes(PASSWORD), err.message);
  await s.close();
});

test('an unparsable camera URL is a bad-url RtspError that echoes none of it (a password with # / ? included)', () => {
  for (const url of ['rtsp://admin:pa#ss/w?rd@cam.local:554/live', 'rtsp://[::1/x', 'not a url']) {
    const safe = (err: unknown) => err instanceof RtspError && err.kind === 'bad-url' && /^not a valid RTSP URL: rtsp:\/\/\[user:password@\]host/.test(err.message) && !err.message.includes('pa#ss') && !err.message.includes('cam.local');
    assert.throws(() => new RtspSession(url), safe);
    // parseTarget itself (a redirect's Location goes through it too)
    assert.throws(() => parseTarget(url), safe);
  }
  assert.throws(() => new RtspSession('http://cam.local/live'), (err: unknown) => err instanceof RtspError && err.kind === 'bad-url' && /not an RTSP URL \(http:\/\/\)/.test(err.message));
});
