import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertPlaybackRun, frameSums, runAt, splitRuns } from '../helpers/frames';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { type Proc, start, waitFor } from '../helpers/proc';
import type { RecordingRow as Row } from '../helpers/recorded-file';
import { baseConf, rtmpPort, type Service, startService } from '../helpers/service';

// Issue 17: GET /rest-api/playback across fragments and sessions, fed by a real RTMP publisher (ffmpeg).

const EXTRA = ['record_rotation=5', 'stream_record_policy_template={streamName}-{startTimeMillis}', 'playback_max_duration=600', ''].join('\n');
const FPS = 25;
/** keyframe interval of the clips: 1 s */
const GOP_S = 1;

let s: Service;
let port = 0;
let clip = '';
const procs: Proc[] = [];
const work = mkdtempSync(join(tmpdir(), 'edgerec-playback-'));

function publish(name: string, file: string, loop = false): Proc {
  const p = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...(loop ? ['-stream_loop', '-1'] : []), '-i', file, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/${name}`]);
  procs.push(p);
  return p;
}

async function rows(stream: string): Promise<Row[]> {
  const r = await s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings;
}

function settled(stream: string, n: number, timeoutMs = 60_000): Promise<Row[]> {
  return waitFor(
    `${n} finished files of ${stream}`,
    async () => {
      const all = await rows(stream);
      return all.length >= n && all.every((r) => r.state === 'complete') ? all : null;
    },
    timeoutMs,
    200,
  );
}

/** GET a playback answer into a file; returns the file, its headers and ms to the first body byte. */
async function fetchPlayback(query: string, name: string): Promise<{ path: string; headers: Headers; firstByteMs: number; bytes: number }> {
  const t0 = performance.now();
  const r = await fetch(`${s.base}/rest-api/playback?${query}`);
  if (r.status !== 200) assert.fail(`playback ${query} → ${r.status}: ${await r.text()}`);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Buffer[] = [];
  let firstByteMs = -1;
  for (let i = 0; i < 1_000_000; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    if (firstByteMs < 0) firstByteMs = performance.now() - t0;
    chunks.push(Buffer.from(value));
  }
  const path = join(work, name);
  const body = Buffer.concat(chunks);
  writeFileSync(path, body);
  return { path, headers: r.headers, firstByteMs, bytes: body.length };
}

let srcSums: string[] = [];

function firstOf(r: Row[]): Row {
  assert.ok(r[0], 'no files');
  return r[0];
}
function lastOf(r: Row[]): Row {
  const x = r[r.length - 1];
  assert.ok(x, 'no files');
  return x;
}

before(async () => {
  // testsrc2 draws a frame counter: every decoded frame of the clip is different
  clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 25, size: '320x180', fps: FPS, gop: FPS * GOP_S });
  srcSums = await frameSums(clip);
  assert.equal(new Set(srcSums).size, srcSums.length, 'the source clip has distinct frames');
  s = await startService({ conf: EXTRA });
  port = await rtmpPort(s);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await s?.stop();
  if (s) rmSync(s.dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('25 s of RTMP in 5 s files: a playback from 3 s into the first to 3 s before the end of the last has the asked duration, decodes, and no frame is lost or repeated at the joins', async () => {
  const pub = publish('cam', clip);
  await pub.exited;
  const files = await settled('cam', 4);
  assert.ok(files.length >= 4, `rotation made ${files.length} files`);
  const from = firstOf(files).start + 3000;
  const to = (lastOf(files).end as number) - 3000;
  const boundaries = files.slice(1).map((f) => f.start).filter((b) => b > from && b < to);
  assert.ok(boundaries.length >= 2, 'the range crosses fragment boundaries');
  for (const format of ['mp4', 'fmp4'] as const) {
    const got = await fetchPlayback(`stream=cam&from=${from}&to=${to}&format=${format}`, `cam.${format}.mp4`);
    const r = await assertPlaybackRun(got.path, got.headers, { format, from, to, gopS: GOP_S, fps: FPS, source: srcSums, joins: boundaries.length });
    console.log(`${format}: ${files.length} files, ${boundaries.length} joins crossed, ${r.frames} frames = source frames ${r.at}..${r.at + r.frames - 1}, ${r.durationS.toFixed(3)} s for ${(to - from) / 1000} s asked, first byte ${got.firstByteMs.toFixed(1)} ms, ${got.bytes} bytes`);
  }
});

test('the mp4 form has a Content-Length, moov before mdat, and byte ranges that match the whole answer', async () => {
  const files = await settled('cam', 4);
  const q = `stream=cam&from=${firstOf(files).start}&to=${lastOf(files).end as number}`;
  const whole = await fetch(`${s.base}/rest-api/playback?${q}`);
  assert.equal(whole.status, 200);
  const body = Buffer.from(await whole.arrayBuffer());
  assert.equal(Number(whole.headers.get('content-length')), body.length);
  assert.equal(whole.headers.get('accept-ranges'), 'bytes');
  assert.equal(body.toString('latin1', 4, 8), 'ftyp');
  const moovAt = body.indexOf('moov');
  const mdatAt = body.indexOf('mdat');
  assert.ok(moovAt > 0 && moovAt < mdatAt, 'moov before mdat');
  const etag = whole.headers.get('etag') ?? '';
  for (const [a, b] of [[0, 99], [moovAt, moovAt + 5000], [mdatAt + 1000, mdatAt + 250_000], [body.length - 777, body.length - 1]] as const) {
    const r = await fetch(`${s.base}/rest-api/playback?${q}`, { headers: { range: `bytes=${a}-${b}`, 'if-range': etag } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${body.length}`);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(body.subarray(a, b + 1)), `bytes ${a}-${b}`);
  }
  const bad = await fetch(`${s.base}/rest-api/playback?${q}`, { headers: { range: `bytes=${body.length + 10}-` } });
  assert.equal(bad.status, 416);
  await bad.text();
});

