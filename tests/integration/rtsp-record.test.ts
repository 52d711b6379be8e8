import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { decodeErrors, probe, type ProbeStream } from '../helpers/media';
import { type RtspServer, startRtspServer } from '../helpers/rtsp-server';
import { type Service, startService } from '../helpers/service';
import { waitFor } from '../helpers/proc';

const run = promisify(execFile);

// Real RTSP cameras (GStreamer RTSP server, every codec mount) recorded by the real service from camera.<name>.url
// lines: codecs and durations of the files, TS mode, hardware-encoder probe in health, credentials never leaked.

const PASSWORD = 'S3cretPw-x9';
const WRONG = 'Wr0ngPw-q7';
const ROTATE_S = 6;
const MOUNTS = ['h264aac', 'h264', 'h265', 'h264pcma', 'h264pcmu', 'mjpeg', 'aac'] as const;
const HW = ['v4l2h264enc', 'vah264enc', 'vaapih264enc', 'mpph264enc', 'nvh264enc'];

let srv: RtspServer;
let authSrv: RtspServer;
/** a camera whose clock runs an hour ahead of ours (its RTCP sender reports say so) */
let skewSrv: RtspServer;
let svc: Service;
let tsSvc: Service;
let t0 = 0;

before(async () => {
  [srv, authSrv, skewSrv] = await Promise.all([
    startRtspServer(),
    startRtspServer({ auth: { user: 'viewer', password: PASSWORD } }),
    startRtspServer({ clockOffsetS: 3600 }),
  ]);
  t0 = Date.now();
  const cams = MOUNTS.map((m) => `camera.${m}.url=${srv.url(m)}`).join('\n');
  [svc, tsSvc] = await Promise.all([
    startService({
      conf: `${cams}\ncamera.mon.url=${srv.url('h264aac')}\ncamera.mon.record=false\ncamera.udp.url=${srv.url('h264aac')}\ncamera.udp.transport=udp\ncamera.h264aac.template={streamName}-{startTime}-{startTimeMillis}\ncamera.skew.url=${skewSrv.url('h264')}\ncamera.skew.template={streamName}-{startTime}-{startTimeMillis}\nrecord_rotation=${ROTATE_S}\nstream_record_policy_template={streamName}-{startTimeMillis}\n`,
    }),
    startService({
      conf: [
        'record_h264_to_ts=true',
        `record_rotation=${ROTATE_S}`,
        'stream_record_policy_template={streamName}-{startTimeMillis}-{mediaSessionId}',
        'rtsp_reconnect_min_delay=0.5',
        `camera.sec.url=${authSrv.url('h264aac', { user: 'viewer', password: PASSWORD })}`,
        `camera.wrong.url=${authSrv.url('h264aac', { user: 'viewer', password: WRONG })}`,
        '',
      ].join('\n'),
    }),
  ]);
});

after(async () => {
  await Promise.all([svc?.stop(), tsSvc?.stop()]);
  await Promise.all([srv?.stop(), authSrv?.stop(), skewSrv?.stop()]);
});

/** The first finished fragment of a camera in record_dir. */
async function firstFile(s: Service, cam: string, ext: string): Promise<string> {
  const name = await waitFor(
    `the first ${ext} fragment of ${cam}`,
    () => readdirSync(s.recordDir).find((f) => f.startsWith(`${cam}-`) && f.endsWith(`_1.${ext}`)),
    45_000,
    200,
  );
  return join(s.recordDir, name);
}

type Stream = ProbeStream & { codec_tag_string?: string };

function summary(streams: Stream[]): string[] {
  return streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
}

