import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostPool, type Fragment, type HostPoolOptions, type PipelineExit, type PipelineHandle } from '../../src/pipeline/host-pool';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { describePipeline } from '../../src/pipeline/launch';
import { FlvParser } from '../../src/ingest/rtmp/flv';
import { flvHeader, flvTag } from '../../src/ingest/rtmp/codecs';

const MUX = 'async-finalize=true muxer-factory=mp4mux muxer-properties="properties,fragment-duration=1000"';

/** A live H.264 test pattern recorded by splitmuxsink into dir/<prefix>%05d.mp4. */
function liveLaunch(dir: string, prefix: string, maxSizeTimeNs: number): string {
  return (
    'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ' +
    '! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse ' +
    `! splitmuxsink name=mux max-size-time=${maxSizeTimeNs} ${MUX} location=${dir}/${prefix}%05d.mp4`
  );
}

/** FLV bytes pushed into appsrc "src", demuxed and recorded to one MP4. */
function flvLaunch(dir: string, prefix: string): string {
  return (
    'appsrc name=src is-live=true format=time caps=video/x-flv ! flvdemux name=demux ' +
    'demux.video ! queue ! h264parse ! mux.video demux.audio ! queue ! aacparse ! mux.audio_0 ' +
    `splitmuxsink name=mux ${MUX} location=${dir}/${prefix}%05d.mp4`
  );
}

interface Tracked {
  readonly h: PipelineHandle;
  readonly opened: Fragment[];
  readonly closed: Fragment[];
  readonly errors: string[];
  started: boolean;
  stalled: boolean;
  positionNs: number;
  exit: PipelineExit | null;
  exitAt: number;
}

function track(h: PipelineHandle): Tracked {
  const t: Tracked = { h, opened: [], closed: [], errors: [], started: false, stalled: false, positionNs: -1, exit: null, exitAt: 0 };
  h.on('started', () => (t.started = true));
  h.on('fragment-opened', (f) => t.opened.push(f));
  h.on('fragment-closed', (f) => t.closed.push(f));
  h.on('position', (ns) => (t.positionNs = ns));
  h.on('stalled', () => (t.stalled = true));
  h.on('error', (e) => t.errors.push(`${e.element}: ${e.message}`));
  h.on('exit', (x) => {
    assert.equal(t.exit, null, 'exit emitted twice');
    t.exit = x;
    t.exitAt = Date.now();
  });
  return t;
}