test('a publisher reconnecting makes two media sessions: the playback spans both, holds the gap, and reports it', async () => {
  const first = publish('recon', clip);
  await waitFor('7 s recorded', async () => (await rows('recon')).length >= 2, 30_000, 200);
  await new Promise((r) => setTimeout(r, 2500));
  await first.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 2500));
  const second = publish('recon', clip);
  await waitFor('the second session', async () => new Set((await rows('recon')).map((r) => r.mediaSessionId)).size >= 2, 30_000, 200);
  await new Promise((r) => setTimeout(r, 7000));
  await second.stop('SIGKILL');
  const files = await settled('recon', 3);
  const sessions = [...new Set(files.map((f) => f.mediaSessionId))];
  assert.equal(sessions.length, 2, 'two media sessions');
  const firstOfB = files.find((f) => f.mediaSessionId === sessions[1]) as Row;
  const lastOfA = files.filter((f) => f.mediaSessionId === sessions[0]).pop() as Row;
  const gapMs = firstOfB.start - (lastOfA.end as number);
  assert.ok(gapMs > 1000, `a gap between the sessions (${gapMs} ms)`);
  const from = firstOf(files).start + 1000;
  const to = (lastOf(files).end as number) - 500;

  const seg = await s.json(`/rest-api/playback/segments?stream=recon&from=${from}&to=${to}`);
  assert.equal(seg.status, 200, JSON.stringify(seg.body));
  const body = seg.body as { spans: { start: number; end: number; mediaSessionIds: string[] }[]; gaps: { start: number; end: number }[] };
  assert.equal(body.spans.length, 2, JSON.stringify(body));
  assert.equal(body.gaps.length, 1, JSON.stringify(body));
  assert.equal(body.gaps[0]?.start, lastOfA.end);
  assert.equal(body.gaps[0]?.end, firstOfB.start);

  for (const format of ['mp4', 'fmp4'] as const) {
    const got = await fetchPlayback(`stream=recon&from=${from}&to=${to}&format=${format}`, `recon.${format}.mp4`);
    assert.equal(got.headers.get('x-playback-gaps'), `${lastOfA.end as number}-${firstOfB.start}`, `${format}: the gap is reported`);
    assert.equal(await decodeErrors(got.path), '', `${format} decodes cleanly`);
    const p = await probe(got.path);
    const dur = Number(p.format.duration);
    const start = Number(got.headers.get('x-playback-start'));
    // wall time is kept: the answer lasts from its keyframe to `to`, the gap included
    assert.ok(Math.abs(dur - (to - start) / 1000) <= 0.3, `${format}: ${dur} s from ${start} to ${to} (gap ${gapMs} ms held)`);
    const sums = await frameSums(got.path);
    // two runs of the source: the tail of session A, then session B from its start
    const split = splitRuns(srcSums, srcSums, sums);
    assert.ok(split > 0, `${format}: the frames are two contiguous runs of the source`);
    console.log(`${format}: reconnect ${gapMs} ms; ${sums.length} frames = ${split} of session A + ${sums.length - split} of session B; ${dur.toFixed(3)} s`);
  }
});

