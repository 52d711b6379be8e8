import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../src/lib/errors';
import { log } from '../../src/lib/log';
import { WhipIngest, type WhipIngestEvents, type WhipPublish } from '../../src/ingest/whip/whip-ingest';
import { launchChromium, type ChromiumHandle } from '../helpers/chromium';
import { probe } from '../helpers/media';
import { freePort, start, waitFor } from '../helpers/proc';
import { collectGarbageHere, LEAK_MAX_FDS, LEAK_MAX_RSS_MIB } from '../helpers/usage';
import { publishWhip, startRtpSource } from '../helpers/whip-client';

const quiet = log.child({ test: 'whip-ingest' }, { level: process.env.EDGEREC_TEST_LOG ?? 'warn' });
// a port range of our own so parallel test files do not collide
const PORT_MIN = 42000 + Math.floor(Math.random() * 100) * 200;

function newIngest(t: TestContext): WhipIngest {
  const ing = new WhipIngest({ portRange: { min: PORT_MIN, max: PORT_MIN + 199 }, publicIp: '', loopback: true, log: quiet });
  t.after(() => ing.close());
  return ing;
}

/** The next event of that type, or a rejection after timeoutMs. */
function next<K extends keyof WhipIngestEvents & string>(ing: WhipIngest, ev: K, timeoutMs: number): Promise<WhipIngestEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ing.off(ev, fn);
      reject(new Error(`no ${ev} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const fn = (...args: WhipIngestEvents[K]) => {
      clearTimeout(timer);
      ing.off(ev, fn);
      resolve(args);
    };
    ing.on(ev, fn);
  });
}

async function expectAppError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AppError, `expected AppError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

/** Publish from a werift client, forward the ingest's RTP into gst-launch (depay + mux), return the file's ffprobe. */
async function recordThroughGst(t: TestContext, video: 'vp8' | 'h264'): Promise<void> {
  const ing = newIngest(t);
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-whip-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const published = next(ing, 'publish', 15_000);
  let id = '';
  const client = await publishWhip({
    video,
    audio: true,
    offerTo: async (sdp) => {
      const a = await ing.createSession(`gst-${video}`, sdp, { login: 'alice', ip: '127.0.0.1', record: true });
      id = a.id;
      return a.answerSdp;
    },
  });
  t.after(() => client.close());
  const [pub] = await published;
  assert.equal(pub.name, `gst-${video}`);
  assert.equal(pub.login, 'alice');
  assert.equal(pub.record, true);
  assert.deepEqual(pub.codecs(), { video: video === 'vp8' ? 'VP8' : 'H264', audio: 'OPUS' });
  const v = pub.video;
  const a = pub.audio;
  assert.ok(v && a, 'both tracks known');
  assert.equal(v.clockRate, 90000);
  assert.equal(a.clockRate, 48000);
  assert.match(a.encodingName, /^opus$/i);

  const vport = await freePort();
  const aport = await freePort();
  const file = join(dir, video === 'vp8' ? 'out.webm' : 'out.mp4');
  const depay = video === 'vp8' ? 'rtpvp8depay wait-for-keyframe=true' : 'rtph264depay ! h264parse';
  const mux = video === 'vp8' ? 'webmmux' : 'mp4mux';
  const gst = start('gst-launch-1.0', [
    '-e',
    ...`${mux} name=m ! filesink location=${file}`.split(' '),
    ...`udpsrc port=${vport} caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=${v.encodingName.toUpperCase()},payload=${v.payloadType} ! rtpjitterbuffer latency=200 ! ${depay} ! queue ! m.`.split(' '),
    ...`udpsrc port=${aport} caps=application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=${a.payloadType} ! rtpjitterbuffer latency=200 ! rtpopusdepay ! opusparse ! queue ! m.`.split(' '),
  ]);
  t.after(() => gst.stop('SIGKILL'));
  await waitFor('gst-launch PLAYING', () => gst.output().includes('PLAYING'), 10_000);
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  const counts = { video: 0, audio: 0 };
  let ptOk = true;
  pub.onRtp((kind, packet) => {
    counts[kind]++;
    if ((packet[1] ?? 0) % 128 !== (kind === 'video' ? v.payloadType : a.payloadType)) ptOk = false;
    sock.send(packet, kind === 'video' ? vport : aport, '127.0.0.1');
  });
  pub.requestKeyframe();
  const t0 = Date.now();
  // werift sends a sender report every few seconds: SR-based wall clock must land near now
  let lastVideoTs = 0;
  pub.onRtp((kind, packet) => {
    if (kind === 'video') lastVideoTs = packet.readUInt32BE(4);
  });
  const wall = await waitFor('a video sender report', () => (lastVideoTs ? pub.wallClockOf('video', lastVideoTs) : null), 8000);
  assert.ok(Math.abs(wall - Date.now()) < 2000, `SR wall clock ${wall} near now ${Date.now()}`);
  await waitFor('4 s of media', () => Date.now() - t0 >= 4000, 10_000);
  const unpublished = next(ing, 'unpublish', 5000);
  assert.ok(ing.deleteSession(id));
  const [gone, reason] = await unpublished;
  assert.equal(gone, pub);
  assert.equal(reason, 'deleted');
  assert.equal(ing.deleteSession(id), false, 'a second DELETE finds nothing');
  await gst.stop('SIGINT', 10_000);
  assert.ok(ptOk, 'every packet carries its track payload type');
  assert.ok(counts.video > 50 && counts.audio > 50, `packets forwarded ${JSON.stringify(counts)}`);
  const info = await probe(file);
  const codecs = info.streams.map((s) => s.codec_name).sort();
  assert.deepEqual(codecs, [video === 'vp8' ? 'vp8' : 'h264', 'opus'].sort(), `streams in ${file}`);
  const duration = Number(info.format.duration);
  assert.ok(duration > 2.5 && duration < 7, `duration ${duration} s for ~4.5 s of media`);
}

test('werift publisher, VP8 + Opus: publish event, RTP plays as WebM, SR wall clock, DELETE → unpublish', async (t) => {
  await recordThroughGst(t, 'vp8');
});

test('werift publisher, H.264 + Opus: RTP plays as MP4', async (t) => {
  await recordThroughGst(t, 'h264');
});

const ONLY_AV1_AND_PCMU = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=video 9 UDP/TLS/RTP/SAVPF 45',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=sendonly',
  'a=rtpmap:45 AV1/90000',
  'm=audio 9 UDP/TLS/RTP/SAVPF 0',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=sendonly',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

test('bad offers → BAD_REQUEST naming what is accepted; a name already publishing → CONFLICT', async (t) => {
  const ing = newIngest(t);
  await expectAppError(ing.createSession('x', 'garbage'), 'BAD_REQUEST', /not an SDP/);
  await expectAppError(ing.createSession('x', ''), 'BAD_REQUEST', /empty/);
  await expectAppError(ing.createSession('x', ONLY_AV1_AND_PCMU), 'BAD_REQUEST', /AV1.*PCMU.*VP8 or H\.264 video, Opus audio/);
  const pcmuOnly = ONLY_AV1_AND_PCMU.replace(/m=video[\s\S]*?(?=m=audio)/, '');
  await expectAppError(ing.createSession('x', pcmuOnly), 'BAD_REQUEST', /audio \[PCMU\].*accepted: VP8 or H\.264 video, Opus audio/);
  const dataOnly = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n';
  await expectAppError(ing.createSession('x', dataOnly), 'BAD_REQUEST', /no audio or video/);
  assert.equal(ing.size, 0, 'refused offers leave no session');

  const published = next(ing, 'publish', 15_000);
  const client = await publishWhip({ video: 'vp8', audio: false, offerTo: async (sdp) => (await ing.createSession('dup', sdp)).answerSdp });
  t.after(() => client.close());
  const [pub] = await published;
  assert.deepEqual(pub.codecs(), { video: 'VP8', audio: null });
  assert.equal(pub.audio, null);
  await expectAppError(ing.createSession('dup', client.offerSdp), 'CONFLICT', /dup.*already publishing/);
  assert.equal(ing.size, 1);
});

test('PLI at start and after unrepaired video loss; publisher closed abruptly → unpublish within 10 s', async (t) => {
  const ing = newIngest(t);
  const published = next(ing, 'publish', 15_000);
  const client = await publishWhip({ video: 'h264', audio: true, offerTo: async (sdp) => (await ing.createSession('vanish', sdp)).answerSdp });
  t.after(() => client.close());
  await published;
  await waitFor('a PLI at start', () => client.plis() >= 1, 3000);
  await new Promise((r) => setTimeout(r, 600)); // past the keyframe-request rate limit
  const before = client.plis();
  client.dropVideo(5);
  await waitFor('a PLI after loss', () => client.plis() > before, 3000);
  const unpublished = next(ing, 'unpublish', 10_000);
  const t0 = Date.now();
  await client.pc.close();
  const [pub, reason] = await unpublished;
  assert.equal(pub.name, 'vanish');
  console.log(`werift publisher closed: unpublish after ${Date.now() - t0} ms (${reason})`);
  assert.equal(ing.size, 0);
  assert.equal(ing.sessionOf('vanish'), undefined, 'the name is free again');
});

test('20 publish/stop cycles: open fds bounded, RSS roughly flat', async (t) => {
  const ing = newIngest(t);
  const source = await startRtpSource({ video: 'vp8', audio: true });
  t.after(() => source.stop());
  const fds = () => readdirSync('/proc/self/fd').length;
  const cycle = async (i: number) => {
    const published = next(ing, 'publish', 15_000);
    let id = '';
    const client = await publishWhip({
      video: 'vp8',
      audio: true,
      source,
      offerTo: async (sdp) => {
        const a = await ing.createSession(`cycle-${i}`, sdp);
        id = a.id;
        return a.answerSdp;
      },
    });
    try {
      await published;
      const unpublished = next(ing, 'unpublish', 5000);
      assert.ok(ing.deleteSession(id));
      await unpublished;
    } finally {
      await client.close();
    }
  };
  for (let i = 0; i < 3; i++) await cycle(i);
  await new Promise((r) => setTimeout(r, 500)); // sockets close asynchronously
  collectGarbageHere();
  const fd0 = fds();
  const rss0 = process.memoryUsage().rss;
  for (let i = 3; i < 23; i++) await cycle(i);
  // sockets close asynchronously: the fds must come back within 5 s
  await waitFor('fds back near the start', () => fds() <= fd0 + LEAK_MAX_FDS, 5000).catch(() => undefined);
  collectGarbageHere();
  const fd1 = fds();
  const rss1 = process.memoryUsage().rss;
  console.log(`20 WHIP cycles: fds ${fd0} → ${fd1}, RSS ${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(fd1 <= fd0 + LEAK_MAX_FDS, `open fds grew from ${fd0} to ${fd1} (at most +${LEAK_MAX_FDS})`);
  // this process holds both the ingest and the publishers: the same bound as the service tree's (tests/helpers/usage.ts)
  assert.ok(rss1 - rss0 <= LEAK_MAX_RSS_MIB * 2 ** 20, `RSS grew ${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB (at most +${LEAK_MAX_RSS_MIB})`);
  assert.equal(ing.size, 0);
});

const PAGE = `<!doctype html><meta charset="utf-8"><title>whip test</title><script>
window.pc = null;
window.publish = async (name, codec) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240, frameRate: 15 }, audio: true });
  const pc = new RTCPeerConnection();
  window.pc = pc;
  for (const track of stream.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendonly' });
    if (track.kind === 'video' && codec === 'h264') {
      const h264 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/H264');
      if (h264.length === 0) throw new Error('this Chromium cannot send H.264');
      tr.setCodecPreferences(h264);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } });
  });
  const res = await fetch('/whip/' + encodeURIComponent(name), { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) return 'refused ' + res.status + ' ' + text;
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return 'ok ' + res.headers.get('Location');
};
</script>`;

describe('Chromium publisher (fake devices) over WHIP', () => {
  let ing: WhipIngest;
  let chrome: ChromiumHandle;
  let server: Server;
  let base = '';

  before(async () => {
    ing = new WhipIngest({ portRange: { min: PORT_MIN, max: PORT_MIN + 199 }, publicIp: '', loopback: true, log: quiet });
    server = createServer((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const name = decodeURIComponent((req.url ?? '').replace(/^\/whip\//, ''));
        ing.createSession(name, Buffer.concat(chunks).toString(), { ip: req.socket.remoteAddress ?? '' }).then(
          ({ id, answerSdp }) => res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/whip/${name}/${id}` }).end(answerSdp),
          (err: unknown) => res.writeHead(err instanceof AppError ? err.status : 500).end(String(err)),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
    chrome = await launchChromium();
  });

  after(async () => {
    await chrome?.close();
    server?.close();
    await ing?.close();
  });

  async function publishFromPage(name: string, codec: 'vp8' | 'h264'): Promise<{ pub: WhipPublish; close: () => Promise<void> }> {
    const published = next(ing, 'publish', 20_000);
    const ctx = chrome.browser.contexts()[0] ?? (await chrome.browser.newContext());
    const page = await ctx.newPage();
    await page.goto(base);
    const result = await page.evaluate(([n, c]) => (globalThis as unknown as { publish: (n: string, c: string) => Promise<string> }).publish(n, c), [name, codec] as const);
    assert.match(result, /^ok \/whip\//, `page result: ${result}`);
    const [pub] = await published;
    assert.equal(pub.name, name);
    assert.equal(pub.ip, '127.0.0.1');
    return { pub, close: () => page.close() };
  }

  async function countRtp(pub: WhipPublish, ms: number): Promise<{ video: number; audio: number }> {
    const counts = { video: 0, audio: 0 };
    const off = pub.onRtp((kind) => counts[kind]++);
    await new Promise((r) => setTimeout(r, ms));
    off();
    return counts;
  }

  test('default offer: VP8 video + Opus audio, then DELETE', async () => {
    const { pub, close } = await publishFromPage('chrome-vp8', 'vp8');
    try {
      assert.deepEqual(pub.codecs(), { video: 'VP8', audio: 'OPUS' });
      assert.equal(pub.audio?.clockRate, 48000);
      const counts = await countRtp(pub, 1500);
      assert.ok(counts.video > 10 && counts.audio > 20, `RTP from Chromium ${JSON.stringify(counts)}`);
      const unpublished = next(ing, 'unpublish', 5000);
      assert.ok(ing.deleteSession(pub.id));
      assert.equal((await unpublished)[1], 'deleted');
    } finally {
      await close();
    }
  });

  test('codec preferences set to H.264 → H.264 publish', async () => {
    const { pub, close } = await publishFromPage('chrome-h264', 'h264');
    try {
      assert.deepEqual(pub.codecs(), { video: 'H264', audio: 'OPUS' });
      const counts = await countRtp(pub, 1500);
      assert.ok(counts.video > 10, `H.264 RTP from Chromium ${JSON.stringify(counts)}`);
      const unpublished = next(ing, 'unpublish', 5000);
      assert.ok(ing.deleteSession(pub.id));
      await unpublished;
    } finally {
      await close();
    }
  });

  test('Chromium SIGKILLed while publishing → unpublish within 10 s', async () => {
    const { pub } = await publishFromPage('chrome-killed', 'vp8');
    const unpublished = next(ing, 'unpublish', 10_000);
    const t0 = Date.now();
    await chrome.kill();
    const [gone, reason] = await unpublished;
    assert.equal(gone, pub);
    console.log(`Chromium killed: unpublish after ${Date.now() - t0} ms (${reason})`);
    assert.equal(ing.size, 0);
  });
});