test('every camera codec is recorded into MP4 with the right codecs and the rotation length', async () => {
  const want: Record<(typeof MOUNTS)[number], string[]> = {
    h264aac: ['audio:aac', 'video:h264'],
    h264: ['video:h264'],
    h265: ['video:hevc'],
    h264pcma: ['audio:aac', 'video:h264'],
    h264pcmu: ['audio:aac', 'video:h264'],
    mjpeg: ['video:h264'],
    aac: ['audio:aac'],
  };
  const files = await Promise.all(MOUNTS.map((m) => firstFile(svc, m, 'mp4')));
  // Every camera is checked and every difference listed in one message, so a failure on a slow machine shows
  // all cameras and what each file held, not only the first assertion that differed.
  const problems: string[] = [];
  for (const [i, m] of MOUNTS.entries()) {
    const file = files[i] ?? '';
    const r = await probe(file);
    const streams = r.streams as Stream[];
    const d = Number(r.format.duration);
    const got = summary(streams);
    console.log(`${m}: ${got.join(' ')} ${d} s (${file.split('/').pop()})`);
    if (got.join() !== want[m].join()) problems.push(`${m}: codecs ${got.join(' ')}, want ${want[m].join(' ')}`);
    if (!(Math.abs(d - ROTATE_S) <= 0.6)) problems.push(`${m}: first fragment ${d} s, rotation ${ROTATE_S} s`);
    if (m === 'h265' && streams[0]?.codec_tag_string !== 'hvc1')
      problems.push(`h265: stored as ${streams[0]?.codec_tag_string}, want hvc1 (plays in browsers and QuickTime)`);
    if (m.includes('pcm')) {
      const a = streams.find((s) => s.codec_type === 'audio');
      if (Number(a?.sample_rate) !== 44100) problems.push(`${m}: AAC at ${a?.sample_rate} Hz, want record_audio_codec_sample_rate 44100`);
    }
    if (['h264aac', 'h265', 'mjpeg', 'h264pcmu'].includes(m)) {
      const errors = await decodeErrors(file);
      if (errors) problems.push(`${m}: decode errors: ${errors.slice(0, 500)}`);
    }
  }
  // edgerec's own RTSP client pulled every camera it carries; MJPEG went to rtspsrc
  const all = (await svc.post('/rest-api/stream/find_all')).body as { name: string; client?: string }[];
  for (const m of MOUNTS) {
    const client = all.find((x) => x.name === m)?.client;
    const wantClient = m === 'mjpeg' ? 'gstreamer' : 'edgerec';
    if (client !== wantClient) problems.push(`${m}: pulled by ${client}, want ${wantClient}`);
  }
  assert.deepEqual(problems, [], problems.join('\n'));
  // every camera codec's fragments went through the built-in fMP4 → MP4 remux, none fell back to gst-launch
  const fellBack = svc.logs().filter((l) => String(l.msg).startsWith('remuxing with gst-launch'));
  assert.deepEqual(fellBack.map((l) => l.reason), [], 'the built-in remux took every fragment');
  // the index says what each file holds
  const rows = (await svc.json('/rest-api/recordings?stream=h264pcma')).body as { recordings: { audioCodec: string; videoCodec: string; published: string }[] };
  assert.ok(rows.recordings.length >= 1);
  assert.equal(rows.recordings[0]?.audioCodec, 'AAC', 'the index says what the file holds: G.711 transcoded to AAC');
  assert.equal(rows.recordings[0]?.published, 'rtsp');
});

test('a camera with record=false is pulled and watched without a file; startRecording records it from then on', async () => {
  type Cam = { name: string; status: string; client?: string; recording?: boolean; mediaSessionId: string };
  const mon = await waitFor('mon connected', async () => {
    const all = (await svc.post('/rest-api/stream/find_all')).body as Cam[];
    return all.find((x) => x.name === 'mon' && x.status === 'connected') ?? null;
  }, 20_000, 200);
  assert.equal(mon.client, 'edgerec');
  assert.equal(mon.recording, false);
  // already well into the stream (the other cameras' first fragments are done): still no row, no file
  await firstFile(svc, 'h264aac', 'mp4');
  const none = (await svc.json('/rest-api/recordings?stream=mon')).body as { recordings: unknown[] };
  assert.deepEqual(none.recordings, [], 'no row while record=false');
  assert.ok(!readdirSync(svc.recordDir).some((f) => f.startsWith('mon-')) && !readdirSync(svc.tmpDir).some((f) => f.includes('mon')), 'no file while record=false');
  const sr = await svc.post('/rest-api/stream/startRecording', { mediaSessionId: mon.mediaSessionId });
  assert.equal(sr.status, 200, JSON.stringify(sr.body));
  const file = await firstFile(svc, 'mon', 'mp4');
  const r = await probe(file);
  assert.deepEqual(summary(r.streams as Stream[]), ['audio:aac', 'video:h264']);
  assert.ok(Math.abs(Number(r.format.duration) - ROTATE_S) <= 0.6, `first fragment ${r.format.duration} s, rotation ${ROTATE_S} s`);
});

test('a camera pulled over UDP goes to rtspsrc and records H.264 + AAC', async () => {
  const file = await firstFile(svc, 'udp', 'mp4');
  const r = await probe(file);
  assert.deepEqual(summary(r.streams as Stream[]), ['audio:aac', 'video:h264']);
  assert.ok(Math.abs(Number(r.format.duration) - ROTATE_S) <= 0.6, `first fragment ${r.format.duration} s, rotation ${ROTATE_S} s`);
  const all = (await svc.post('/rest-api/stream/find_all')).body as { name: string; client?: string; transport?: string }[];
  const udp = all.find((x) => x.name === 'udp');
  assert.equal(udp?.transport, 'udp');
  assert.equal(udp?.client, 'gstreamer', "edgerec's client pulls over TCP only");
});