/** The file of `stream` being recorded, once it has been recording for `ageMs` (and, with `second`, is not the first). */
function recordingFor(stream: string, ageMs: number, second: boolean): Promise<Row> {
  return waitFor(
    `a file of ${stream} recording for ${ageMs} ms`,
    async () => {
      const all = await rows(stream);
      const open = all.find((r) => r.state === 'recording');
      return (!second || all.length >= 2) && open && Date.now() - open.start > ageMs ? open : null;
    },
    40_000,
    100,
  );
}

// A file being recorded is readable one fragment (1 s) behind what the muxer holds: splitmuxsink holds a GOP (1 s
// here) until the next keyframe, mp4mux closes a fragment on the first sample past it, and the file sink writes each
// buffer at once (its default 64 KiB buffer delayed the last fragment until the next: at 100 KB/s up to a second
// more, an audio-only stream 4 s). So video is readable ~2.2 s behind live, audio only ~1.1 s.
test('a range that includes the file being recorded plays up to its last flushed fragment', async () => {
  publish('live', clip, true);
  // 4 s into a 5 s file: the fragment [1 s, 2 s) is out (about 3.2 s in); a rotation meanwhile only moves it on
  const running = await recordingFor('live', 4000, true);
  const all = await rows('live');
  const from = firstOf(all).start + 1000;
  const to = Date.now() + 60_000;
  for (const format of ['fmp4', 'mp4'] as const) {
    const asked = Date.now();
    const got = await fetchPlayback(`stream=live&from=${from}&to=${to}&format=${format}`, `live.${format}.mp4`);
    const end = Number(got.headers.get('x-playback-end'));
    assert.ok(end > running.start + 1500, `${format}: the answer reaches into the running file (ends ${end - running.start} ms after it started)`);
    assert.ok(end <= asked + 500, `${format}: not past what was recorded`);
    assert.ok(end >= asked - 3500, `${format}: the answer ends ${asked - end} ms before the request (a fragment and a GOP are ~2.2 s)`);
    assert.equal(await decodeErrors(got.path), '', `${format} decodes cleanly`);
    const dur = Number((await probe(got.path)).format.duration);
    const start = Number(got.headers.get('x-playback-start'));
    assert.ok(Math.abs(dur - (end - start) / 1000) < 0.3, `${format}: duration ${dur} s matches ${start}..${end}`);
    console.log(`${format}: running file included, answer ends ${((asked - end) / 1000).toFixed(2)} s before the request`);
  }
});

test('audio only (~16 KB/s): the file being recorded is readable about a second behind live, not a file-sink buffer behind', async () => {
  const aclip = await makeClip({ video: null, audio: 'aac', seconds: 25 });
  publish('quiet', aclip, true);
  const running = await recordingFor('quiet', 3000, false);
  const asked = Date.now();
  const got = await fetchPlayback(`stream=quiet&from=${running.start}&to=${asked + 60_000}&format=fmp4`, 'quiet.mp4');
  const end = Number(got.headers.get('x-playback-end'));
  // with the file sink's 64 KiB buffer nothing of this file was readable until ~4 s in
  assert.ok(end >= asked - 2500, `the answer ends ${asked - end} ms before the request (${end - running.start} ms into the running file)`);
  assert.ok(end <= asked + 500, 'not past what was recorded');
  const p = await probe(got.path);
  assert.deepEqual(p.streams.map((x) => x.codec_name), ['aac']);
  assert.ok(Math.abs(Number(p.format.duration) - (end - Number(got.headers.get('x-playback-start'))) / 1000) < 0.3, `duration ${p.format.duration} s matches the headers`);
  console.log(`audio only: answer ends ${((asked - end) / 1000).toFixed(2)} s before the request, ${((end - running.start) / 1000).toFixed(2)} s into the running file`);
});

