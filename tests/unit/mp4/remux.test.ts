import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { describeRemux } from '../../../src/pipeline/launch';
import { runGstLaunch } from '../../../src/pipeline/gst-launch';
import { HostPool, type PipelineExit } from '../../../src/pipeline/host-pool';
import type { Codecs } from '../../../src/pipeline/types';
import { readFmp4 } from '../../../src/mp4/scan';
import { remuxFmp4 } from '../../../src/mp4/remux';
import { decodeErrors, makeClip, mp4TopBoxes, probe } from '../../helpers/media';

const run = promisify(execFile);
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgerec-remux-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const SRC_320 = ['videotestsrc', 'num-buffers=75', '!', 'video/x-raw,width=320,height=180,framerate=25/1'];
const AAC = ['audiotestsrc', 'num-buffers=130', '!', 'avenc_aac', '!', 'aacparse', '!', 'mux.audio_0'];

/** A fragmented MP4 as the recorder's mp4mux writes it, from gst-launch pieces feeding `mux`. */
async function gstFragmented(name: string, pieces: string[]): Promise<string> {
  const path = join(dir, name);
  await run('gst-launch-1.0', ['-q', ...pieces, 'mp4mux', 'name=mux', 'fragment-duration=1000', '!', 'filesink', `location=${path}`], { timeout: 60_000 });
  return path;
}

interface Packet { pts: number; dts: number; dur: number; size: string; flags: string; hash: string }

/** Packets per stream index, with times in seconds and a CRC of the payload. */
async function packets(path: string): Promise<Map<number, Packet[]>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,pts_time,dts_time,duration_time,size,flags,data_hash', '-show_data_hash', 'crc32', '-of', 'json', path], { maxBuffer: 64 * 1024 * 1024 });
  const out = new Map<number, Packet[]>();
  for (const p of (JSON.parse(stdout) as { packets: Record<string, string | number>[] }).packets) {
    const list = out.get(Number(p.stream_index)) ?? [];
    list.push({ pts: Number(p.pts_time), dts: Number(p.dts_time), dur: Number(p.duration_time), size: String(p.size), flags: String(p.flags), hash: String(p.data_hash) });
    out.set(Number(p.stream_index), list);
  }
  return out;
}

/** Our remux of `src` against the gst-launch remux: streams, durations and every packet (time, size, flags, bytes). */
async function assertLikeGst(src: string, codecs: Codecs, moovFirst = false): Promise<void> {
  const gst = `${src}.gst.mp4`;
  const ours = `${src}.ours.mp4`;
  const desc = describeRemux(src, gst, 'mp4', codecs, { moovFirst: false });
  assert.ok(desc);
  await runGstLaunch(desc, 60_000);
  const r = await remuxFmp4(src, ours, { moovFirst });
  assert.deepEqual((await mp4TopBoxes(ours)).filter((b) => b !== 'free'), moovFirst ? ['ftyp', 'moov', 'mdat'] : ['ftyp', 'mdat', 'moov']);
  assert.equal(await decodeErrors(ours), '');
  const [pg, po] = [await probe(gst), await probe(ours)];
  const [kg, ko] = [await packets(gst), await packets(ours)];
  assert.deepEqual(po.streams.map((s) => s.codec_name), pg.streams.map((s) => s.codec_name));
  assert.equal(r.samples, [...ko.values()].reduce((n, l) => n + l.length, 0));
  pg.streams.forEach((g, i) => {
    const [a, b] = [kg.get(i) ?? [], ko.get(i) ?? []];
    assert.equal(b.length, a.length, `stream ${i} packet count`);
    const frame = Math.max(...a.map((p) => p.dur));
    assert.ok(Math.abs(Number(po.streams[i]?.duration) - Number(g.duration)) <= frame, `stream ${i} duration ${po.streams[i]?.duration} vs ${g.duration}`);
    assert.ok(Math.abs(Number(po.streams[i]?.start_time) - Number(g.start_time)) <= frame, `stream ${i} start ${po.streams[i]?.start_time} vs ${g.start_time}`);
    a.forEach((p, j) => {
      const q = b[j];
      const same = q && p.size === q.size && p.flags === q.flags && p.hash === q.hash && [p.pts - q.pts, p.dts - q.dts, p.dur - q.dur].every((d) => Math.abs(d) < 1e-4);
      assert.ok(same, `stream ${i} packet ${j}: gst ${JSON.stringify(p)} ours ${JSON.stringify(q)}`);
    });
  });
  assert.ok(Math.abs(Number(po.format.duration) - Number(pg.format.duration)) < 0.05, `duration ${po.format.duration} vs ${pg.format.duration}`);
  assert.ok(Math.abs(r.durationMs / 1000 - Number(pg.format.duration)) < 0.05);
}

