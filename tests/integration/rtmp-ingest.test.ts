import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { RtmpIngest, type RtmpPublish, type RtmpRejection } from '../../src/ingest/rtmp/ingest';
import { makeClip, probe } from '../helpers/media';
import { freePort, start, type Proc, waitFor } from '../helpers/proc';

const run = promisify(execFile);

// Real publishers (ffmpeg, GStreamer) against a real RtmpIngest on 127.0.0.1.

const dir = mkdtempSync(join(tmpdir(), 'edgerec-rtmp-'));
let logText = '';
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      logText += chunk.toString();
      if (logText.length > 4_000_000) logText = logText.slice(-2_000_000);
      cb();
    },
  }),
);

let token = '';
const ingest = new RtmpIngest({ port: 0, bind: '127.0.0.1', publishToken: () => token, log });
const publishes: RtmpPublish[] = [];
const unpublished = new Map<string, number>(); // pub id -> epoch ms
const rejections: RtmpRejection[] = [];
/** FLV bytes per pub id, collected from the publish event on (unless a hook takes over) */
const collected = new Map<string, Buffer[]>();
const hooks = new Map<string, (pub: RtmpPublish) => void>();
const procs: Proc[] = [];
const codecsAtPublish = new Map<string, unknown>();

before(async () => {
  ingest.on('publish', (pub) => {
    publishes.push(pub);
    codecsAtPublish.set(pub.id, pub.codecs());
    const hook = hooks.get(pub.name);
    if (hook) return hook(pub);
    const chunks: Buffer[] = [];
    collected.set(pub.id, chunks);
    pub.onData((c) => chunks.push(c));
  });
  ingest.on('unpublish', (pub) => unpublished.set(pub.id, Date.now()));
  ingest.on('rejected', (r) => rejections.push(r));
  await ingest.start();
  assert.ok(ingest.port > 0, 'port 0 gives an OS-chosen port');
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await ingest.close();
  await ingest.close(); // safe twice
  rmSync(dir, { recursive: true, force: true });
});

const url = (name: string, query = '') => `rtmp://127.0.0.1:${ingest.port}/live/${name}${query}`;

function ffmpeg(args: string[]): Proc {
  const p = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args]);
  procs.push(p);
  return p;
}

async function publishOf(name: string, timeoutMs = 10_000): Promise<RtmpPublish> {
  const before = publishes.filter((p) => p.name === name).length;
  return waitFor(`publish of ${name}`, () => publishes.filter((p) => p.name === name)[before], timeoutMs, 20);
}

/** Waits for the publish to end and writes what onData delivered into a file. */
async function collectedFile(pub: RtmpPublish, timeoutMs = 15_000): Promise<string> {
  await waitFor(`unpublish of ${pub.name}`, () => unpublished.has(pub.id), timeoutMs, 20);
  const file = join(dir, `${pub.name}-${pub.id}.flv`);
  writeFileSync(file, Buffer.concat(collected.get(pub.id) ?? []));
  collected.delete(pub.id);
  return file;
}

/** Audio and video packet counts (ffprobe -count_packets). */
async function packetCounts(file: string): Promise<string> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_type,nb_read_packets', '-of', 'csv=p=0', file]);
  return stdout.trim().split('\n').sort().join(' ');
}

async function assertPlays(file: string, expect: { video: boolean; audio: boolean; seconds?: number }): Promise<void> {
  const r = await probe(file);
  const types = r.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
  const want = [...(expect.audio ? ['audio:aac'] : []), ...(expect.video ? ['video:h264'] : [])];
  assert.deepEqual(types, want, `streams of ${file}`);
  if (expect.seconds !== undefined) {
    const d = Number(r.format.duration);
    assert.ok(Math.abs(d - expect.seconds) <= 0.5, `duration ${d} s, clip ${expect.seconds} s`);
  }
}