test('B-frames (composition offsets): across a join the frames still match the source, in both formats', async () => {
  const bclip = await makeClip({ video: 'h264', audio: 'aac', seconds: 12, size: '320x180', fps: FPS, gop: FPS * GOP_S, bframes: true });
  const bsums = await frameSums(bclip);
  await publish('bcam', bclip).exited;
  const files = await settled('bcam', 2);
  const from = firstOf(files).start + 2500;
  const to = (lastOf(files).end as number) - 1500;
  for (const format of ['mp4', 'fmp4'] as const) {
    const got = await fetchPlayback(`stream=bcam&from=${from}&to=${to}&format=${format}`, `bcam.${format}.mp4`);
    assert.equal(await decodeErrors(got.path), '', `${format} decodes cleanly`);
    const sums = await frameSums(got.path);
    const at = runAt(bsums, sums);
    assert.ok(at >= 0 && sums.length >= ((to - from) / 1000) * FPS - 2, `${format}: ${sums.length} frames, one contiguous run of the source (at ${at})`);
    const p = await probe(got.path);
    const v = p.streams.find((x) => x.codec_type === 'video');
    // the presentation starts at the keyframe: no negative or shifted start from the composition offset
    assert.ok(Math.abs(Number(v?.start_time ?? 0)) < 0.05, `${format}: video starts at ${v?.start_time}`);
  }
});

test('bad input: missing or garbage parameters, from ≥ to, too long, unknown stream, nothing recorded, TS recordings', async () => {
  const files = await settled('cam', 4);
  const t = firstOf(files).start;
  const cases: Array<[string, number, RegExp]> = [
    ['from=1&to=2', 400, /stream: required/],
    [`stream=cam&to=${t}`, 400, /from: required/],
    [`stream=cam&from=yesterday&to=${t}`, 400, /from: "yesterday" is not a time.*RFC 3339/],
    [`stream=cam&from=${t}&to=2026-02-30T10:00:00Z`, 400, /to: .* is not a time/],
    [`stream=cam&from=${t}&to=${t}`, 400, /must be after from/],
    [`stream=cam&from=${t}&to=${t + 601_000}`, 400, /at most 600 s .*playback_max_duration/],
    [`stream=cam&from=${t}&to=${t + 1000}&format=avi`, 400, /format: one of mp4, fmp4/],
    [`stream=nosuch&from=${t}&to=${t + 1000}`, 404, /stream "nosuch" has no recordings/],
    [`stream=cam&from=${t - 200_000}&to=${t - 100_000}`, 404, /nothing of stream "cam" was recorded.*nearest after starts at/],
  ];
  for (const [q, status, msg] of cases) {
    const r = await s.json(`/rest-api/playback?${q}`);
    assert.equal(r.status, status, `${q}: ${JSON.stringify(r.body)}`);
    assert.match(String((r.body as { error: string }).error), msg, q);
    assert.doesNotMatch(JSON.stringify(r.body), /\/tmp\//, 'no absolute path in the answer');
  }
  const none = await s.json(`/rest-api/playback?stream=cam&from=${t - 200_000}&to=${t - 100_000}`);
  assert.equal((none.body as { nearest: { after: { start: number } } }).nearest.after.start, t);
  const rfc = await fetch(`${s.base}/rest-api/playback?stream=cam&from=${new Date(t + 2000).toISOString()}&to=${new Date(t + 4000).toISOString()}`);
  assert.equal(rfc.status, 200, 'RFC 3339 times');
  await rfc.arrayBuffer();

  // a TS recording: a clear 415 naming what is supported
  const before = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(baseConf(s.dir) + EXTRA + 'record_h264_to_ts=true\n');
  await waitFor('the config to be applied', () => s.logs().filter((l) => l.msg === 'config applied').length > before, 10_000, 50);
  const short = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  await publish('tscam', short).exited;
  const ts = await waitFor('a finished TS file', async () => (await rows('tscam')).find((r) => r.state === 'complete' && r.container === 'ts'), 30_000, 200);
  const r = await s.json(`/rest-api/playback?stream=tscam&from=${ts.start}&to=${ts.end as number}`);
  assert.equal(r.status, 415, JSON.stringify(r.body));
  assert.match(String((r.body as { error: string }).error), /ts file\(s\).*MP4 recordings only/);
});
