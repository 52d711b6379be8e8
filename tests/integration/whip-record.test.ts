import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checkRecording, download, recordingOpened, settledRecordings } from '../helpers/recorded-file';
import { start, waitFor } from '../helpers/proc';
import { startService, type Service } from '../helpers/service';
import { publishWhip, startRtpSource, type RtpSource, type WhipPublisher } from '../helpers/whip-client';
import { assertNoLeak, collectGarbage, gcEnv, showUsage, type TreeUsage, treeUsage } from '../helpers/usage';

// The WHIP endpoint of the real service, fed by werift publishers (ffmpeg RTP inside), recording H.264 + Opus → MP4.

const TOKEN = 'pub-s3cret';
// a port range of our own so that a leftover service of another test cannot collide
const ICE_MIN = 40000 + Math.floor(Math.random() * 50) * 200;
const dir = mkdtempSync(join(tmpdir(), 'edgerec-whip-rec-'));
let s: Service;

before(async () => {
  s = await startService({ conf: `publish_auth_token=${TOKEN}\nrecord_webrtc_streams=true\nwebrtc_ice_port_range=${ICE_MIN}-${ICE_MIN + 199}\n`, env: gcEnv(dir) });
});
after(async () => {
  await s?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

/** POST the offer to /whip/<name> as a WHIP client does; keeps the session URL. */
function whipExchange(name: string, query = '', token = TOKEN) {
  let location = '';
  return {
    location: () => location,
    offerTo: async (sdp: string) => {
      const r = await fetch(`${s.base}/whip/${name}${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: sdp,
      });
      const text = await r.text();
      if (r.status !== 201) throw new Error(`WHIP POST → ${r.status}: ${text}`);
      location = r.headers.get('location') ?? '';
      return text;
    },
  };
}

interface StreamRow {
  name: string;
  published: string;
  status: string;
  recording: boolean;
  videoCodec: string | null;
  audioCodec: string | null;
}

async function liveStream(name: string, timeoutMs = 15_000): Promise<StreamRow> {
  return waitFor(
    `stream ${name} recording in /rest-api/stream/find_all`,
    async () => {
      const r = await s.post('/rest-api/stream/find_all', {});
      const rows = r.status === 200 ? (r.body as StreamRow[]) : [];
      return rows.find((x) => x.name === name && x.recording);
    },
    timeoutMs,
    100,
  );
}

async function del(location: string, token = TOKEN): Promise<number> {
  const r = await fetch(s.base + location, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

test('werift H.264 + Opus over HTTP WHIP (record_webrtc_streams=true) → MP4 with H.264 + AAC that plays, in sync', async (t) => {
  const x = whipExchange('werift-h264');
  const pub = await publishWhip({ video: 'h264', audio: true, offerTo: x.offerTo });
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= pub.close());
  t.after(close);
  assert.match(x.location(), /^\/whip\/werift-h264\/[0-9a-f-]{36}$/);
  const live = await liveStream('werift-h264');
  assert.equal(live.published, 'webrtc');
  assert.equal(live.status, 'publishing');
  assert.equal(live.videoCodec, 'H264');
  assert.equal(live.audioCodec, 'OPUS');
  await recordingOpened(s, 'werift-h264');
  await new Promise((r) => setTimeout(r, 5000)); // the length of the recording
  assert.equal(await del(x.location()), 200);
  await close();
  const rows = await settledRecordings(s, 'werift-h264');
  assert.equal(rows.length, 1, JSON.stringify(rows));
  const row = rows[0];
  assert.ok(row && row.state === 'complete' && row.url, `row ${JSON.stringify(row)}`);
  assert.equal(row.published, 'webrtc');
  assert.equal(row.container, 'mp4');
  const file = await download(s.base, row.url, dir);
  const sum = await checkRecording(file, { format: /mp4/, video: 'h264', audio: 'aac', minSeconds: 4, maxSeconds: 6 });
  console.log(`werift H.264 → ${row.fileName}: ${JSON.stringify(sum)}`);
});

const BAD_CODECS_SDP = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 100',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=sendonly',
  'a=rtpmap:100 H265/90000',
  'm=audio 9 UDP/TLS/RTP/SAVPF 9',
  'a=mid:1',
  'a=sendonly',
  'a=rtpmap:9 G722/8000',
  '',
].join('\r\n');

test('bad offers, bad tokens, PATCH and OPTIONS get clear answers', async () => {
  const post = async (body: string, headers: Record<string, string>, path = '/whip/bad') => {
    const r = await s.json(path, { method: 'POST', headers, body });
    return { status: r.status, body: r.body as { status?: number; error?: string }, type: r.headers.get('content-type') ?? '' };
  };
  const sdp = { 'Content-Type': 'application/sdp', Authorization: `Bearer ${TOKEN}` };
  const cases: [string, Awaited<ReturnType<typeof post>>, number, RegExp][] = [
    ['garbage', await post('hello, this is not SDP', sdp), 400, /not an SDP/],
    ['no accepted codec', await post(BAD_CODECS_SDP, sdp), 400, /no codec we accept.*H265.*G722.*accepted: VP8 or H\.264 video, Opus audio/],
    ['wrong Content-Type', await post('v=0\r\n', { ...sdp, 'Content-Type': 'text/plain' }), 415, /application\/sdp.*text\/plain/],
    ['no token', await post(BAD_CODECS_SDP, { 'Content-Type': 'application/sdp' }), 401, /Bearer/],
    ['wrong token', await post(BAD_CODECS_SDP, { ...sdp, Authorization: 'Bearer nope' }), 401, /Bearer/],
    ['bad record flag', await post(BAD_CODECS_SDP, sdp, '/whip/bad?record=maybe'), 400, /record: true or false/],
  ];
  for (const [what, r, status, error] of cases) {
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.match(r.type, /application\/json/, what);
    assert.equal(r.body.status, status, what);
    assert.match(r.body.error ?? '', error, what);
    console.log(`${what} → ${r.status} ${r.body.error}`);
  }
  const patch = await s.json('/whip/bad/00000000-0000-0000-0000-000000000000', { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: 'a=x' });
  assert.equal(patch.status, 405);
  assert.match(String((patch.body as { error: string }).error), /trickle ICE/);
  assert.match(patch.headers.get('allow') ?? '', /DELETE/);
  const gone = await s.json('/whip/bad/00000000-0000-0000-0000-000000000000', { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(gone.status, 404);
  assert.equal(await del('/whip/bad/00000000-0000-0000-0000-000000000000', 'nope'), 401);
  const opt = await fetch(`${s.base}/whip/bad`, { method: 'OPTIONS', headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(opt.status, 204);
  assert.equal(opt.headers.get('access-control-allow-origin'), '*');
  assert.match(opt.headers.get('access-control-allow-methods') ?? '', /POST.*DELETE/);
  assert.match(opt.headers.get('access-control-allow-headers') ?? '', /Authorization.*Content-Type/);
  assert.match(opt.headers.get('access-control-expose-headers') ?? '', /Location/);
  assert.equal(opt.headers.get('accept-post'), 'application/sdp');
});

test('a publisher SIGKILLed mid-stream leaves a playable file in record_dir within 10 s', async (t) => {
  const helper = join(__dirname, '..', 'helpers', 'whip-client.js');
  const script = `
    const { publishWhip } = require(process.env.HELPER);
    publishWhip({ video: 'h264', audio: true, offerTo: async (sdp) => {
      const r = await fetch(process.env.URL, { method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + process.env.TOKEN }, body: sdp });
      const text = await r.text();
      if (r.status !== 201) throw new Error('WHIP POST ' + r.status + ' ' + text);
      return text;
    } }).then(() => console.log('publishing')).catch((e) => { console.error(e); process.exit(1); });`;
  // its own process group: the werift publisher and its ffmpeg die together
  const child = start(process.execPath, ['-e', script], {
    detached: true,
    env: { ...process.env, HELPER: helper, URL: `${s.base}/whip/killed`, TOKEN },
  });
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  t.after(killGroup);
  await liveStream('killed', 20_000);
  await waitFor('a tmp fragment', () => readdirSync(s.tmpDir).length > 0, 10_000, 100);
  await new Promise((r) => setTimeout(r, 4000)); // media before the crash
  killGroup();
  const killedAt = Date.now();
  await child.exited;
  const rows = await settledRecordings(s, 'killed', 10_000);
  const ms = Date.now() - killedAt;
  console.log(`publisher killed: file complete in record_dir after ${ms} ms`);
  assert.ok(ms <= 10_000, `took ${ms} ms`);
  const row = rows[0];
  assert.ok(rows.length === 1 && row && row.state === 'complete' && row.url, JSON.stringify(rows));
  assert.ok(readdirSync(s.recordDir).includes(row.fileName), 'the file is in record_dir');
  const sum = await checkRecording(join(s.recordDir, row.fileName), { format: /mp4/, video: 'h264', audio: 'aac', minSeconds: 3, maxSeconds: 7 });
  console.log(`killed publisher → ${row.fileName}: ${JSON.stringify(sum)}`);
});

test('20 publish/stop cycles (recording each) leave the service and media host fds and RSS flat', async (t) => {
  const source: RtpSource = await startRtpSource({ video: 'h264', audio: true });
  t.after(() => source.stop());
  const cycles = Number(process.env.EDGEREC_WHIP_CYCLES ?? 20); // more for a longer look at RSS
  let warm: TreeUsage | null = null;
  for (let i = 1; i <= cycles; i++) {
    const name = `cycle-${i}`;
    const x = whipExchange(name);
    let pub: WhipPublisher | null = null;
    try {
      pub = await publishWhip({ video: 'h264', audio: true, source, offerTo: x.offerTo });
      await liveStream(name);
      await recordingOpened(s, name); // stop once a keyframe arrived and the file really started
      assert.equal(await del(x.location()), 200);
    } finally {
      await pub?.close();
    }
    if (i === 3) {
      await settledRecordings(s, name);
      warm = treeUsage(s.proc.pid, await collectGarbage(s.proc.pid, dir));
    }
    if (i % 10 === 0) console.log(`cycle ${i}: ${showUsage(treeUsage(s.proc.pid))}`);
  }
  const rows = await settledRecordings(s, `cycle-${cycles}`);
  assert.equal(rows[0]?.state, 'complete');
  // finalizing and closing peer connections settle within a few seconds
  await waitFor('streams to end', async () => ((await s.post('/rest-api/stream/find_all', {})).body as unknown[]).length === 0 || null, 10_000, 200).catch(() => undefined);
  const end = treeUsage(s.proc.pid, await collectGarbage(s.proc.pid, dir));
  assert.ok(warm);
  console.log(`after 3 cycles: ${showUsage(warm)}; after ${cycles}: ${showUsage(end)}`);
  // Hosts free every pipeline that ended (scripts/patches dispose()): before, each kept 2 fds until the host
  // retired after 64. The bounds do not grow with the cycle count (tests/helpers/usage.ts).
  assertNoLeak(warm, end, `${cycles - 3} WHIP publish/stop cycles`);
  const done = await s.json('/rest-api/recordings?limit=100');
  const cyc = (done.body as { recordings: { stream: string; state: string }[] }).recordings.filter((r) => r.stream.startsWith('cycle-'));
  assert.equal(cyc.length, cycles);
  assert.ok(cyc.every((r) => r.state === 'complete'), JSON.stringify(cyc.filter((r) => r.state !== 'complete')));
});