test('ffmpeg -c copy and the manual transcoding publisher: publish, codecs, a complete FLV stream, unpublish', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  const clipSeconds = Number((await probe(clip)).format.duration);
  ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_ffmpeg')]);
  ffmpeg(['-re', '-i', clip, '-preset', 'ultrafast', '-acodec', 'aac', '-vcodec', 'h264', '-f', 'flv', url('stream_transcode')]);
  const [copy, transcode] = await Promise.all([publishOf('stream_ffmpeg'), publishOf('stream_transcode')]);
  assert.equal(copy.app, 'live');
  assert.equal(copy.ip, '127.0.0.1');
  assert.equal(copy.login, '');
  assert.deepEqual({ ...copy.query }, {});
  assert.ok(Math.abs(copy.startedAt - Date.now()) < 10_000);
  for (const pub of [copy, transcode]) assert.deepEqual(codecsAtPublish.get(pub.id), { video: 'H264', audio: 'AAC' }, 'codecs known at publish');
  const copyFile = await collectedFile(copy);
  await assertPlays(copyFile, { video: true, audio: true, seconds: clipSeconds });
  assert.deepEqual(await packetCounts(copyFile), await packetCounts(clip), 'every audio and video packet arrived');
  await assertPlays(await collectedFile(transcode), { video: true, audio: true, seconds: clipSeconds });
});

test('audio-only and video-only publishers: the missing track is null', async () => {
  const audio = await makeClip({ video: null, audio: 'aac', seconds: 3 });
  const video = await makeClip({ video: 'h264', audio: null, seconds: 3 });
  ffmpeg(['-re', '-i', audio, '-c', 'copy', '-f', 'flv', url('stream_audio')]);
  ffmpeg(['-re', '-i', video, '-c', 'copy', '-f', 'flv', url('stream_video')]);
  const [a, v] = await Promise.all([publishOf('stream_audio'), publishOf('stream_video')]);
  assert.deepEqual(codecsAtPublish.get(a.id), { video: null, audio: 'AAC' });
  assert.deepEqual(codecsAtPublish.get(v.id), { video: 'H264', audio: null });
  await assertPlays(await collectedFile(a), { video: false, audio: true });
  await assertPlays(await collectedFile(v), { video: true, audio: false });
});

test('GStreamer rtmpsink publisher', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 3, container: 'flv' });
  const gst = start('gst-launch-1.0', [
    '-q',
    ...`filesrc location=${clip} ! flvdemux name=d flvmux name=m streamable=true ! rtmpsink location=${url('stream_gst')}`.split(' '),
    ...'d.video ! queue ! h264parse ! m.video d.audio ! queue ! aacparse ! m.audio'.split(' '),
  ]);
  procs.push(gst);
  const pub = await publishOf('stream_gst');
  assert.deepEqual(codecsAtPublish.get(pub.id), { video: 'H264', audio: 'AAC' });
  await gst.exited;
  await assertPlays(await collectedFile(pub), { video: true, audio: true });
});

test('publish token: missing and wrong are refused before any media, the right one publishes', async (t) => {
  token = 's3cret-Tok';
  t.after(() => {
    token = '';
  });
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 3 });
  const before = rejections.length;
  const none = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_tok')]);
  const wrong = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_tok', '?token=nope')]);
  const [e1, e2] = await Promise.all([none.exited, wrong.exited]);
  assert.notEqual(e1.code, 0, 'ffmpeg without a token fails');
  assert.notEqual(e2.code, 0, 'ffmpeg with a wrong token fails');
  assert.match(none.output(), /publish token missing/, 'the publisher is told why');
  const reasons = rejections.slice(before).map((r) => `${r.path} ${r.reason}`).sort();
  assert.deepEqual(reasons, ['/live/stream_tok publish token missing (add ?token=...)', '/live/stream_tok publish token wrong']);
  assert.ok(rejections.slice(before).every((r) => r.ip.startsWith('127.0.0.1:')));
  assert.equal(publishes.filter((p) => p.name === 'stream_tok').length, 0, 'no publish event for refused publishers');

  ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_tok', `?token=${token}&login=alice&record=false`)]);
  const pub = await publishOf('stream_tok');
  assert.equal(pub.login, 'alice');
  assert.deepEqual({ ...pub.query }, { login: 'alice', record: 'false' });
  await assertPlays(await collectedFile(pub), { video: true, audio: true });
  assert.ok(logText.includes('RTMP publisher refused'), 'refusals are logged');
  assert.ok(!logText.includes(token), 'the token never reaches the log');
});