test('{startTime} of an RTSP camera is its clock from RTCP sender reports; {startTimeMillis} is ours', async () => {
  const names = await Promise.all(['h264aac', 'skew'].map(async (cam) => {
    const file = await firstFile(svc, cam, 'mp4');
    const m = new RegExp(`^${cam}-(\\d+)-(\\d+)_1\\.mp4$`).exec(file.split('/').pop() ?? '');
    assert.ok(m, `name ${file} follows {streamName}-{startTime}-{startTimeMillis}`);
    return { startTime: Number(m[1]), startMillis: Number(m[2]) };
  }));
  const [same, skew] = names;
  assert.ok(same && skew);
  console.log(`camera clock - ours: ${same.startTime - same.startMillis} ms (same clock), ${skew.startTime - skew.startMillis} ms (an hour ahead)`);
  for (const n of names) assert.ok(n.startMillis >= t0 && n.startMillis <= Date.now(), `start ${n.startMillis} within the test run`);
  assert.ok(Math.abs(same.startTime - same.startMillis) <= 1000, 'a camera on our clock: {startTime} within 1 s of {startTimeMillis}');
  assert.ok(Math.abs(skew.startTime - skew.startMillis - 3_600_000) <= 2000, 'a camera an hour ahead: {startTime} an hour after {startTimeMillis}');
  const all = (await svc.post('/rest-api/stream/find_all')).body as { name: string; clockOffsetMs: number | null }[];
  const off = all.find((x) => x.name === 'skew')?.clockOffsetMs ?? 0;
  assert.ok(Math.abs(off - 3_600_000) <= 2000, `find_all shows the camera's clock offset: ${off} ms`);
});

// Regression: with h264timestamper before mpegtsmux, splitmuxsink saw running times 1000 h ahead (names 1000 h
// ahead, the position query failed, the stall watchdog cut the file every 5 s).
test('record_h264_to_ts=true writes MPEG-TS (H.264 + ADTS AAC) from a camera behind Basic auth', async () => {
  const file = await firstFile(tsSvc, 'sec', 'ts');
  const startMs = Number(/^sec-(\d+)-/.exec(file.split('/').pop() ?? '')?.[1]);
  assert.ok(startMs >= t0 && startMs <= Date.now(), `start ${startMs} in the name is the wall clock of the run`);
  const r = await probe(file);
  assert.equal(r.format.format_name, 'mpegts');
  assert.deepEqual(summary(r.streams), ['audio:aac', 'video:h264']);
  const d = Number(r.format.duration);
  assert.ok(Math.abs(d - ROTATE_S) <= 0.8, `TS fragment ${d} s, rotation ${ROTATE_S} s`);
});

test('a camera with a wrong password keeps retrying and says why', async () => {
  const cam = await waitFor(
    'the wrong-password camera to report an error',
    async () => {
      const all = (await tsSvc.post('/rest-api/stream/find_all')).body as Record<string, unknown>[];
      const c = all.find((x) => x.name === 'wrong');
      return c && Number(c.reconnectAttempts) >= 2 && c.lastError ? c : null;
    },
    20_000,
    200,
  );
  assert.equal(cam.status, 'reconnecting');
  assert.match(String(cam.lastError), /401|auth|credential|unauthori/i);
});

test('credentials in camera URLs appear in no log line, API answer or file name', async () => {
  // let a few fragments and retries happen first (their errors and file names are what could leak)
  await firstFile(tsSvc, 'sec', 'ts');
  const answers = await Promise.all([
    tsSvc.post('/rest-api/stream/find_all'),
    tsSvc.json('/rest-api/health'),
    tsSvc.post('/rest-api/recorder/find_all'),
    tsSvc.json('/rest-api/recordings'),
    tsSvc.post('/rest-api/stream/find', { name: 'sec' }),
    tsSvc.json('/metrics'),
  ]);
  const text = [tsSvc.proc.output(), ...answers.map((a) => JSON.stringify(a.body)), ...readdirSync(tsSvc.recordDir), ...readdirSync(tsSvc.tmpDir)].join('\n');
  assert.ok(text.includes('sec'), 'the evidence is not empty');
  for (const secret of [PASSWORD, WRONG, encodeURIComponent(PASSWORD)]) {
    assert.ok(!text.includes(secret), `the password ${secret} leaked: ${text.slice(Math.max(0, text.indexOf(secret) - 200), text.indexOf(secret) + 50)}`);
  }
  const health = answers[1]?.body as { cameras?: Record<string, { url: string }> };
  assert.match(String(health.cameras?.sec?.url), /^rtsp:\/\/(\*+|viewer:\*+)@127\.0\.0\.1:\d+\/h264aac$|^rtsp:\/\/127\.0\.0\.1:\d+\/h264aac$/, 'health shows the redacted URL');
});

test('health lists the hardware H.264 encoders found in the GStreamer registry and the one used for MJPEG', async () => {
  const present: string[] = [];
  for (const e of HW) {
    const ok = await run('gst-inspect-1.0', ['--exists', e]).then(
      () => true,
      () => false,
    );
    if (ok) present.push(e);
  }
  const h = (await svc.json('/rest-api/health')).body as { h264Encoders?: { hardware: string[]; mjpegEncoder: string } };
  assert.deepEqual(h.h264Encoders?.hardware, present);
  assert.equal(h.h264Encoders?.mjpegEncoder, present[0] ?? 'x264enc');
});
