import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import {
  appendWriteAhead, buildFragment, findTail, gdpCrc, planAppend, readWal, walBranch, walFiles, walLocation, walPrefixOf, type WalRecord,
} from '../../../src/mp4/write-ahead';
import { readFragments, type FragFile } from '../../../src/mp4/fragments';
import { gstLaunchArgv } from '../../../src/pipeline/launch';

// A real fragmented MP4 as the recorder writes it (mp4mux fragment-duration=1000, GOP 4 s) and the write-ahead of
// the same samples as the recorder's pipeline writes it (tee → walBranch: gdppay ! multifilesink).

const run = promisify(execFile);
const PREFIX = 'rec-0123abcd-0000-4000-8000-00000000cafe-g1';
let dir = '';
let walDir = '';
let fmp4 = '';
let whole: Buffer;
/** top-level boxes of the whole file: [type, offset, length] */
const boxes: [string, number, number][] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerec-wal-'));
  walDir = join(dir, 'wal');
  mkdirSync(walDir);
  fmp4 = join(dir, 'av.mp4');
  const q = 'queue max-size-buffers=0 max-size-bytes=0 max-size-time=0';
  const launch = [
    'videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=180,framerate=25/1 ! x264enc key-int-max=100 bframes=2 ! h264parse ! video/x-h264,stream-format=avc,alignment=au',
    `! tee name=walv ! ${q} ! mux.video_0 walv. ! ${q} ! ${walBranch(walLocation(walDir, PREFIX, 'v'), 8, 'v')}`,
    'audiotestsrc num-buffers=260 wave=ticks ! avenc_aac ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw',
    `! tee name=wala ! ${q} ! mux.audio_0 wala. ! ${q} ! ${walBranch(walLocation(walDir, PREFIX, 'a'), 8, 'a')}`,
    `mp4mux name=mux fragment-duration=1000 ! filesink location=${fmp4}`,
  ].join(' ');
  await run('gst-launch-1.0', ['-q', ...gstLaunchArgv(launch)], { timeout: 60_000 });
  whole = readFileSync(fmp4);
  for (let off = 0; off + 8 <= whole.length && boxes.length < 1000; ) {
    const len = whole.readUInt32BE(off);
    boxes.push([whole.toString('latin1', off + 4, off + 8), off, len]);
    off += len;
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function frags(path: string): Promise<FragFile> {
  const fh = await open(path, 'r');
  try {
    return await readFragments(fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

/** Every sample's bytes of each track, in order. */
async function sampleBytes(path: string): Promise<Buffer[][]> {
  const f = await frags(path);
  const data = readFileSync(path);
  return f.tracks.map((t) => {
    const out: Buffer[] = [];
    let i = 0;
    for (const c of t.chunks) {
      let at = c.src;
      for (let k = 0; k < c.samples; k++, i++) {
        const n = t.size[i] ?? 0;
        out.push(data.subarray(at, at + n));
        at += n;
      }
    }
    return out;
  });
}

/** The file cut as a kill leaves it: the first `keep` fragments whole, then half of the next moof. */
function killedCopy(name: string, keep: number): string {
  const moofs = boxes.filter(([type]) => type === 'moof');
  const cutMoof = moofs[keep];
  assert.ok(cutMoof, `the file has more than ${keep} fragments`);
  const p = join(dir, name);
  writeFileSync(p, whole.subarray(0, cutMoof[1] + Math.floor(cutMoof[2] / 2)));
  return p;
}

test('the sidecar GDP files hold every sample the muxer got, with timestamps, keyframe flags and valid header CRCs', async () => {
  const files = await walFiles(walDir, PREFIX);
  assert.ok(files.v.length >= 6 && files.v.length <= 8, `1 s files, at most 8 kept (got ${files.v.length})`);
  const v = files.v.flatMap((p) => readWal(readFileSync(p)).records);
  const f = await frags(fmp4);
  const video = f.tracks.find((t) => t.size.length === 150);
  assert.ok(video, 'the file has 150 video samples');
  // the window holds the newest samples: the file's last ones, byte for byte
  const want = (await sampleBytes(fmp4))[f.tracks.indexOf(video)] ?? [];
  assert.ok(v.length >= 100, `6 s of video in the window (got ${v.length} samples)`);
  for (let i = 1; i <= v.length; i++) assert.ok(v[v.length - i]?.data.equals(want[want.length - i] ?? Buffer.alloc(0)), `sample -${i} equal`);
  assert.ok(v.every((r) => r.dts !== null && r.pts !== null && r.pts >= r.dts), 'PTS and DTS set, PTS ≥ DTS (B-frames)');
  assert.deepEqual(v.map((r) => r.sync), video.sync.slice(-v.length), 'keyframe flags as in the file');
  assert.ok(v.some((r) => r.sync) && v.some((r) => !r.sync));
  // the CRC is GDP's: a header's own CRC matches, and one changed byte breaks it
  const raw = readFileSync(files.v[files.v.length - 1] as string);
  assert.equal(gdpCrc(raw.subarray(0, 58)), raw.readUInt16BE(58));
  const bad = Buffer.from(raw);
  bad[12] = (bad[12] ?? 0) ^ 0x40;
  const r = readWal(bad);
  assert.equal(r.damaged, true);
  assert.equal(r.records.length, 0);
});

test('readWal stops at a packet cut by the kill, keeping the ones before it', () => {
  const files = readdirSync(walDir).filter((x) => x.includes('.wal-v-')).sort();
  const raw = readFileSync(join(walDir, files[files.length - 2] as string));
  const all = readWal(raw);
  assert.equal(all.cut, false);
  assert.equal(all.damaged, false);
  const cut = readWal(raw.subarray(0, raw.length - 10));
  assert.equal(cut.cut, true);
  assert.equal(cut.records.length, all.records.length - 1);
  // a damaged packet in the middle: the ones before it are kept, nothing after it is trusted
  let off = 0;
  for (let i = 0; i < 10; i++) off += 62 + raw.readUInt32BE(off + 6);
  const mid = Buffer.from(raw);
  mid.writeUInt32BE(0xfffffff0, off + 6);
  const d = readWal(mid);
  assert.equal(d.damaged, true);
  assert.ok(d.records.length < all.records.length && d.records.length >= 5, `records before the damage kept (${d.records.length})`);
});

const rec = (dtsMs: number, byte: number, sync = true, ptsMs = dtsMs): WalRecord => ({
  dts: BigInt(dtsMs * 1e6), pts: BigInt(ptsMs * 1e6), duration: 40_000_000n, sync, data: Buffer.from([byte, byte, byte]),
});

test('findTail: matches the file\'s last samples; among repeats, the one consistent with the video offset', () => {
  const records = [rec(0, 1), rec(40, 2), rec(80, 9), rec(120, 9), rec(160, 9), rec(200, 9), rec(240, 3)];
  const tail = (last: number[], lastMs: number) => ({ timescale: 1000, nextDts: lastMs + 40, last: last.map((b) => Buffer.from([b, b, b])), lastDtsNs: lastMs * 1e6 });
  assert.equal(findTail(records, tail([1, 2], 40), null), 1);
  assert.equal(findTail(records, tail([7], 40), null), -1, 'not in the sidecar');
  assert.equal(findTail(records, tail([2, 1], 40), null), -1, 'the sequence must match too');
  // silence: the same frame four times; the file's last one is at 120 ms of the file = 120 ms of the sidecar
  assert.equal(findTail(records, tail([9], 120), 0), 3);
  assert.equal(findTail(records, tail([9], 120), 80e6), 5);
  assert.equal(findTail(records, tail([9], 120), null), 5, 'no offset: the last');
});

test('planAppend: decode times continue the file\'s, durations from the next sample (the last: its own), composition offsets kept, a backward time ends it', () => {
  const records = [rec(1000, 1), rec(1040, 2, false, 1120), rec(1080, 3, false), rec(1121, 4, true, 1161), rec(1000, 5)];
  const s = planAppend(records, 0, { timescale: 90000, nextDts: 900_000, last: [], lastDtsNs: 0 });
  assert.deepEqual(s.map((x) => [x.dts, x.dur, x.cto, x.sync, x.data[0]]), [
    [900_000, 3600, 7200, false, 2],
    [903_600, 3690, 0, false, 3],
    [907_290, 3600, 3600, true, 4],
  ]);
  assert.deepEqual(planAppend(records, 3, { timescale: 90000, nextDts: 0, last: [], lastDtsNs: 0 }), [], 'nothing after the last');
});

test('buildFragment: a moof + mdat that the remux\'s fragment reader reads back exactly', async () => {
  const p = join(dir, 'built.mp4');
  // the whole file's init (ftyp + moov), then our fragment of two tracks
  const init = whole.subarray(0, (boxes.find(([t]) => t === 'moof') as [string, number, number])[1]);
  const ids = (await frags(fmp4)).tracks.map((t) => t.id);
  const a = [{ dts: 5000, dur: 512, cto: 1024, sync: true, data: Buffer.from('first sample') }, { dts: 5512, dur: 512, cto: -512, sync: false, data: Buffer.from('2nd') }];
  const b = [{ dts: 700, dur: 1024, cto: 0, sync: true, data: Buffer.from('audio!') }];
  writeFileSync(p, Buffer.concat([init, buildFragment(7, [{ id: ids[0] as number, samples: a }, { id: ids[1] as number, samples: b }])]));
  const f = await frags(p);
  const [ta, tb] = f.tracks;
  assert.deepEqual([ta?.firstDts, ta?.nextDts, ta?.dur, ta?.size, ta?.cts, ta?.sync], [5000, 6024, [512, 512], [12, 3], [1024, -512], [true, false]]);
  assert.deepEqual([tb?.firstDts, tb?.nextDts, tb?.size], [700, 1724, [6]]);
  const bytes = await sampleBytes(p);
  assert.deepEqual(bytes.map((t) => t.map((x) => x.toString())), [['first sample', '2nd'], ['audio!']]);
});

test('appendWriteAhead: a file killed 3 s in gets back every sample the muxer held, byte for byte, on the same timeline', async () => {
  const killed = killedCopy('killed.mp4', 3);
  assert.equal(await frags(killed).catch(() => null), null, 'the killed copy ends in a cut fragment');
  const r = await appendWriteAhead(killed, walDir, PREFIX);
  assert.deepEqual(r.notes, []);
  assert.ok(r.video > 50 && r.audio > 50, `appended ${r.video} video, ${r.audio} audio samples`);
  const got = await frags(killed);
  const want = await frags(fmp4);
  for (const [i, t] of want.tracks.entries()) {
    const g = got.tracks[i];
    assert.equal(g?.size.length, t.size.length, `track ${t.id}: every sample back`);
    assert.deepEqual(g?.sync, t.sync, `track ${t.id}: keyframes`);
    assert.deepEqual(g?.cts, t.cts, `track ${t.id}: composition offsets`);
    // decode times: the same as the muxer's (the very last sample's duration is a guess)
    assert.deepEqual(g?.dur.slice(0, -1), t.dur.slice(0, -1), `track ${t.id}: durations`);
  }
  const gb = await sampleBytes(killed);
  const wb = await sampleBytes(fmp4);
  assert.ok(gb.every((t, i) => t.length === wb[i]?.length && t.every((x, k) => x.equals(wb[i]?.[k] ?? Buffer.alloc(0)))), 'every sample byte for byte');
  // the muxer's complete fragments are untouched
  const keptEnd = (boxes.filter(([type]) => type === 'moof')[3] as [string, number, number])[1];
  assert.ok(readFileSync(killed).subarray(0, keptEnd).equals(whole.subarray(0, keptEnd)));
});

test('appendWriteAhead leaves the file as the muxer left it when the sidecar does not reach back to it, or is damaged', async () => {
  // only the last 1 s file of each track: the file's end (3 s) is not in it
  const short = join(dir, 'short');
  mkdirSync(short);
  const files = await walFiles(walDir, PREFIX);
  for (const p of [files.v[files.v.length - 1], files.a[files.a.length - 1]]) copyFileSync(p as string, join(short, (p as string).slice(walDir.length + 1)));
  const killed = killedCopy('killed-short.mp4', 3);
  const was = readFileSync(killed);
  const r = await appendWriteAhead(killed, short, PREFIX);
  assert.equal(r.video + r.audio, 0);
  assert.ok(r.notes.some((n) => n.includes('not in the sidecar')), r.notes.join('; '));
  assert.ok(readFileSync(killed).equals(was), 'unchanged, byte for byte');

  const junk = join(dir, 'junk');
  mkdirSync(junk);
  for (const p of [...files.v, ...files.a]) {
    const b = readFileSync(p);
    b.fill(0x5a, 0, Math.min(b.length, 200));
    writeFileSync(join(junk, p.slice(walDir.length + 1)), b);
  }
  const killed2 = killedCopy('killed-junk.mp4', 3);
  const r2 = await appendWriteAhead(killed2, junk, PREFIX);
  assert.equal(r2.video + r2.audio, 0);
  assert.ok(r2.notes.some((n) => n.includes('damaged')), r2.notes.join('; '));
  assert.ok(readFileSync(killed2).equals(was), 'unchanged, byte for byte');
  assert.equal(walPrefixOf(`${PREFIX}-00001.mp4`), PREFIX);
  assert.equal(walPrefixOf(`${PREFIX}-00001.webm`), null);
});