test('a second publisher of a name that is publishing is refused; the first goes on', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_dup')]);
  const first = await publishOf('stream_dup');
  const before = rejections.length;
  const second = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_dup')]);
  const e = await second.exited;
  assert.notEqual(e.code, 0);
  assert.equal(rejections[before]?.reason, 'stream stream_dup is already publishing');
  assert.equal(publishes.filter((p) => p.name === 'stream_dup').length, 1);
  const tags = first.stats().tags;
  await waitFor('the first publisher to go on', () => first.stats().tags > tags + 10, 5000, 20);
  assert.ok(!unpublished.has(first.id));
  first.close();
  await waitFor('unpublish after close()', () => unpublished.has(first.id), 2000, 10);
});

test('ffmpeg killed with SIGKILL: unpublish within 2 s', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  const p = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_kill')]);
  const pub = await publishOf('stream_kill');
  await waitFor('media', () => pub.stats().tags > 20, 5000, 20);
  let ended = false;
  pub.onEnd(() => (ended = true));
  const killedAt = Date.now();
  await p.stop('SIGKILL');
  await waitFor('unpublish', () => unpublished.has(pub.id), 2000, 10);
  const took = (unpublished.get(pub.id) ?? 0) - killedAt;
  assert.ok(took <= 2000, `unpublish ${took} ms after SIGKILL`);
  assert.ok(ended, 'onEnd ran');
  collected.delete(pub.id);
});

test('pause() holds a faster-than-real-time publisher back without buffering; resume() delivers the rest', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  const clipSeconds = Number((await probe(clip)).format.duration);
  const chunks: Buffer[] = [];
  let pub: RtmpPublish | null = null;
  hooks.set('stream_fast', (p) => {
    pub = p;
    p.onData((c) => {
      chunks.push(c);
      if (chunks.length === 40) p.pause();
    });
  });
  // no -re: as fast as it can; 10 loops (~15 MB) are more than the socket buffers can hide
  const fast = ffmpeg(['-stream_loop', '9', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_fast')]);
  const p = await publishOf('stream_fast');
  await waitFor('the pause', () => p.stats().paused, 5000, 10);
  const bytes = p.stats().bytes;
  // observe a fixed window: nothing may arrive while paused
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(p.stats().bytes, bytes, 'no data while paused');
  assert.equal(fast.child.exitCode, null, 'the publisher is held back, not buffered for');
  const rss = process.memoryUsage().rss;
  p.resume();
  await waitFor('unpublish', () => unpublished.has(p.id), 15_000, 20);
  assert.equal(pub, p);
  const file = join(dir, 'fast.flv');
  writeFileSync(file, Buffer.concat(chunks));
  console.log(`# paused after ${bytes} of ${p.stats().bytes} bytes; rss while paused ${(rss / 1e6).toFixed(1)} MB`);
  await assertPlays(file, { video: true, audio: true, seconds: clipSeconds * 10 });
});

test('20 publish/kill cycles: fds and RSS stay flat', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  const fds = () => readdirSync('/proc/self/fd').length;
  const cycle = async () => {
    const p = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', url('stream_cycle')]);
    const pub = await publishOf('stream_cycle');
    await waitFor('media', () => pub.stats().tags > 5, 5000, 10);
    await p.stop('SIGKILL');
    procs.splice(procs.indexOf(p), 1);
    await waitFor('unpublish', () => unpublished.has(pub.id), 2000, 10);
    collected.delete(pub.id);
  };
  await cycle(); // warm-up
  const fd0 = fds();
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 20; i++) await cycle();
  await waitFor('sockets to close', () => fds() <= fd0 + 2, 3000, 50);
  const fd1 = fds();
  const rss1 = process.memoryUsage().rss;
  console.log(`# fds ${fd0} -> ${fd1}, rss ${(rss0 / 1e6).toFixed(1)} -> ${(rss1 / 1e6).toFixed(1)} MB`);
  assert.ok(fd1 <= fd0 + 2, `fds ${fd0} -> ${fd1}`);
  assert.ok(rss1 - rss0 < 40e6, `rss grew ${((rss1 - rss0) / 1e6).toFixed(1)} MB`);
  assert.equal(ingest.publishes().length, 0);
});

