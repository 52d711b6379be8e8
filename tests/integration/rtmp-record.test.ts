import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { start, type Proc, waitFor } from '../helpers/proc';
import { baseConf, rtmpPort, type Service, startService } from '../helpers/service';
import type { RecordingRow as Row } from '../helpers/recorded-file';
import { assertNoLeak, collectGarbage, gcEnv, showUsage, treeUsage } from '../helpers/usage';

// Issue 5: RTMP recording through the real service, fed by real publishers (ffmpeg, GStreamer).

type Json = Record<string, unknown>;

let s: Service;
let port = 0;
const procs: Proc[] = [];
const work = mkdtempSync(join(tmpdir(), 'edgerec-rtmp-rec-'));
const hookLog = join(work, 'hook.log');
const hookScript = join(work, 'hook.sh');
const BASE_EXTRA = ['stream_record_policy_template={streamName}', `on_record_hook_script=${hookScript}`, 'on_record_hook_timeout=5', ''].join('\n');

const url = (name: string, query = '') => `rtmp://127.0.0.1:${port}/live/${name}${query}`;

function spawnTracked(cmd: string, args: string[]): Proc {
  const p = start(cmd, args);
  procs.push(p);
  return p;
}

/** ffmpeg publishing `clip` in real time without re-encoding. */
function publish(name: string, clip: string, query = '', loop = false): Proc {
  return spawnTracked('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...(loop ? ['-stream_loop', '-1'] : []), '-i', clip, '-c', 'copy', '-f', 'flv', url(name, query)]);
}

/** Write the whole config (base + extra lines) and wait until the service applied it. */
async function applyConf(extra: string): Promise<void> {
  const text = baseConf(s.dir) + BASE_EXTRA + extra;
  if (readFileSync(s.confPath, 'utf8') === text) return; // already in use: no change to wait for
  const before = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(text);
  await waitFor('the config to be applied', () => s.logs().filter((l) => l.msg === 'config applied').length > before, 10_000, 50);
}

async function rows(stream: string): Promise<Row[]> {
  const r = await s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings;
}

/** The rows of `stream` once there are at least `n` and all are complete. */
function completeRows(stream: string, n: number, timeoutMs = 30_000): Promise<Row[]> {
  return waitFor(
    `${n} complete rows of ${stream}`,
    async () => {
      const all = await rows(stream);
      return all.length >= n && all.every((r) => r.state === 'complete') ? all : null;
    },
    timeoutMs,
    100,
  );
}

/** Finished files in record_dir (no hidden partials). */
function recordFiles(): string[] {
  return existsSync(s.recordDir) ? readdirSync(s.recordDir).filter((f) => !f.startsWith('.') && f !== 'edgerec.db') : [];
}

/** A stream as /stream/find answers it, once it is live (or null). */
async function findStream(name: string): Promise<Json | null> {
  const r = await s.post('/rest-api/stream/find', { name });
  if (r.status !== 200) return null;
  return (r.body as Json[]).find((x) => x.status === 'publishing') ?? null;
}

async function assertPlayable(file: string, want: { video: boolean; audio: boolean }): Promise<number> {
  const p = await probe(file);
  const types = p.streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort();
  const expected = [...(want.audio ? ['audio:aac'] : []), ...(want.video ? ['video:h264'] : [])];
  assert.deepEqual(types, expected, `codecs of ${file}`);
  assert.equal(await decodeErrors(file), '', `${file} decodes cleanly`);
  return Number(p.format.duration);
}

function hookLines(): string[] {
  return existsSync(hookLog) ? readFileSync(hookLog, 'utf8').split('\n').filter(Boolean) : [];
}

/** Children of a process (from /proc/<pid>/task/<tid>/children). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const t = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (t) out.push(...t.split(/\s+/).map(Number));
  }
  return out;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

let clip6 = '';
let clip6Duration = 0;

before(async () => {
  writeFileSync(hookScript, `#!/bin/sh\nprintf '%s|%s\\n' "$1" "$2" >> '${hookLog}'\n`);
  chmodSync(hookScript, 0o755);
  [clip6] = await Promise.all([
    makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '320x180', gop: 25 }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '320x180', gop: 25 }),
    makeClip({ video: null, audio: 'aac', seconds: 4 }),
    makeClip({ video: 'h264', audio: null, seconds: 4, size: '320x180', gop: 25 }),
  ]);
  clip6Duration = Number((await probe(clip6)).format.duration);
  s = await startService({ conf: BASE_EXTRA, env: gcEnv(work) });
  port = await rtmpPort(s);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await s?.stop();
  if (s) rmSync(s.dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('the manual example, audio-only, video-only, GStreamer, record=false + startRecording, SIGKILL: all record', async () => {
  const clip8 = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '320x180', gop: 25 });
  const audioClip = await makeClip({ video: null, audio: 'aac', seconds: 4 });
  const videoClip = await makeClip({ video: 'h264', audio: null, seconds: 4, size: '320x180', gop: 25 });

  // The reference manual's command, re-encoding as written.
  const manual = spawnTracked('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', clip6, '-preset', 'ultrafast', '-acodec', 'aac', '-vcodec', 'h264', '-f', 'flv', url('stream_ffmpeg')]);
  const audioOnly = publish('audio_only', audioClip);
  const videoOnly = publish('video_only', videoClip);
  const gst = spawnTracked('gst-launch-1.0', [
    '-q', 'filesrc', `location=${videoClip}`, '!', 'qtdemux', '!', 'h264parse', '!', 'flvmux', 'streamable=true', '!',
    'rtmpsink', `location=${url('gst_pub')} live=1`,
  ]);
  const off = publish('rec_off', clip8, '?record=false');
  const killed = publish('killed', clip8, '', true);

  // record=false: listed while publishing, no file; startRecording mid-stream starts one.
  const offStream = await waitFor('rec_off publishing', () => findStream('rec_off'), 15_000, 100);
  const all = (await s.post('/rest-api/stream/find_all')).body as Json[];
  assert.ok(all.some((x) => x.name === 'rec_off' && x.recording === false), `rec_off listed, not recording: ${JSON.stringify(all)}`);
  await new Promise((r) => setTimeout(r, 2000)); // well into the stream: the recording starts mid-GOP
  assert.deepEqual(await rows('rec_off'), [], 'no row while record=false');
  assert.ok(!recordFiles().some((f) => f.startsWith('rec_off')), 'no file while record=false');
  const sr = await s.post('/rest-api/stream/startRecording', { mediaSessionId: offStream.mediaSessionId });
  assert.equal(sr.status, 200, JSON.stringify(sr.body));
  assert.equal((sr.body as Json).fileName, 'rec_off.mp4');

  // SIGKILL mid-publish: a playable file within 2 s.
  await waitFor('killed recording', async () => (await rows('killed')).some((r) => r.state === 'recording'), 15_000, 100);
  await new Promise((r) => setTimeout(r, 2500));
  killed.child.kill('SIGKILL');
  const killedAt = Date.now();
  const killedFile = join(s.recordDir, 'killed.mp4');
  await waitFor('killed.mp4 in record_dir', () => existsSync(killedFile), 10_000, 50);
  const killMs = Date.now() - killedAt;
  console.log(`SIGKILLed publisher: file in record_dir ${killMs} ms after the kill`);
  const timeline = () =>
    s
      .logs()
      .filter((l) => JSON.stringify(l).includes('killed') && Date.parse(String(l.time)) >= killedAt - 100)
      .map((l) => `${Date.parse(String(l.time)) - killedAt} ms ${String(l.component)}: ${String(l.msg)}`)
      .join('\n');
  assert.ok(killMs <= 2000, `file placed ${killMs} ms after the kill (≤ 2000 expected); log:\n${timeline()}`);
  const kd = await assertPlayable(killedFile, { video: true, audio: true });
  assert.ok(kd > 1.5, `killed file holds the media before the kill (${kd} s)`);
  const [kr] = await completeRows('killed', 1);
  assert.equal(kr?.fileName, 'killed.mp4');

  await Promise.all([manual, audioOnly, videoOnly, gst, off].map((p) => waitFor('publisher to end', async () => (await Promise.race([p.exited, null])) !== null, 30_000, 200)));

  // the manual example: stream_ffmpeg.mp4, its duration, its row, the hook
  const file = join(s.recordDir, 'stream_ffmpeg.mp4');
  const [row] = await completeRows('stream_ffmpeg', 1);
  assert.ok(row);
  assert.equal(row.fileName, 'stream_ffmpeg.mp4');
  const d = await assertPlayable(file, { video: true, audio: true });
  assert.ok(Math.abs(d - clip6Duration) <= 0.5, `duration ${d} s vs clip ${clip6Duration} s`);
  assert.equal(row.videoCodec, 'H264');
  assert.equal(row.audioCodec, 'AAC');
  assert.equal(row.container, 'mp4');
  assert.ok(row.end !== null && row.start > 0 && row.end > row.start, `start/end: ${JSON.stringify(row)}`);
  assert.ok(row.durationMs !== null && Math.abs(row.durationMs / 1000 - clip6Duration) <= 1.5, `row duration ${row.durationMs}`);
  assert.equal(row.bytes, statSync(file).size, 'row bytes = file size');
  assert.equal(row.url, '/client/records/stream_ffmpeg.mp4');
  await waitFor('the hook ran for stream_ffmpeg', () => hookLines().includes(`stream_ffmpeg|${file}`), 10_000, 100);

  // audio-only, video-only, GStreamer
  await completeRows('audio_only', 1);
  const ad = await assertPlayable(join(s.recordDir, 'audio_only.mp4'), { video: false, audio: true });
  assert.ok(Math.abs(ad - 4) <= 0.6, `audio-only duration ${ad}`);
  await completeRows('video_only', 1);
  const vd = await assertPlayable(join(s.recordDir, 'video_only.mp4'), { video: true, audio: false });
  assert.ok(Math.abs(vd - 4) <= 0.6, `video-only duration ${vd}`);
  await completeRows('gst_pub', 1);
  const gd = await assertPlayable(join(s.recordDir, 'gst_pub.mp4'), { video: true, audio: false });
  assert.ok(gd > 3, `GStreamer publish duration ${gd}`);

  // the mid-stream recording: starts at a keyframe, plays, shorter than the clip
  const [offRow] = await completeRows('rec_off', 1);
  assert.equal(offRow?.fileName, 'rec_off.mp4');
  const od = await assertPlayable(join(s.recordDir, 'rec_off.mp4'), { video: true, audio: true });
  assert.ok(od > 3 && od < 7.5, `mid-stream recording duration ${od} (clip 8 s, started after ~2 s)`);
});

test('a second publish of the same name is a new media session and does not overwrite; find answers after the end', async () => {
  const first = await rows('stream_ffmpeg');
  assert.equal(first.length, 1);
  const p = publish('stream_ffmpeg', clip6);
  const live = await waitFor('second stream_ffmpeg publishing', () => findStream('stream_ffmpeg'), 15_000, 100);
  assert.notEqual(live.mediaSessionId, first[0]?.mediaSessionId, 'a new media session');
  await p.exited;
  const both = await completeRows('stream_ffmpeg', 2);
  const second = both.find((r) => r.mediaSessionId === live.mediaSessionId);
  assert.equal(second?.fileName, 'stream_ffmpeg(1).mp4');
  await assertPlayable(join(s.recordDir, 'stream_ffmpeg(1).mp4'), { video: true, audio: true });
  assert.ok(existsSync(join(s.recordDir, 'stream_ffmpeg.mp4')), 'the first file is still there');

  const f = await s.post('/rest-api/stream/find', { name: 'stream_ffmpeg' });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  const ended = (f.body as Json[]).find((x) => x.mediaSessionId === live.mediaSessionId);
  assert.equal(ended?.status, 'stopped');
  assert.equal(ended?.fileName, 'stream_ffmpeg(1).mp4', `find after the end gives the last file name: ${JSON.stringify(f.body)}`);
});

test('record_h264_to_ts=true with record_rotation=2: .ts fragments _1, _2, ...', async (t) => {
  await applyConf('record_h264_to_ts=true\nrecord_rotation=2\n');
  t.after(() => applyConf('')); // even when the test fails: the next tests record with the defaults
  const p = publish('ts_rot', clip6);
  await p.exited;
  const done = await waitFor(
    'ts fragments finalized',
    async () => {
      const r = await rows('ts_rot');
      return r.length >= 2 && r.every((x) => x.state === 'complete') && !(await findStream('ts_rot')) ? r : null;
    },
    30_000,
    200,
  );
  const names = done.map((r) => r.fileName).sort((a, b) => Number(/_(\d+)\.ts$/.exec(a)?.[1]) - Number(/_(\d+)\.ts$/.exec(b)?.[1]));
  assert.ok(names.length >= 2, `several fragments: ${names.join(', ')}`);
  names.forEach((n, i) => assert.equal(n, `ts_rot_${i + 1}.ts`));
  let total = 0;
  for (const n of names) {
    const file = join(s.recordDir, n);
    const pr = await probe(file);
    assert.match(pr.format.format_name, /mpegts/);
    assert.deepEqual(pr.streams.map((x) => x.codec_name).sort(), ['aac', 'h264'], `${n} codecs`);
    assert.equal(await decodeErrors(file), '', `${n} decodes cleanly`);
    total += Number(pr.format.duration);
  }
  assert.ok(Math.abs(total - clip6Duration) <= 1, `fragments total ${total} s vs clip ${clip6Duration} s`);
});

test('publish_auth_token: no or wrong token refused (no stream, no file), the right token records', async (t) => {
  await applyConf('publish_auth_token=s3cret-tok\n');
  t.after(() => applyConf('')); // even when the test fails: no token left set for the next tests
  const clip4 = await makeClip({ video: 'h264', audio: null, seconds: 4, size: '320x180', gop: 25 });
  const none = publish('tok_none', clip4);
  const wrong = publish('tok_wrong', clip4, '?token=nope');
  const right = publish('tok_right', clip4, '?token=s3cret-tok');
  const [rn, rw] = await Promise.all([none.exited, wrong.exited]);
  assert.notEqual(rn.code, 0, 'ffmpeg without a token fails');
  assert.notEqual(rw.code, 0, 'ffmpeg with a wrong token fails');
  await waitFor('the right-token stream', () => findStream('tok_right'), 10_000, 100);
  for (const n of ['tok_none', 'tok_wrong']) assert.equal((await s.post('/rest-api/stream/find', { name: n })).status, 404, `${n}: no stream`);
  await right.exited;
  await completeRows('tok_right', 1);
  assert.ok(existsSync(join(s.recordDir, 'tok_right.mp4')));
  for (const n of ['tok_none', 'tok_wrong']) {
    assert.deepEqual(await rows(n), [], `${n}: no row`);
    assert.ok(!recordFiles().some((f) => f.startsWith(n)), `${n}: no file`);
  }
  const refused = s.logs().filter((l) => l.msg === 'RTMP publisher refused');
  assert.ok(refused.length >= 2, 'both refusals logged');
  assert.ok(!s.proc.output().includes('s3cret-tok'), 'the token never reaches the log');
});

test('20 publish/kill cycles leave open fds, RSS and media hosts flat', async () => {
  await applyConf(''); // the defaults, whatever the tests before left
  const pid = s.proc.pid;
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const cycle = async (lane: number, i: number) => {
    const name = `cyc${lane}_${i}`;
    const p = publish(name, clip, '', true);
    await waitFor(`${name} recording`, async () => (await rows(name)).some((r) => r.state === 'recording'), 15_000, 50);
    await new Promise((r) => setTimeout(r, 700));
    p.child.kill('SIGKILL');
    await p.exited;
    await waitFor(`${name} gone`, async () => !(await findStream(name)), 10_000, 50);
  };
  // warm-up cycle: first-use allocations (pools, caches) are not leaks
  await cycle(9, 0);
  await completeRows('cyc9_0', 1);
  const heap0 = await collectGarbage(pid, work);
  const before = { fds: fdCount(pid), rss: rssMb(pid), children: childrenOf(pid).length };
  const u0 = treeUsage(pid, heap0);
  const perLane = Number(process.env.EDGEREC_RTMP_CYCLES ?? 20) / 2; // more for a longer look at RSS
  const lanes = [0, 1].map(async (lane) => {
    for (let i = 0; i < perLane; i++) {
      await cycle(lane, i);
      if (lane === 0 && i % 5 === 4) console.log(`cycle ${2 * (i + 1)}: ${showUsage(treeUsage(pid))}`);
    }
  });
  await Promise.all(lanes);
  await waitFor(
    'all cycle recordings complete',
    async () => {
      const r = await s.json('/rest-api/recordings?limit=1000');
      const mine = (r.body as { recordings: Row[] }).recordings.filter((x) => /^cyc[01]_/.test(x.stream));
      return mine.length === 2 * perLane && mine.every((x) => x.state === 'complete');
    },
    30_000,
    200,
  );
  // finalize remuxes and hooks are short-lived children: wait (bounded) for them to be gone
  await waitFor('short-lived children to exit', () => childrenOf(pid).length <= before.children && fdCount(pid) - before.fds <= 5, 10_000, 100).catch(() => undefined);
  const afterM = { fds: fdCount(pid), rss: rssMb(pid), children: childrenOf(pid).length };
  const fdsList = readdirSync(`/proc/${pid}/fd`).map((f) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${f}`);
    } catch {
      return '?';
    }
  });
  console.log(
    `${2 * perLane} publish/kill cycles: fds ${before.fds} -> ${afterM.fds}, RSS ${before.rss.toFixed(1)} -> ${afterM.rss.toFixed(1)} MB, ` +
      `media host children ${before.children} -> ${afterM.children}`,
  );
  assert.ok(afterM.fds - before.fds <= 5, `open fds grew from ${before.fds} to ${afterM.fds}: ${fdsList.join(' ')}`);
  assert.equal(afterM.children, before.children, 'no media host processes piled up or vanished');
  // The service, each media host and the tree's RSS, within bounds that do not grow with the cycle count.
  const u1 = treeUsage(pid, await collectGarbage(pid, work));
  console.log(`before: ${showUsage(u0)}\nafter:  ${showUsage(u1)}`);
  assert.ok(u1.hosts.length >= 1, 'the media hosts are measured');
  assertNoLeak(u0, u1, `${2 * perLane} RTMP publish/kill cycles`);
});