test('H.264 (B-frames) + AAC from mp4mux fragment-duration=1000, moov last and moov first', async () => {
  const src = await gstFragmented('av.mp4', [...SRC_320, '!', 'x264enc', 'key-int-max=25', 'bframes=2', '!', 'h264parse', '!', 'mux.video_0', ...AAC]);
  await assertLikeGst(src, { video: 'H264', audio: 'AAC' }, false);
  await assertLikeGst(src, { video: 'H264', audio: 'AAC' }, true);
});

test('a later splitmuxsink fragment (audio decode time starts off zero)', async (t) => {
  // Recorded once by a media host, the element the service records with (splitmuxsink, async-finalize). Its
  // pipeline EOS can get lost after the last file is closed (gst-launch-1.0 with the same element hung about 1 run
  // in 4): once every fragment is closed an EOS request ends the pipeline within a second (host-worker).
  const pool = new HostPool({ size: 1 });
  t.after(() => pool.close());
  await pool.start();
  const launch = [
    'videotestsrc num-buffers=100 ! video/x-raw,width=320,height=180,framerate=25/1 ! x264enc key-int-max=25 bframes=2 ! h264parse ! sm.video',
    'audiotestsrc num-buffers=180 ! avenc_aac ! aacparse ! sm.audio_0',
    `splitmuxsink name=sm async-finalize=true max-size-time=2000000000 muxer-factory=mp4mux muxer-properties="properties,fragment-duration=(uint)1000" location=${join(dir, 'seg-%02d.mp4')}`,
  ].join(' ');
  const h = pool.run('later-fragment', launch);
  const opened: string[] = [];
  const closed: string[] = [];
  h.on('fragment-opened', (f) => opened.push(f.location));
  h.on('fragment-closed', (f) => closed.push(f.location));
  let ended: PipelineExit | null = null;
  const exit = new Promise<PipelineExit>((r) => h.once('exit', r)).then((x) => (ended = x));
  const allClosed = () => opened.length >= 2 && opened.every((l) => closed.includes(l));
  for (let i = 0; i < 300 && !ended && !allClosed(); i++) await new Promise((r) => setTimeout(r, 100));
  h.eos();
  assert.deepEqual(await exit, { reason: 'eos' });
  assert.deepEqual([...closed].sort(), [join(dir, 'seg-00.mp4'), join(dir, 'seg-01.mp4')]);
  await assertLikeGst(join(dir, 'seg-01.mp4'), { video: 'H264', audio: 'AAC' });
});

test('ffmpeg-made fMP4 (base-data-offset in tfhd, two trafs a moof, B-frames) + AAC', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25, bframes: true });
  const src = join(dir, 'ff.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', src]);
  await assertLikeGst(src, { video: 'H264', audio: 'AAC' }, true);
});

test('H.265 only', async () => {
  const src = await gstFragmented('h265.mp4', [...SRC_320, '!', 'x265enc', 'key-int-max=25', 'speed-preset=ultrafast', 'option-string=bframes=0', '!', 'h265parse', '!', 'mux.video_0']);
  await assertLikeGst(src, { video: 'H265', audio: null });
});

test('H.265 with B-frames: every packet as in the fragmented source, moved to start at 0 (the gst remux loses one here)', async () => {
  const src = await gstFragmented('h265b.mp4', [...SRC_320, '!', 'x265enc', 'key-int-max=25', 'speed-preset=ultrafast', '!', 'h265parse', '!', 'mux.video_0']);
  const ours = `${src}.ours.mp4`;
  await remuxFmp4(src, ours, { moovFirst: false });
  assert.equal(await decodeErrors(ours), '');
  const [a, b] = [(await packets(src)).get(0) ?? [], (await packets(ours)).get(0) ?? []];
  const start = Number((await probe(src)).streams[0]?.start_time);
  assert.ok(start > 0, `B-frames delay the source's first picture: ${start}`);
  assert.equal(Number((await probe(ours)).streams[0]?.start_time), 0);
  assert.equal(b.length, 75);
  const ms = (s: number) => Math.round(s * 1000);
  assert.deepEqual(b.map((p) => [ms(p.pts), ms(p.dts), p.size, p.hash]), a.map((p) => [ms(p.pts - start), ms(p.dts - start), p.size, p.hash]));
});

