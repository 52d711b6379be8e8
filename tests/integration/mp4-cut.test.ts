import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createCutter, type CutFile } from '../../src/api/cutter';
import { parseConf } from '../../src/conf/parse';
import { CutCache } from '../../src/store/cut-cache';
import { CutsStore } from '../../src/store/cuts';
import { openDb } from '../../src/store/db';
import { bytesRead, resetBytesRead } from '../../src/mp4/reader';
import { cutMp4 } from '../../src/mp4/cut';
import { AppError } from '../../src/lib/errors';
import { remuxFmp4 } from '../../src/mp4/remux';
import { cachedFile, decodeErrors, makeClip, mp4TopBoxes, probe } from '../helpers/media';

const run = promisify(execFile);
const GOP_S = 2;

/** Remux with GStreamer's mp4mux, as our recorder writes (moov first with faststart, else last). */
async function gstRemux(src: string, audio: boolean, faststart: boolean): Promise<string> {
  const name = basename(src).replace(/\.mp4$/, `-gst${faststart ? '-fs' : ''}.mp4`);
  const desc = (tmp: string) => `filesrc location=${src} ! qtdemux name=d d.video_0 ! queue ! h264parse ! mp4mux name=m faststart=${faststart} ! filesink location=${tmp}` + (audio ? ' d.audio_0 ! queue ! aacparse ! m.' : '');
  return cachedFile(name, ['gst-launch-1.0', desc('OUT')], (tmp) => run('gst-launch-1.0', ['-q', ...desc(tmp).split(' ')], { timeout: 60_000 }));
}

async function videoPackets(path: string): Promise<Array<{ pts: number; dts: number; key: boolean }>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_packets', '-show_entries', 'packet=pts,dts,flags', '-of', 'csv=p=0', path], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim().split('\n').map((l) => {
    const [pts = '', dts = '', flags = ''] = l.split(',');
    return { pts: Number(pts), dts: Number(dts), key: flags.startsWith('K') };
  });
}

async function firstFrameIsKey(path: string): Promise<boolean> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_frames', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', path]);
  return stdout.trim().split(/[\n,]/)[0] === '1';
}

/** Where the top-level moov box of an MP4 sits. */
function findMoov(b: Buffer): { start: number; end: number } {
  for (let off = 0; off + 8 <= b.length; ) {
    const size = b.readUInt32BE(off);
    if (b.toString('latin1', off + 4, off + 8) === 'moov') return { start: off, end: off + size };
    if (size < 8) break;
    off += size;
  }
  throw new Error('no moov');
}

/** Checks every cut must pass; returns the video and audio durations. */
async function checkPlayable(path: string, hasAudio: boolean): Promise<{ video: number; audio: number | null }> {
  const p = await probe(path);
  assert.equal(await decodeErrors(path), '', `decode errors in ${path}`);
  const boxes = await mp4TopBoxes(path);
  assert.ok(boxes.indexOf('moov') >= 0 && boxes.indexOf('moov') < boxes.indexOf('mdat'), `moov before mdat: ${boxes.join(',')}`);
  assert.equal(await firstFrameIsKey(path), true, 'first video frame is a keyframe');
  const v = p.streams.find((s) => s.codec_type === 'video');
  const a = p.streams.find((s) => s.codec_type === 'audio');
  assert.ok(v, 'video stream');
  assert.equal(a !== undefined, hasAudio, 'audio stream presence');
  const video = Number(v.duration);
  const audio = a ? Number(a.duration) : null;
  if (audio !== null) assert.ok(Math.abs(audio - video) <= 0.1, `audio ${audio} s vs video ${video} s`);
  return { video, audio };
}