/** True while the process exists and is not a zombie (an orphan's reaper may be slow). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A started pool, closed after the test; any host PID it ever had is SIGKILLed if still there. */
async function openPool(t: TestContext, o: HostPoolOptions): Promise<HostPool> {
  const pool = new HostPool(o);
  const pids = new Set<number>();
  const note = setInterval(() => pool.stats().forEach((s) => pids.add(s.pid)), 200);
  t.after(async () => {
    clearInterval(note);
    await pool.close();
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await pool.start();
  pool.stats().forEach((s) => pids.add(s.pid));
  return pool;
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Push a file into appsrc `src` in chunks of `chunk` bytes, one chunk every `everyMs` (0: as fast as the loop turns). */
async function pushFile(h: PipelineHandle, data: Buffer, chunk: number, everyMs: number, untilByte = data.length): Promise<number> {
  let sent = 0;
  for (let off = 0; off < untilByte && off < 100_000_000; off += chunk) {
    if (h.push('src', data.subarray(off, Math.min(off + chunk, untilByte)))) sent++;
    await new Promise((r) => (everyMs > 0 ? setTimeout(r, everyMs) : setImmediate(r)));
  }
  return sent;
}

test('every fragment closed but the pipeline posts no EOS: ends as eos within about a second, the file complete', async (t) => {
  // splitmuxsink with async-finalize sometimes never posts the pipeline's EOS after closing its last file
  // (gst-launch-1.0: ~1 run in 4 here). A branch that swallows EOS (valve drop=true) makes that happen every run.
  const dir = tmp(t);
  const pool = await openPool(t, { size: 1 });
  const launch =
    'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ' +
    '! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse ! tee name=t ' +
    `t. ! queue ! splitmuxsink name=mux max-size-time=0 ${MUX} location=${dir}/lost%05d.mp4 ` +
    't. ! queue ! valve drop=true ! fakesink async=false';
  const a = track(pool.run('lost-eos', launch, { eosTimeoutMs: 8000 }));
  await waitFor('an opened fragment with 2 s of media', () => a.opened.length >= 1 && a.positionNs > 2e9, 20_000);
  const eosAt = Date.now();
  a.h.eos();
  await waitFor('exit', () => a.exit, 15_000);
  const tookMs = a.exitAt - eosAt;
  assert.deepEqual(a.exit, { reason: 'eos' }, 'everything was written: a clean end');
  assert.ok(tookMs < 4000, `ended ${tookMs} ms after the EOS request (the EOS timeout is 8000 ms)`);
  assert.deepEqual(a.closed.map((f) => f.location), a.opened.map((f) => f.location), 'the fragment was closed by the muxer');
  const p = await probe(join(dir, 'lost00000.mp4'));
  assert.ok(Number(p.format.duration) >= 1.5, `duration ${p.format.duration}`);
  assert.equal(await decodeErrors(join(dir, 'lost00000.mp4')), '');
});

test('records rotating fragments, ends on eos, every fragment plays', async (t) => {
  const dir = tmp(t);
  const pool = await openPool(t, { size: 1 });
  const a = track(pool.run('rot', liveLaunch(dir, 'f', 1_000_000_000)));
  await waitFor('two closed fragments', () => a.closed.length >= 2, 20_000);
  assert.ok(a.started);
  assert.ok(a.positionNs > 0, 'position events arrive');
  a.h.eos();
  await waitFor('exit', () => a.exit, 15_000);
  assert.deepEqual(a.exit, { reason: 'eos' });
  assert.equal(a.closed.length, a.opened.length, 'every opened fragment is closed by EOS');
  assert.deepEqual(
    a.opened.map((f) => f.location),
    a.opened.map((_, i) => join(dir, `f${String(i).padStart(5, '0')}.mp4`)),
  );
  // With async-finalize each fragment's muxer closes on its own thread, so fragment-closed messages may arrive out of
  // order (seen on CI): match them to fragments by location, as the recorder does.
  const closed = [...a.closed].sort((x, y) => x.location.localeCompare(y.location));
  assert.deepEqual(
    closed.map((f) => f.location),
    a.opened.map((f) => f.location),
    'each opened fragment is closed exactly once',
  );
  const story = a.closed.map((f) => `${f.location.slice(-10)}@${f.runningTimeNs}`).join(', ');
  // non-decreasing by fragment: an EOS right after a rotation closes an empty last fragment at the same running time
  for (let i = 1; i < closed.length; i++) {
    assert.ok((closed[i]?.runningTimeNs ?? 0) >= (closed[i - 1]?.runningTimeNs ?? 0), `closing running times by fragment: ${story}`);
  }
  for (const [i, f] of closed.entries()) {
    if (i > 0 && i === closed.length - 1 && f.runningTimeNs === closed[i - 1]?.runningTimeNs) continue; // empty last fragment
    const p = await probe(f.location);
    assert.equal(p.streams[0]?.codec_name, 'h264', f.location);
    // the last fragment is cut short by EOS
    if (i < closed.length - 1) assert.ok(Number(p.format.duration) > 0.5, `${f.location} duration ${p.format.duration}`);
  }
  assert.equal(a.h.push('src', Buffer.alloc(10)), false, 'push after exit returns false');
});

test('FLV pushed through appsrc becomes a playable MP4', async (t) => {
  const dir = tmp(t);
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv' }));
  const pool = await openPool(t, { size: 1 });
  const a = track(pool.run('flv', flvLaunch(dir, 'p')));
  await waitFor('started', () => a.started, 10_000);
  const sent = await pushFile(a.h, clip, 64 * 1024, 0);
  assert.equal(sent, Math.ceil(clip.length / (64 * 1024)), 'every chunk was accepted');
  // at once: appsrc (1.22) queues the EOS behind the data it still holds, and IPC keeps the order
  a.h.eos();
  await waitFor('exit', () => a.exit, 15_000);
  assert.deepEqual(a.exit, { reason: 'eos' }, a.errors.join('; '));
  assert.equal(a.closed.length, 1);
  const p = await probe(join(dir, 'p00000.mp4'));
  assert.deepEqual(p.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  const duration = Number(p.format.duration);
  assert.ok(duration > 5.5 && duration < 6.5, `duration ${duration}`);
});

/** An RTMP recording's pipeline as the recorder describes it for a media host: no flvdemux, the host splits the tags. */
function flvFramesLaunch(dir: string, prefix: string): string {
  const output = { container: 'mp4' as const, location: `${dir}/${prefix}%05d.mp4`, maxSizeTimeNs: 0, maxSizeBytes: 0, aac: { sampleRate: 44100, channels: 2, bitrateMode: 5 }, webm: { clusterMs: 0, clusterBytes: 0 } };
  return describePipeline({ source: { kind: 'flv' }, codecs: { video: 'H264', audio: 'AAC' }, output }, { flvFrames: true });
}

/** The FLV header then one chunk per tag, as the service pushes an RTMP stream (stream.ts). */
function flvChunks(clip: Buffer): Buffer[] {
  const tags = new FlvParser().push(clip);
  return [flvHeader({ video: 'H264', audio: 'AAC' }), ...tags.map((tag) => tag.bytes)];
}

test('FLV tags split into frames by the host (no flvdemux): a playable MP4 with both tracks, B-frames included', async (t) => {
  const dir = tmp(t);
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv', bframes: true }));
  const pool = await openPool(t, { size: 1 });
  const launch = flvFramesLaunch(dir, 'f');
  assert.ok(!launch.includes('flvdemux'), launch);
  const a = track(pool.run('flv-frames', launch));
  await waitFor('started', () => a.started, 10_000);
  const chunks = flvChunks(clip);
  assert.ok(chunks.length > 300, `${chunks.length} tags`);
  for (const [i, c] of chunks.entries()) {
    assert.equal(a.h.push('src', c), true);
    if (i % 16 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  a.h.eos();
  await waitFor('exit', () => a.exit, 20_000);
  assert.deepEqual(a.exit, { reason: 'eos' }, a.errors.join('; '));
  assert.deepEqual(a.errors, []);
  const file = join(dir, 'f00000.mp4');
  const p = await probe(file);
  assert.deepEqual(p.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  for (const st of p.streams) {
    const d = Number(st.duration);
    assert.ok(d > 5.5 && d < 6.5, `${st.codec_name} duration ${d}`);
  }
  assert.equal(await decodeErrors(file), '');
});

// A publisher that changes resolution sends a new sequence header. The host sets the new caps on its appsrc; the
// outcome must be what flvdemux gave (GStreamer's fragmented mp4mux then writes the last caps' sample description).
test('FLV tags split by the host: a new sequence header mid-stream (a resolution change) gives what flvdemux gave', async (t) => {
  const dir = tmp(t);
  const first = flvChunks(readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv', size: '320x240' })));
  const second = new FlvParser().push(readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv' })));
  // the second clip follows the first one: 6 s later
  const moved = second.map((tag) => flvTag(tag.type, tag.timestamp + 6000, tag.bytes.subarray(11, tag.bytes.length - 4)));
  const pool = await openPool(t, { size: 1 });
  const outcome = async (name: string, launch: string): Promise<string> => {
    const a = track(pool.run(name, launch));
    await waitFor('started', () => a.started, 10_000);
    for (const [i, c] of [...first, ...moved].entries()) {
      a.h.push('src', c);
      if (i % 16 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    a.h.eos();
    await waitFor('exit', () => a.exit, 20_000);
    assert.deepEqual(a.exit, { reason: 'eos' }, a.errors.join('; '));
    const files = await Promise.all(a.closed.map((f) => probe(f.location)));
    return JSON.stringify(files.map((p) => p.streams.map((st) => [st.codec_name, st.width ?? 0, st.height ?? 0])));
  };
  const split = await outcome('flv-caps', flvFramesLaunch(dir, 'r'));
  assert.match(split, /"h264",640,360/, 'the new caps reached the muxer');
  assert.equal(split, await outcome('flv-caps-demux', flvLaunch(dir, 'd')));
});

test('a malformed FLV tag: an error event naming it, the recording ends with what it had, the host lives on', async (t) => {
  const dir = tmp(t);
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv' }));
  const pool = await openPool(t, { size: 1 });
  const a = track(pool.run('flv-bad', flvFramesLaunch(dir, 'b')));
  await waitFor('started', () => a.started, 10_000);
  const pid = pool.stats()[0]?.pid;
  const chunks = flvChunks(clip);
  const half = Math.floor(chunks.length / 2);
  for (const c of chunks.slice(0, half)) a.h.push('src', c);
  // a tag whose header promises more bytes than it has, then a video tag of codec id 12 (HEVC the legacy way)
  a.h.push('src', flvTag(9, 3000, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 9])).subarray(0, 15));
  await waitFor('exit', () => a.exit, 15_000);
  assert.match(a.errors.join('; '), /^src: FLV tag refused: FLV tag of type 9 cut short: its header says 9 bytes of data, 4 are there/);
  const p = await probe(join(dir, 'b00000.mp4'));
  assert.deepEqual(p.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  // the same host runs the next pipeline, and refuses an H.265 tag the same way
  const b = track(pool.run('flv-hevc', flvFramesLaunch(dir, 'c')));
  await waitFor('started', () => b.started, 10_000);
  assert.equal(pool.stats()[0]?.pid, pid, 'same host process');
  for (const c of chunks.slice(0, 20)) b.h.push('src', c);
  b.h.push('src', flvTag(9, 1000, Buffer.from([0x1c, 1, 0, 0, 0, 0, 0, 0, 1, 0x26])));
  await waitFor('exit', () => b.exit, 15_000);
  assert.match(b.errors.join('; '), /FLV video codec id 12 \[allowed: 7 \(H\.264\)\]/);
});

// The host reads its request channel into one reused buffer: a frame still incomplete at the end of a read must be
// copied out before the next read overwrites it. 8 MiB in chunks of random size, pushed as fast as the loop turns (the
// service's 20 ms batches are then far larger than one 64 KiB read), must reach the pipeline byte for byte.
test('bytes pushed at full speed reach the pipeline exactly, whatever the channel reads cut', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'out.bin');
  const pool = await openPool(t, { size: 1 });
  const a = track(pool.run('exact', `appsrc name=src is-live=true format=time caps=video/x-flv ! filesink location=${out}`));
  await waitFor('started', () => a.started, 10_000);
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const data = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
  let sent = 0;
  let chunks = 0;
  for (let off = 0; off < data.length && chunks < 10_000; chunks++) {
    const n = Math.min(1 + Math.floor(rnd() * 40_000), data.length - off);
    assert.equal(a.h.push('src', data.subarray(off, off + n)), true, `push ${chunks} accepted`);
    off += n;
    sent += n;
    if (chunks % 8 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.equal(sent, data.length);
  a.h.eos();
  await waitFor('exit', () => a.exit, 30_000);
  assert.deepEqual(a.exit, { reason: 'eos' }, a.errors.join('; '));
  const got = readFileSync(out);
  assert.equal(got.length, data.length, 'every byte arrived');
  let firstBad = -1;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== data[i]) {
      firstBad = i;
      break;
    }
  }
  assert.equal(firstBad, -1, `the bytes differ from byte ${firstBad} on`);
});

test('EOS before any media (flvdemux errors "EOS before any data"): the pipeline ends at once, nothing written', async (t) => {
  // a recording stopped right after its start (10 startRecording calls in a row each stop the previous one)
  const dir = tmp(t);
  const pool = await openPool(t, { size: 1 });
  const a = track(pool.run('early-eos', flvLaunch(dir, 'e')));
  await waitFor('started', () => a.started, 10_000);
  const eosAt = Date.now();
  a.h.eos();
  await waitFor('exit', () => a.exit, 15_000);
  const tookMs = a.exitAt - eosAt;
  assert.ok(tookMs < 1500, `ended ${tookMs} ms after the EOS request (the error grace is 3000 ms)`);
  assert.deepEqual(a.opened, [], 'no fragment');
  assert.notEqual(a.exit?.reason, 'host-died');
  // the host runs the next pipeline as usual
  const b = track(pool.run('after-early-eos', 'videotestsrc is-live=true num-buffers=10 ! fakesink'));
  await waitFor('the next pipeline ends', () => b.exit, 15_000);
  assert.deepEqual(b.exit, { reason: 'eos' });
});

/** Push 50 MB through appsrc in 64 KB chunks, then the host's Buffers (`external`) over the next ~3 s, MB. */
async function externalAfterPush(t: TestContext, tidyMs: number): Promise<{ before: number; after: number[] }> {
  const saved = process.env.EDGEREC_TIDY_MS;
  process.env.EDGEREC_TIDY_MS = String(tidyMs); // the host reads it at fork
  let pool: HostPool;
  try {
    pool = await openPool(t, { size: 1, host: { pingIntervalMs: 200 } });
  } finally {
    if (saved === undefined) delete process.env.EDGEREC_TIDY_MS;
    else process.env.EDGEREC_TIDY_MS = saved;
  }
  const a = track(pool.run('tidy', 'appsrc name=src ! fakesink sync=false'));
  await waitFor('started', () => a.started, 10_000);
  await new Promise((r) => setTimeout(r, 600));
  const mb = () => (pool.stats()[0]?.external ?? NaN) / 1e6;
  const before = mb();
  const chunk = Buffer.alloc(64 * 1024, 7);
  for (let i = 0; i < 800; i++) {
    a.h.push('src', chunk);
    await new Promise((r) => setImmediate(r));
  }
  const after: number[] = [];
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 250));
    after.push(mb());
  }
  a.h.eos();
  await waitFor('exit', () => a.exit, 10_000);
  return { before, after };
}

test('a host tidies its memory: Buffers that came over IPC do not stay until V8 gets round to a full GC', async (t) => {
  const tidy = await externalAfterPush(t, 400);
  const lazy = await externalAfterPush(t, 0);
  const show = (x: { before: number; after: number[] }) => `${x.before.toFixed(1)} MB before, then ${x.after.map((v) => v.toFixed(1)).join(' ')}`;
  t.diagnostic(`host Buffers around a 50 MB push, tidy every 400 ms: ${show(tidy)}`);
  t.diagnostic(`the same without tidying (EDGEREC_TIDY_MS=0): ${show(lazy)}`);
  const last = tidy.after[tidy.after.length - 1] ?? NaN;
  assert.ok(last <= tidy.before + 1, `the host's Buffers went back to ${tidy.before.toFixed(1)} MB (+1): ${show(tidy)}`);
});

test('a bad launch string ends in error and the host runs the next pipeline', async (t) => {
  const pool = await openPool(t, { size: 1 });
  const bad = track(pool.run('bad', 'videotestsrc ! no-such-element ! fakesink'));
  await waitFor('bad exit', () => bad.exit, 10_000);
  assert.equal(bad.exit?.reason, 'error');
  assert.match(bad.exit?.error ?? '', /no element "no-such-element"/);
  assert.equal(bad.errors.length, 1);
  assert.equal(bad.started, false);
  const runtime = track(pool.run('missing-file', 'filesrc location=/nonexistent/x.flv ! fakesink'));
  await waitFor('runtime error exit', () => runtime.exit, 10_000);
  assert.equal(runtime.exit?.reason, 'error');
  assert.match(runtime.errors[0] ?? '', /^filesrc0: /);
  const good = track(pool.run('good', 'videotestsrc is-live=true num-buffers=25 ! fakesink'));
  await waitFor('good exit', () => good.exit, 10_000);
  assert.deepEqual(good.exit, { reason: 'eos' });
  assert.equal(good.h.hostPid, bad.h.hostPid, 'same host');
  assert.equal(pool.stats()[0]?.restarts, 0);
});

test('a SIGKILLed host ends only its pipelines; the pool replaces it', async (t) => {
  const dir = tmp(t);
  const pool = await openPool(t, { size: 2 });
  const a = track(pool.run('a', liveLaunch(dir, 'a', 60_000_000_000)));
  const b = track(pool.run('b', liveLaunch(dir, 'b', 60_000_000_000)));
  await waitFor('both recording', () => a.positionNs > 2.5e9 && b.positionNs > 2.5e9, 20_000);
  const killed = a.h.hostPid;
  assert.notEqual(killed, b.h.hostPid, 'least-loaded placement spreads pipelines');
  const killedAt = Date.now();
  process.kill(killed, 'SIGKILL');
  await waitFor('a exits', () => a.exit, 5_000, 20);
  assert.equal(a.exit?.reason, 'host-died');
  assert.ok(a.exitAt - killedAt < 2000, `host-died after ${a.exitAt - killedAt} ms`);
  const bAtKill = b.positionNs;
  await waitFor('b keeps advancing', () => b.positionNs > bAtKill + 1e9, 10_000);
  assert.equal(b.exit, null);
  await waitFor('replacement host', () => pool.stats().length === 2 && pool.stats().every((s) => s.pid !== killed && s.pid > 0), 10_000);
  assert.equal(pool.stats().reduce((n, s) => n + s.restarts, 0), 1);
  const c = track(pool.run('c', liveLaunch(dir, 'c', 60_000_000_000)));
  await waitFor('c recording', () => c.positionNs > 1e9, 20_000);
  assert.ok(c.h.hostPid !== killed && c.h.hostPid !== b.h.hostPid, 'c runs on the new host');
  const partial = await probe(a.opened[0]?.location ?? 'none');
  assert.equal(partial.streams[0]?.codec_name, 'h264');
  assert.ok(Number(partial.format.duration) > 1, `partial duration ${partial.format.duration}`);
  b.h.eos();
  c.h.eos();
  await waitFor('b and c exit', () => b.exit && c.exit, 15_000);
  assert.deepEqual([b.exit, c.exit], [{ reason: 'eos' }, { reason: 'eos' }]);
});

test('a frozen host (no ping answer) is killed and its pipelines end host-died', async (t) => {
  const pool = await openPool(t, { size: 1, host: { pingIntervalMs: 200, pingTimeoutMs: 1000 } });
  const a = track(pool.run('frozen', 'videotestsrc is-live=true ! fakesink'));
  await waitFor('started', () => a.started, 10_000);
  const pid = a.h.hostPid;
  process.kill(pid, 'SIGSTOP');
  t.after(() => (alive(pid) ? process.kill(pid, 'SIGKILL') : undefined));
  await waitFor('exit', () => a.exit, 10_000);
  assert.equal(a.exit?.reason, 'host-died');
  assert.match(a.exit?.error ?? '', /did not answer a ping/);
  await waitFor('frozen host gone', () => !alive(pid), 5_000);
  await waitFor('replacement', () => pool.stats().some((s) => s.pid !== pid && s.pid > 0), 10_000);
});

test('push() drops data and says so while the IPC backlog is over its bound', async (t) => {
  const pool = await openPool(t, { size: 1, host: { maxPendingBytes: 1 } });
  const a = track(pool.run('bp', 'appsrc name=src ! fakesink'));
  const warnings: string[] = [];
  a.h.on('warning', (w) => warnings.push(`${w.element}: ${w.message}`));
  await waitFor('started', () => a.started, 10_000);
  assert.equal(a.h.push('src', Buffer.alloc(1000)), true);
  // the send completes on a later tick: until then the backlog is 1000 bytes
  assert.equal(a.h.push('src', Buffer.alloc(500)), false);
  assert.equal(a.h.push('src', Buffer.alloc(500)), false);
  assert.deepEqual(warnings, ['ipc: media host is not keeping up with pushed data; dropping it']);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(a.h.push('src', Buffer.alloc(10)), true);
  assert.equal(warnings[1], 'ipc: media host caught up; 1000 bytes were dropped');
  a.h.stop();
  await waitFor('exit', () => a.exit, 10_000);
  assert.deepEqual(a.exit, { reason: 'stopped' });
});

test('a source that stops producing is reported stalled and ended', async (t) => {
  const dir = tmp(t);
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', container: 'flv' }));
  const pool = await openPool(t, { size: 1 });
  const stallMs = 3000; // above the clip's 2 s GOP: splitmuxsink moves the position one GOP at a time
  const a = track(pool.run('stall', flvLaunch(dir, 's'), { stallMs }));
  await waitFor('started', () => a.started, 10_000);
  // about real time: the 6 s clip in 60 chunks of 100 ms; stop after half of it
  const chunk = Math.ceil(clip.length / 60);
  await pushFile(a.h, clip, chunk, 100, chunk * 30);
  const lastPushAt = Date.now();
  await waitFor('exit', () => a.exit, stallMs + 8000);
  assert.ok(a.stalled, 'stalled was emitted');
  assert.equal(a.exit?.reason, 'eos');
  assert.ok(a.exitAt - lastPushAt <= stallMs + 2000, `exit ${a.exitAt - lastPushAt} ms after the last push`);
  const p = await probe(join(dir, 's00000.mp4'));
  assert.ok(Number(p.format.duration) >= 1.9, `duration ${p.format.duration}`);
});

test('a host that reached its pipeline limit drains and is replaced', async (t) => {
  const pool = await openPool(t, { size: 1, maxPipelinesPerHost: 2 });
  const first = pool.stats()[0]?.pid ?? 0;
  const a = track(pool.run('d1', 'videotestsrc is-live=true ! fakesink'));
  const b = track(pool.run('d2', 'videotestsrc is-live=true num-buffers=5 ! fakesink'));
  await waitFor('replacement while draining', () => pool.stats().some((s) => s.pid !== first && s.pid > 0 && !s.draining), 10_000);
  assert.equal(pool.stats().find((s) => s.pid === first)?.draining, true);
  const c = track(pool.run('d3', 'videotestsrc is-live=true num-buffers=5 ! fakesink'));
  await waitFor('b and c end', () => b.exit && c.exit, 10_000);
  assert.notEqual(c.h.hostPid, first);
  assert.ok(alive(first), 'the draining host lives while a pipeline runs on it');
  a.h.stop();
  await waitFor('a stops', () => a.exit, 10_000);
  assert.deepEqual(a.exit, { reason: 'stopped' });
  await waitFor('drained host exits', () => !alive(first), 10_000);
  assert.equal(pool.stats().length, 1);
});

test('close() ends every host process and is safe twice', async (t) => {
  const dir = tmp(t);
  const pool = await openPool(t, { size: 2 });
  const a = track(pool.run('a', liveLaunch(dir, 'z', 60_000_000_000)));
  await waitFor('recording', () => a.positionNs > 1e9, 20_000);
  const pids = pool.stats().map((s) => s.pid);
  assert.equal(pids.length, 2);
  await Promise.all([pool.close(), pool.close()]);
  await pool.close();
  assert.deepEqual(a.exit, { reason: 'eos' });
  assert.deepEqual(pids.filter(alive), [], 'no host process is left');
  assert.equal(pool.run('late', 'fakesrc ! fakesink').push('src', Buffer.alloc(1)), false);
});

test('hosts exit when their parent process dies', async (t) => {
  const poolJs = join(__dirname, '../../src/pipeline/host-pool.js');
  const code =
    `const { HostPool } = require(${JSON.stringify(poolJs)}); const p = new HostPool({ size: 2 });` +
    `p.start().then(() => { p.run('x', 'videotestsrc is-live=true ! fakesink'); console.log('PIDS ' + JSON.stringify(p.stats().map((s) => s.pid))); });` +
    'setInterval(() => {}, 1000);';
  const parent = start(process.execPath, ['-e', code], { env: { ...process.env, EDGEREC_LOG_LEVEL: 'warn' } });
  t.after(() => parent.stop('SIGKILL'));
  const line = await waitFor('host pids', () => /PIDS (\[.*\])/.exec(parent.output())?.[1], 15_000);
  const pids = JSON.parse(line) as number[];
  t.after(() => pids.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));
  assert.equal(pids.length, 2);
  await parent.stop('SIGKILL');
  await waitFor('hosts gone', () => pids.every((pid) => !alive(pid)), 8_000);
});

test('reconciliation: a pipeline no owner knows is ended with EOS (its file finished), a known one keeps running', async (t) => {
  const { PipelineReconciler } = await import('../../src/recorder/reconcile');
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-reconcile-'));
  const pool = new HostPool({ size: 1 });
  t.after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await pool.start();
  const known = track(pool.run('known', liveLaunch(dir, 'known-', 0)));
  const orphan = track(pool.run('orphan', liveLaunch(dir, 'orphan-', 0)));
  await waitFor('both pipelines to write a fragment', () => known.opened.length > 0 && orphan.opened.length > 0, 20_000, 50);
  const r = new PipelineReconciler({ running: () => pool.running(), known: () => new Set(['known']), end: (id) => pool.endPipeline(id) });
  assert.deepEqual(r.runOnce(), [], 'the first pass only suspects');
  assert.deepEqual(r.runOnce().map((x) => x.id), ['orphan']);
  await waitFor('the orphan to exit', () => orphan.exit, 15_000, 50);
  assert.equal(orphan.exit?.reason, 'eos', 'ended cleanly, so its file is complete');
  assert.equal(orphan.closed.length, orphan.opened.length, 'every fragment of the orphan was closed');
  const f = orphan.closed[0]?.location ?? '';
  const info = await probe(f);
  assert.ok(Number(info.format.duration) > 0, `the orphan's file plays: ${f}`);
  assert.equal(known.exit, null, 'the known pipeline still runs');
  assert.deepEqual(pool.running().map((x) => x.id), ['known']);
});