test('H.264 + Opus (ffmpeg fMP4; the gst remux takes AAC only): every packet as in the source', async () => {
  const src = join(dir, 'opus.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '3',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'libopus', '-movflags', 'frag_keyframe+empty_moov', src]);
  const ours = `${src}.ours.mp4`;
  await remuxFmp4(src, ours, { moovFirst: true });
  assert.equal(await decodeErrors(ours), '');
  assert.deepEqual((await probe(ours)).streams.map((s) => s.codec_name), ['h264', 'opus']);
  const [a, b] = [await packets(src), await packets(ours)];
  for (const i of [0, 1]) {
    const key = (p: Packet) => [Math.round(p.pts * 1e4), Math.round(p.dts * 1e4), p.size, p.flags, p.hash];
    assert.deepEqual((b.get(i) ?? []).map(key), (a.get(i) ?? []).map(key), `stream ${i}`);
  }
});

/** `path` up to the end of its first mdat, written to `dst`. */
function cutAfterFirstMdat(path: string, dst: string): void {
  const whole = readFileSync(path);
  let end = 0;
  for (let off = 0, i = 0; off + 8 <= whole.length && i < 100 && end === 0; i++) {
    const len = whole.readUInt32BE(off);
    if (whole.toString('latin1', off + 4, off + 8) === 'mdat') end = off + len;
    off += len;
  }
  writeFileSync(dst, whole.subarray(0, end));
}

test('cut after a video-only, then an audio-only first fragment: only the track it holds is kept', async () => {
  // audio stamped 1.5 s late: mp4mux writes video fragments first
  const late = await gstFragmented('vfirst.mp4', [...SRC_320, '!', 'x264enc', 'key-int-max=25', '!', 'h264parse', '!', 'mux.video_0',
    'audiotestsrc', 'num-buffers=130', 'timestamp-offset=1500000000', '!', 'avenc_aac', '!', 'aacparse', '!', 'mux.audio_0']);
  const early = await gstFragmented('afirst.mp4', [...SRC_320, '!', 'x264enc', 'key-int-max=25', '!', 'h264parse', '!', 'mux.video_0', ...AAC]);
  for (const [whole, video] of [[late, true], [early, false]] as const) {
    const src = `${whole}.cut.mp4`;
    cutAfterFirstMdat(whole, src);
    const f = await readFmp4(src);
    assert.deepEqual([f.video, f.audio], [video, !video]);
    await assertLikeGst(src, { video: video ? 'H264' : null, audio: video ? null : 'AAC' });
    assert.deepEqual((await probe(`${src}.ours.mp4`)).streams.map((s) => s.codec_type), [video ? 'video' : 'audio']);
  }
  await assertLikeGst(late, { video: 'H264', audio: 'AAC' });
});

test('broken inputs throw a named error and leave no output', async () => {
  const whole = readFileSync(await gstFragmented('bad-src.mp4', [...SRC_320, '!', 'x264enc', 'key-int-max=25', '!', 'h264parse', '!', 'mux.video_0']));
  const trun = whole.indexOf('trun', 0, 'latin1');
  assert.ok(trun > 0);
  const cases: [string, Buffer, RegExp][] = [
    ['cut inside an mdat', whole.subarray(0, whole.length - 100), /runs past the end of the file/],
    ['trun sample count too large', Buffer.concat([whole.subarray(0, trun + 8), Buffer.from([0, 0x10, 0, 0]), whole.subarray(trun + 12)]), /samples do not fit.*trun/],
    ['not an MP4', Buffer.from('hello world, not an mp4 at all'), /overruns|past the end|stray|no ftyp|unexpected/],
  ];
  for (const [what, bytes, re] of cases) {
    const src = join(dir, 'bad.mp4');
    const dst = join(dir, 'bad-out.mp4');
    writeFileSync(src, bytes);
    await assert.rejects(remuxFmp4(src, dst, { moovFirst: true }), re, what);
    assert.equal(existsSync(dst), false, what);
  }
});
