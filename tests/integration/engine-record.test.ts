import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { decodeErrors, makeClip, mp4TopBoxes, probe } from '../helpers/media';
import { start, type Proc, waitFor } from '../helpers/proc';
import { baseConf, ROOT, rtmpPort, type Service, startService } from '../helpers/service';
import type { RecordingRow as Row } from '../helpers/recorded-file';

const run = promisify(execFile);

// Issue 3: the recording engine (containers, audio transcode, rotation, names, hook, host crash), fed over RTMP.
// Two services run side by side: A (names, hook, audio, moov, host kill) and B (rotation).

type Json = Record<string, unknown>;

const procs: Proc[] = [];
const work = mkdtempSync(join(tmpdir(), 'edgerec-engine-'));
const hookLog = join(work, 'hook.log');
const hookScript = join(work, 'hook.sh');
const A_EXTRA = [
  'stream_record_policy_template={streamName}',
  `on_record_hook_script=${hookScript}`,
  'on_record_hook_timeout=1',
  'record_audio_codec_sample_rate=22050',
  'record_audio_codec_channels=1',
  '',
].join('\n');
const B_EXTRA = 'stream_record_policy_template={streamName}-{startTime}-{endTime}\nrecord_rotation=3\n';

interface Svc {
  s: Service;
  port: number;
  extra: string;
}
let a: Svc;
let b: Svc;

function spawnTracked(cmd: string, args: string[]): Proc {
  const p = start(cmd, args);
  procs.push(p);
  return p;
}

/** ffmpeg publishing `clip` in real time without re-encoding. */
function publish(v: Svc, name: string, clip: string, query = '', loop = false): Proc {
  const url = `rtmp://127.0.0.1:${v.port}/live/${name}${query}`;
  return spawnTracked('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...(loop ? ['-stream_loop', '-1'] : []), '-i', clip, '-c', 'copy', '-f', 'flv', url]);
}

async function applyConf(v: Svc, extra: string): Promise<void> {
  const n = v.s.logs().filter((l) => l.msg === 'config applied').length;
  v.s.writeConf(baseConf(v.s.dir) + v.extra + extra);
  await waitFor('the config to be applied', () => v.s.logs().filter((l) => l.msg === 'config applied').length > n, 10_000, 50);
}

async function rows(v: Svc, stream: string): Promise<Row[]> {
  const r = await v.s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings.sort((x, y) => x.id - y.id);
}

/** Rows of `stream` once there are at least `n`, all complete, and the stream is no longer live. */
function finished(v: Svc, stream: string, n: number, timeoutMs = 30_000): Promise<Row[]> {
  return waitFor(
    `${n} complete rows of ${stream}`,
    async () => {
      const all = await rows(v, stream);
      if (all.length < n || !all.every((r) => r.state === 'complete')) return null;
      return (await liveStream(v, stream)) ? null : all;
    },
    timeoutMs,
    100,
  );
}

async function liveStream(v: Svc, name: string): Promise<Json | null> {
  const r = await v.s.post('/rest-api/stream/find', { name });
  if (r.status !== 200) return null;
  return (r.body as Json[]).find((x) => x.status === 'publishing') ?? null;
}

async function startRec(v: Svc, id: string, config: Json): Promise<string> {
  const r = await v.s.post('/rest-api/stream/startRecording', { mediaSessionId: id, config });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return String((r.body as Json).fileName);
}

async function playable(file: string): Promise<number> {
  const p = await probe(file);
  assert.equal(await decodeErrors(file), '', `${file} decodes cleanly`);
  return Number(p.format.duration);
}

/** Hook runs as recorded by the script: each is its argv. */
function hookRuns(): string[][] {
  if (!existsSync(hookLog)) return [];
  return readFileSync(hookLog, 'utf8')
    .split('\u001e')
    .filter((r) => r.length > 0)
    .map((r) => r.split('\0').slice(0, -1));
}

/** Largest GOP of a clip in bytes (video packets from one keyframe to the next). */
async function maxGopBytes(clip: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=size,flags', '-of', 'csv=p=0', clip], { maxBuffer: 64 * 1024 * 1024 });
  let max = 0;
  let cur = 0;
  for (const line of stdout.split('\n')) {
    const [size, flags] = line.split(',');
    if (!size) continue;
    if (flags?.includes('K')) cur = 0;
    cur += Number(size);
    max = Math.max(max, cur);
  }
  return max;
}

// B's work runs in the background while A's tests run; B's tests assert on its outcome.
let bWork: Promise<{ rot: Row[]; big: Row[]; bigMaxGop: number }>;

async function runB(): Promise<{ rot: Row[]; big: Row[]; bigMaxGop: number }> {
  const clip10 = await makeClip({ video: 'h264', audio: 'aac', seconds: 10, size: '320x180', gop: 25 });
  await publish(b, 'test', clip10).exited;
  const rot = await finished(b, 'test', 3);
  await applyConf(b, 'record_rotation=1M\nrecord_rotation_index_enabled=false\nstream_record_policy_template={streamName}\n');
  const big = await makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '1280x720', gop: 25 });
  await publish(b, 'big', big).exited;
  return { rot, big: await finished(b, 'big', 2), bigMaxGop: await maxGopBytes(big) };
}