describe('cutMp4 on real files', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-cut-'));
  let ff = '';
  let gstFs = '';
  let bGst = '';
  let videoOnly = '';
  let ours = '';
  before(async () => {
    ff = await makeClip({ video: 'h264', audio: 'aac', seconds: 120, size: '320x180' });
    gstFs = await gstRemux(ff, true, true);
    const b = await makeClip({ video: 'h264', audio: 'aac', seconds: 120, size: '320x180', bframes: true });
    bGst = await gstRemux(b, true, false); // moov last
    videoOnly = await gstRemux(await makeClip({ video: 'h264', audio: null, seconds: 120, size: '320x180' }), false, true);
    // what the finalizer writes now: the recorder's fragmented MP4 (mp4mux fragment-duration=1000) through remuxFmp4
    const frag = join(dir, 'b-frag.mp4');
    await run('gst-launch-1.0', ['-q', 'filesrc', `location=${b}`, '!', 'qtdemux', 'name=d', 'd.video_0', '!', 'queue', '!', 'h264parse', '!', 'm.video_0',
      'd.audio_0', '!', 'queue', '!', 'aacparse', '!', 'm.audio_0', 'mp4mux', 'name=m', 'fragment-duration=1000', '!', 'filesink', `location=${frag}`], { timeout: 60_000 });
    ours = join(dir, 'b-ours.mp4');
    await remuxFmp4(frag, ours, { moovFirst: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['ffmpeg', 'gst-faststart', 'gst-bframes-moov-last', 'built-in-remux-bframes'] as const) {
    it(`start=30&end=60 of a ${kind} file plays, starts on a keyframe, lasts 30-32 s`, async () => {
      const src = { ffmpeg: ff, 'gst-faststart': gstFs, 'gst-bframes-moov-last': bGst, 'built-in-remux-bframes': ours }[kind];
      const out = join(dir, `${kind}-30-60.mp4`);
      const r = await cutMp4(src, out, 30, 60);
      assert.ok(r.startS <= 30 && r.startS > 30 - GOP_S, `cut starts at ${r.startS}`);
      const d = await checkPlayable(out, true);
      assert.ok(d.video >= 30 - 0.1 && d.video <= 30 + GOP_S, `video ${d.video} s`);
      assert.ok(Math.abs(d.video - (60 - r.startS)) < 0.1, `duration ${d.video} matches start ${r.startS}`);
      assert.equal(r.bytes, statSync(out).size);
      assert.ok(!existsSync(`${out}.part`));
    });
  }

  it('a B-frame cut from mid-GOP keeps timestamps monotonic and unique', async () => {
    const out = join(dir, 'b-31-61.5.mp4');
    const r = await cutMp4(bGst, out, 31, 61.5);
    assert.equal(r.startS, 30);
    const d = await checkPlayable(out, true);
    assert.ok(Math.abs(d.video - 31.5) < 0.05, `video ${d.video}`);
    const pk = await videoPackets(out);
    assert.ok(pk.some((p) => p.pts !== p.dts), 'the clip really has B-frames');
    for (let i = 1; i < pk.length; i++) assert.ok((pk[i]?.dts ?? 0) > (pk[i - 1]?.dts ?? 0), `dts increases at packet ${i}`);
    assert.equal(new Set(pk.map((p) => p.pts)).size, pk.length, 'no duplicate pts');
    assert.ok(pk.every((p) => p.pts >= 0), 'no negative pts');
  });

  it('start only, end only, start 0, end past the end', async () => {
    const cases: Array<[number | null, number | null, number, number]> = [
      [30, null, 90, 90 + GOP_S],
      [null, 60, 60, 60],
      [0, 10, 10, 10],
      [100, 500, 20, 20],
    ];
    for (const [s, e, lo, hi] of cases) {
      const out = join(dir, `ff-${s}-${e}.mp4`);
      await cutMp4(ff, out, s, e);
      const d = await checkPlayable(out, true);
      assert.ok(d.video >= lo - 0.1 && d.video <= hi + 0.1, `start ${s} end ${e}: video ${d.video} s`);
    }
  });

  it('video-only file', async () => {
    const out = join(dir, 'vo.mp4');
    await cutMp4(videoOnly, out, 45, 75);
    const d = await checkPlayable(out, false);
    assert.ok(d.video >= 29.9 && d.video <= 30 + GOP_S, `video ${d.video}`);
  });

  it('audio-only file: cut to the sample, trimmed by the edit list', async () => {
    const src = await makeClip({ video: null, audio: 'aac', seconds: 120 });
    const out = join(dir, 'ao.mp4');
    const r = await cutMp4(src, out, 30.5, 60);
    assert.equal(r.startS, 30.5);
    const p = await probe(out);
    assert.equal(await decodeErrors(out), '');
    assert.deepEqual(p.streams.map((s) => s.codec_type), ['audio']);
    assert.ok(Math.abs(Number(p.streams[0]?.duration) - 29.5) < 0.05, `audio ${p.streams[0]?.duration}`);
  });

  it('start past the end is a BAD_REQUEST naming the duration', async () => {
    await assert.rejects(cutMp4(ff, join(dir, 'x.mp4'), 200, null), (e: unknown) => e instanceof AppError && e.code === 'BAD_REQUEST' && /duration 120/.test(e.message));
    assert.ok(!existsSync(join(dir, 'x.mp4')));
  });

  it('fragmented and unparseable inputs are refused with a reason', async () => {
    const fragArgs = ['-v', 'error', '-y', '-i', ff, '-t', '10', '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov'];
    const frag = await cachedFile('clip-cut-fragmented.mp4', ['ffmpeg', ...fragArgs], (tmp) => run('ffmpeg', [...fragArgs, tmp]));
    const is422 = (re: RegExp) => (e: unknown) => e instanceof AppError && e.code === 'BAD_MEDIA' && e.status === 422 && re.test(e.message) && !e.message.includes(dir);
    await assert.rejects(cutMp4(frag, join(dir, 'f.mp4'), 1, 2), is422(/fragmented MP4 \(moof\); only a plain MP4 can be cut/));
    const junk = join(dir, 'junk.mp4');
    writeFileSync(junk, Buffer.from('this is not an mp4 file at all, just some text'));
    await assert.rejects(cutMp4(junk, join(dir, 'j.mp4'), 1, 2), is422(/damaged or unsupported MP4 \[reason: /));
  });

  it('truncated and damaged files: 422 naming what is wrong, or a playable cut; never another error', async () => {
    const whole = readFileSync(gstFs); // moov first: a truncation cuts into the media data
    const moov = findMoov(whole);
    const cases: Array<[string, Buffer]> = [
      ['cut in the middle of mdat', whole.subarray(0, Math.floor(whole.length / 2))],
      ['cut just after moov', whole.subarray(0, moov.end + 100)],
      ['cut inside moov', whole.subarray(0, moov.start + Math.floor((moov.end - moov.start) / 2))],
      ['cut after 12 bytes', whole.subarray(0, 12)],
    ];
    // damaged: bytes overwritten inside the moov (sample tables, headers) at 40 places, then 100 random words
    for (let i = 0; i < 40; i++) {
      const b = Buffer.from(whole);
      const at = moov.start + 8 + Math.floor(((moov.end - moov.start - 16) * (i * 37 % 40)) / 40);
      b.fill(i % 2 ? 0xff : 0x00, at, at + 4);
      cases.push([`moov damaged at ${at}`, b]);
    }
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 100; i++) {
      const b = Buffer.from(whole);
      for (let k = 0; k <= i % 3; k++) b.writeUInt32BE(Math.floor(rnd() * 2 ** 32), moov.start + 8 + Math.floor(rnd() * (moov.end - moov.start - 12)));
      cases.push([`moov with random words, case ${i}`, b]);
    }
    let refused = 0;
    for (const [what, bytes] of cases) {
      const src = join(dir, 'damaged.mp4');
      writeFileSync(src, bytes);
      const out = join(dir, 'damaged-cut.mp4');
      rmSync(out, { force: true });
      try {
        await cutMp4(src, out, 30, 60);
      } catch (e) {
        assert.ok(e instanceof AppError && e.status >= 400 && e.status < 500, `${what}: ${String(e)}`);
        assert.ok(!e.message.includes(dir), `${what}: no path in ${e.message}`);
        if (what.startsWith('cut ')) assert.equal(e.code, 'BAD_MEDIA', `${what}: ${e.message}`);
        refused++;
        assert.ok(!existsSync(out), `${what}: no cut left behind`);
      }
    }
    assert.ok(refused >= 30, `${refused} refused`);
    const truncated = join(dir, 'truncated.mp4');
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    await assert.rejects(cutMp4(truncated, join(dir, 't.mp4'), 80, 90), (e: unknown) => e instanceof AppError && e.code === 'BAD_MEDIA' && /truncated: /.test(e.message));
  });

  it('a 30 s cut of a 120 s file reads less than 40 % of it', async () => {
    for (const src of [gstFs, bGst]) {
      resetBytesRead();
      rmSync(join(dir, 'count.mp4'), { force: true }); // cutMp4 never writes over an existing file
      await cutMp4(src, join(dir, 'count.mp4'), 30, 60);
      const ratio = bytesRead() / statSync(src).size;
      assert.ok(ratio < 0.4 && ratio > 0.2, `read ${(ratio * 100).toFixed(1)} % of ${src}`);
    }
  });

  it('createCutter builds once for concurrent requests and reuses the file', async () => {
    let builds = 0;
    const cutDir = join(dir, 'cuts');
    mkdirSync(cutDir, { recursive: true });
    const conf = parseConf(`record_dir=${dir}\nmp4_cutter_dir=${cutDir}\n`, { installDir: dir }).conf;
    const db = openDb(':memory:');
    const cutter = createCutter({ cache: new CutCache(() => conf, new CutsStore(db)), cut: async (...a) => { builds++; return cutMp4(...a); } });
    const served = async (p: Promise<CutFile>) => {
      const c = await p;
      await c.fh.close();
      return c.path;
    };
    const [p1, p2] = await Promise.all([served(cutter(gstFs, 30, 60)), served(cutter(gstFs, 30, 60))]);
    assert.equal(p1, p2);
    assert.equal(builds, 1);
    assert.equal(p1, join(cutDir, 'clip-h264-aac-120s-320x180-25-50-gst-fs-s30-e60.mp4'));
    const m1 = statSync(p1).mtimeMs;
    assert.equal(await served(cutter(gstFs, 30, 60)), p1);
    assert.equal(await served(cutter(gstFs, 30.04, 59.96)), p1, 'rounded to 0.1 s: the same cut');
    assert.equal(builds, 1, 'reused');
    assert.equal(statSync(p1).mtimeMs, m1);
    assert.equal(await served(cutter(gstFs, 30.5, null)), join(cutDir, 'clip-h264-aac-120s-320x180-25-50-gst-fs-s30.5.mp4'));
    assert.equal(builds, 2);
    await checkPlayable(join(cutDir, 'clip-h264-aac-120s-320x180-25-50-gst-fs-s30.5.mp4'), true);
    db.close();
  });
});