test('players are refused: this ingest only records', async () => {
  const before = rejections.length;
  const p = ffmpeg(['-rw_timeout', '3000000', '-i', url('stream_ffmpeg'), '-t', '1', '-f', 'null', '-']);
  const e = await p.exited;
  assert.notEqual(e.code, 0);
  assert.equal(rejections[before]?.reason, 'playing is not offered, only publishing');
});

test('hostile or silent peers: oversized messages, idle sockets and a frozen publisher are dropped; close() ends publishes', async (t) => {
  const quick = new RtmpIngest({ port: 0, bind: '127.0.0.1', publishToken: () => '', log, idleTimeoutMs: 600 });
  t.after(() => quick.close());
  const ends: string[] = [];
  quick.on('unpublish', (p) => ends.push(p.name));
  await quick.start();
  const { connect } = await import('node:net');
  const closedAfter = (send: Buffer | null) =>
    new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = connect(quick.port, '127.0.0.1', () => send && s.write(send));
      s.on('error', () => {});
      s.on('data', () => {});
      s.on('close', () => resolve(Date.now() - t0));
    });

  // handshake, then two messages announcing 16 MB each on two chunk streams: 32+ MB of parser buffers
  const chunk = (cid: number) => Buffer.concat([Buffer.from([cid, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]), Buffer.alloc(128)]);
  const hostile = Buffer.concat([Buffer.from([3]), Buffer.alloc(1536 * 2), chunk(4), chunk(5)]);
  const hostileMs = await closedAfter(hostile);
  assert.ok(hostileMs < 500, `oversized messages dropped after ${hostileMs} ms`);
  assert.ok(logText.includes('RTMP connection over a limit before publishing; dropping it'));

  const idleMs = await closedAfter(null);
  assert.ok(idleMs >= 500 && idleMs < 3000, `idle socket dropped after ${idleMs} ms`);

  const clip = await makeClip({ video: 'h264', audio: 'aac' });
  const frozen = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${quick.port}/live/stream_frozen`]);
  const other = ffmpeg(['-re', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${quick.port}/live/stream_other`]);
  await waitFor('both publishing', () => quick.publishes().length === 2, 10_000, 20);
  process.kill(frozen.pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(frozen.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  });
  await waitFor('the frozen publisher to be dropped', () => ends.includes('stream_frozen'), 3000, 20);
  assert.ok(!ends.includes('stream_other'));
  await quick.close();
  assert.deepEqual(ends, ['stream_frozen', 'stream_other'], 'close() ends the remaining publish');
  await other.exited;
});

test('a busy port: start() rejects naming the port, the process lives on', async () => {
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  try {
    const other = new RtmpIngest({ port, bind: '127.0.0.1', publishToken: () => '', log });
    await assert.rejects(other.start(), (err: Error) => err.message.includes(String(port)) && err.message.includes('already in use'));
    await other.close();
    await other.close();
    assert.ok(process.uptime() > 0);
  } finally {
    blocker.close();
  }
});