before(async () => {
  writeFileSync(hookScript, `#!/bin/bash\nprintf '%s\\0' "$#" "$@" >> '${hookLog}'\nprintf '\\036' >> '${hookLog}'\ncase "$1" in hang*) sleep 30 ;; esac\n`);
  chmodSync(hookScript, 0o755);
  await Promise.all([
    makeClip({ video: 'h264', audio: 'aac', seconds: 10, size: '320x180', gop: 25 }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '1280x720', gop: 25 }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 }),
    makeClip({ video: 'h264', audio: 'mp3', seconds: 4, size: '320x180', gop: 25, container: 'flv' }),
  ]);
  const [sa, sb] = await Promise.all([startService({ conf: A_EXTRA }), startService({ conf: B_EXTRA })]);
  a = { s: sa, port: await rtmpPort(sa), extra: A_EXTRA };
  b = { s: sb, port: await rtmpPort(sb), extra: B_EXTRA };
  bWork = runB();
  bWork.catch(() => undefined); // asserted in its tests
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await Promise.all([a?.s.stop(), b?.s.stop()]);
  for (const v of [a, b]) if (v) rmSync(v.s.dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('moov before mdat by default; MP3 in FLV is transcoded to AAC at the configured rate and channels', async () => {
  const clip4 = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const mp3 = await makeClip({ video: 'h264', audio: 'mp3', seconds: 4, size: '320x180', gop: 25, container: 'flv' });
  await Promise.all([publish(a, 'moov_on', clip4).exited, publish(a, 'mp3_in', mp3).exited]);
  await finished(a, 'moov_on', 1);
  const on = await mp4TopBoxes(join(a.s.recordDir, 'moov_on.mp4'));
  assert.ok(on.indexOf('moov') >= 0 && on.indexOf('moov') < on.indexOf('mdat'), `moov first: ${on.join(',')}`);

  const [mrow] = await finished(a, 'mp3_in', 1);
  assert.equal(mrow?.fileName, 'mp3_in.mp4');
  const file = join(a.s.recordDir, 'mp3_in.mp4');
  const p = await probe(file);
  const audio = p.streams.find((x) => x.codec_type === 'audio');
  assert.equal(audio?.codec_name, 'aac', 'MP3 became AAC');
  assert.equal(audio?.sample_rate, '22050', 'record_audio_codec_sample_rate');
  assert.equal(audio?.channels, 1, 'record_audio_codec_channels');
  assert.equal(p.streams.find((x) => x.codec_type === 'video')?.codec_name, 'h264');
  const d = await playable(file);
  assert.ok(Math.abs(d - 4) <= 0.6, `duration ${d}`);

  await applyConf(a, 'mp4_container_moov_first=false\n');
  await publish(a, 'moov_off', clip4).exited;
  await finished(a, 'moov_off', 1);
  const off = await mp4TopBoxes(join(a.s.recordDir, 'moov_off.mp4'));
  assert.ok(off.indexOf('moov') > off.indexOf('mdat') && off.indexOf('mdat') >= 0, `moov last: ${off.join(',')}`);
  await playable(join(a.s.recordDir, 'moov_off.mp4'));
  await applyConf(a, '');
});

test('names: `..` and path tricks stay in record_dir, 300 characters are cut to 224 bytes keeping _N.mp4; the hook gets exactly two arguments', async () => {
  const clip4 = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const dots = publish(a, '..', clip4);
  const p = publish(a, 'a..b', clip4, '?record=false', true);
  const st = await waitFor('a..b publishing', () => liveStream(a, 'a..b'), 15_000, 100);
  const id = String(st.mediaSessionId);
  const nasty = `it's "q" $(touch pwned) ; rm -rf x \`id\` {streamName}`;
  const long = 'z'.repeat(100) + 'é'.repeat(100); // 300 bytes before {streamName}
  const templates: [Json, string][] = [
    [{ fileTemplate: nasty }, `it's "q" $(touch pwned) ; rm -rf x \`id\` a..b.mp4`],
    [{ fileTemplate: '../../../../tmp/escape-{streamName}' }, '_........tmpescape-a..b.mp4'],
    [{ fileTemplate: '..' }, '_...mp4'],
    [{ fileTemplate: `${long}-{streamName}`, rotation: '60' }, ''],
  ];
  for (const [config] of templates) {
    await startRec(a, id, config);
    await waitFor('a recording row', async () => (await rows(a, 'a..b')).some((r) => r.state === 'recording'), 10_000, 50);
    await new Promise((r) => setTimeout(r, 1200));
  }
  const stop = await a.s.post('/rest-api/stream/stopRecording', { mediaSessionId: id });
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  p.child.kill('SIGKILL');
  const done = await finished(a, 'a..b', templates.length);
  const names = done.map((r) => r.fileName);
  for (const [, want] of templates.slice(0, 3)) assert.ok(names.includes(want), `${want} among ${JSON.stringify(names)}`);
  const cut = names.find((n) => n.startsWith('zzz'));
  assert.ok(cut, `the long name: ${JSON.stringify(names)}`);
  assert.ok(Buffer.byteLength(cut, 'utf8') <= 224 && Buffer.byteLength(cut, 'utf8') >= 223, `cut to 224 bytes (room for a cut suffix): ${Buffer.byteLength(cut, 'utf8')}`);
  assert.match(cut, /^z{100}é+_1\.mp4$/, 'index and extension kept, no split character');
  const inDir = readdirSync(a.s.recordDir);
  for (const n of names) assert.ok(inDir.includes(n), `${n} is in record_dir`);
  assert.ok(!readdirSync('/tmp').some((f) => f.startsWith('escape-')), 'nothing escaped to /tmp');
  assert.ok(!existsSync(join(ROOT, 'pwned')) && !existsSync(join(a.s.recordDir, 'pwned')), 'no shell ran the name');

  // the hook: exactly two arguments, verbatim
  const nastyPath = join(a.s.recordDir, templates[0]?.[1] ?? '');
  await waitFor('hook runs for a..b', () => hookRuns().filter((r) => r[1] === 'a..b').length >= templates.length, 10_000, 100);
  const runs = hookRuns().filter((r) => r[1] === 'a..b');
  for (const r of runs) assert.equal(r[0], '2', `argc of ${JSON.stringify(r)}`);
  assert.ok(runs.some((r) => r[2] === nastyPath), `verbatim path among ${JSON.stringify(runs.map((r) => r[2]))}`);

  // `..` is refused as a stream name
  const dr = await dots.exited;
  assert.notEqual(dr.code, 0, 'publishing as ".." fails');
  assert.equal((await a.s.post('/rest-api/stream/find', { name: '..' })).status, 404);
});

test('a hook that hangs is killed at on_record_hook_timeout and the next files still finalize', async () => {
  const clip4 = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const p = publish(a, 'hang', clip4, '?record=false');
  const st = await waitFor('hang publishing', () => liveStream(a, 'hang'), 15_000, 100);
  await startRec(a, String(st.mediaSessionId), { rotation: '1' });
  await p.exited;
  const done = await finished(a, 'hang', 2);
  assert.ok(done.length >= 2, `several 1 s fragments: ${done.map((r) => r.fileName).join(', ')}`);
  const killed = await waitFor(
    'hook kills logged',
    () => {
      const k = a.s.logs().filter((l) => l.stream === 'hang' && l.timedOut === true);
      return k.length >= done.length ? k : null;
    },
    15_000,
    100,
  );
  for (const k of killed) assert.ok(Number(k.ms) >= 900 && Number(k.ms) < 4000, `killed after ${String(k.ms)} ms`);
  assert.equal(hookRuns().filter((r) => r[1] === 'hang').length, done.length, 'the hook started for every fragment');
});

test('SIGKILL of the media host during an RTMP recording: API answers, recording resumes in a new file, partial file playable', async () => {
  const clip4 = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const p = publish(a, 'hk', clip4, '', true);
  const [first] = await waitFor('hk recording', async () => {
    const r = await rows(a, 'hk');
    return r.length === 1 && r[0]?.state === 'recording' ? r : null;
  }, 15_000, 100);
  assert.ok(first);
  await new Promise((r) => setTimeout(r, 3500));
  const h = await a.s.json('/rest-api/health');
  const hosts = (h.body as { mediaHosts?: { pid: number }[] }).mediaHosts ?? [];
  assert.ok(hosts.length >= 1, `media hosts in health: ${JSON.stringify(h.body).slice(0, 300)}`);
  const hostPid = hosts[0]?.pid ?? 0;
  assert.ok(hostPid > 0);
  process.kill(hostPid, 'SIGKILL');
  const killedAt = Date.now();
  const ping = await a.s.json('/rest-api/health');
  assert.equal(ping.status, 200, 'API answers right after the kill');
  const second = await waitFor(
    'a second row for the same media session',
    async () => (await rows(a, 'hk')).find((r) => r.id !== first.id && r.mediaSessionId === first.mediaSessionId && r.state === 'recording'),
    5_000,
    50,
  );
  console.log(`media host SIGKILLed: new file after ${Date.now() - killedAt} ms (${second.fileName})`);
  const firstDone = await waitFor('the partial file finalized', async () => (await rows(a, 'hk')).find((r) => r.id === first.id && r.state === 'complete'), 10_000, 100);
  const d1 = await playable(join(a.s.recordDir, firstDone.fileName));
  assert.ok(d1 > 1, `partial file holds the flushed media before the kill (${d1} s)`);
  await new Promise((r) => setTimeout(r, 2000));
  p.child.kill('SIGKILL');
  const all = await finished(a, 'hk', 2);
  assert.equal(new Set(all.map((r) => r.mediaSessionId)).size, 1);
  const last = all.find((r) => r.id === second.id);
  assert.ok(last);
  assert.ok((await playable(join(a.s.recordDir, last.fileName))) > 1, 'the resumed file plays');
  assert.notEqual(last.fileName, firstDone.fileName);
});

test('rotation every 3 s with {streamName}-{startTime}-{endTime}: names parse, fragments continuous, ≈ 3 s each, total ≈ clip', async () => {
  const { rot } = await bWork;
  const parsed = rot.map((r) => {
    const m = /^test-(\d+)-(\d+)_(\d+)\.mp4$/.exec(r.fileName);
    assert.ok(m, `name ${r.fileName}`);
    return { row: r, t0: Number(m[1]), t1: Number(m[2]), n: Number(m[3]) };
  });
  parsed.sort((x, y) => x.n - y.n);
  console.log(`rotation: ${parsed.map((f) => f.row.fileName).join(' ')}`);
  parsed.forEach((f, i) => assert.equal(f.n, i + 1, 'fragments numbered from 1'));
  // {startTime} is the pipeline start on the publish's clock (its launch latency), not exactly the first frame's 0
  assert.ok((parsed[0]?.t0 ?? 99999) < 2500, `the first fragment starts near the stream's 0: ${parsed[0]?.t0}`);
  let total = 0;
  for (let i = 0; i < parsed.length; i++) {
    const f = parsed[i];
    assert.ok(f);
    const d = await playable(join(b.s.recordDir, f.row.fileName));
    total += d;
    if (i < parsed.length - 1) assert.ok(d >= 2 - 0.05 && d <= 3 + 0.05, `${f.row.fileName}: ${d} s (3 s rotation, 1 s GOP)`);
    assert.ok(Math.abs(f.t1 - f.t0 - d * 1000) <= 300, `${f.row.fileName}: name span ${f.t1 - f.t0} ms vs ${d} s of media`);
    const next = parsed[i + 1];
    if (next) assert.ok(next.t0 - f.t1 >= 0 && next.t0 - f.t1 <= 1, `continuous: ${f.row.fileName} then ${next.row.fileName}`);
  }
  assert.ok(Math.abs(total - 10) <= 0.5, `total ${total} s vs the 10 s clip`);
});

test('rotation at 1 MB: fragments ≤ 1 MB + one GOP; record_rotation_index_enabled=false drops _N', async () => {
  const { big, bigMaxGop } = await bWork;
  const names = big.map((r) => r.fileName).sort();
  assert.ok(names.length >= 2, `several fragments: ${names.join(', ')}`);
  assert.ok(names.includes('big.mp4') && names.every((n) => /^big(\(\d+\))?\.mp4$/.test(n)), `no _N: ${names.join(', ')}`);
  for (const n of names) {
    const file = join(b.s.recordDir, n);
    const size = statSync(file).size;
    assert.ok(size <= 1024 * 1024 + bigMaxGop, `${n}: ${size} bytes (limit 1 MiB + GOP ${bigMaxGop})`);
    await playable(file);
  }
});
