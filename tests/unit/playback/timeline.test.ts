import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampleTable } from '../../../src/mp4/sample-table';
import { buildTimeline, type TimelineFile, type TimelineTrack } from '../../../src/playback/timeline';

/** A synthetic track: n samples of `dur` (timescale ts), a keyframe every `gop` (video), offsets from `base`. */
function track(handler: 'vide' | 'soun', ts: number, n: number, dur: number, o: { gop?: number; base?: number; emptyS?: number; lastDur?: number; entry?: string } = {}): TimelineTrack {
  const table: SampleTable = {
    count: n,
    dts: new Float64Array(n).map((_, i) => i * dur),
    dur: new Uint32Array(n).fill(dur),
    cts: new Int32Array(n),
    hasCtts: false,
    size: new Uint32Array(n).fill(100),
    offset: new Float64Array(n).map((_, i) => (o.base ?? 0) + i * 100),
    sync: o.gop ? new Uint8Array(n).map((_, i) => (i % (o.gop ?? 1) === 0 ? 1 : 0)) : null,
    sdi: new Uint32Array(n).fill(1),
    stsd: Buffer.alloc(0),
  };
  if (o.lastDur !== undefined) table.dur[n - 1] = o.lastDur;
  return { handler, trak: Buffer.from(handler), timing: { timescale: ts, mediaTime: 0, emptyS: o.emptyS ?? 0 }, table, entries: [Buffer.from(o.entry ?? `${handler}-entry`)] };
}

/** A 5 s file at startMs: 25 fps video (GOP 1 s, timescale 2500) + audio (1024 at 48000, 10 ms late). */
function file(startMs: number, session = 's1', o: { lastAudioDur?: number; entry?: string } = {}): TimelineFile {
  return {
    startMs,
    endMs: startMs + 5000,
    mediaSessionId: session,
    tracks: [track('vide', 2500, 125, 100, { gop: 25, entry: o.entry }), track('soun', 48000, 234, 1024, { base: 1_000_000, emptyS: 0.01, lastDur: o.lastAudioDur })],
  };
}

test('one session: from the keyframe at or before from, decode times run on across files, nothing lost or repeated', () => {
  const files = [file(100_000), file(105_000), file(110_000)];
  const tl = buildTimeline(files, 103_500, 112_000);
  assert.ok(tl);
  assert.equal(tl.t0Ms, 103_000, 'the keyframe at or before from (GOP 1 s)');
  const v = tl.tracks[0];
  assert.ok(v && v.handler === 'vide');
  assert.equal(v.dts[0], 0);
  assert.ok(v.sync[0], 'starts on a keyframe');
  // 2 s of file 1, 5 s of file 2, 2 s of file 3 (samples shown before 112 000)
  assert.equal(v.dts.length, 50 + 125 + 50);
  v.dts.forEach((d, i) => assert.equal(d, i * 100, `video sample ${i} continues`));
  assert.deepEqual([...new Set(v.file)], [0, 1, 2]);
  const a = tl.tracks[1];
  assert.ok(a && a.handler === 'soun');
  // the first audio sample still playing at the keyframe, placed at its wall time
  for (let i = 1; i < a.dts.length; i++) assert.equal(a.dts[i], (a.dts[i - 1] ?? 0) + (a.dur[i - 1] ?? 0), `audio ${i} continues`);
  assert.ok(Math.abs(tl.endMs - 112_000) <= 40, `ends near to (${tl.endMs})`);
  assert.deepEqual(tl.gaps, []);
  assert.equal(v.entries.length, 1, 'the same sample entry is not repeated');
});

test('a last sample left 0 long lasts like the one before it: the next file does not repeat its decode time', () => {
  const tl = buildTimeline([file(0, 's', { lastAudioDur: 0 }), file(5000, 's')], 0, 10_000);
  const a = tl?.tracks[1];
  assert.ok(a);
  for (let i = 1; i < a.dts.length; i++) assert.ok((a.dts[i] ?? 0) > (a.dts[i - 1] ?? 0), `audio dts increases at ${i}`);
  assert.equal(a.dur[233], 1024);
});

test('another session after a gap: the track resumes at its wall time, the frame before the gap is held, the gap is reported', () => {
  const files = [file(0, 'a'), file(8000, 'b', { entry: 'other-sps' })];
  const tl = buildTimeline(files, 1000, 12_000);
  assert.ok(tl);
  const v = tl.tracks[0];
  assert.ok(v);
  const firstB = v.file.indexOf(1);
  assert.equal(v.dts[firstB], 7000 * 2.5, 'session b starts 7 s after the keyframe at 1 s');
  assert.equal((v.dts[firstB - 1] ?? 0) + (v.dur[firstB - 1] ?? 0), v.dts[firstB], 'the last frame of a lasts until b starts');
  assert.deepEqual(tl.gaps, [{ fromMs: 5000, toMs: 8000 }]);
  assert.equal(v.entries.length, 2, 'both sample entries');
  assert.equal(v.sdi[0], 1);
  assert.equal(v.sdi[firstB], 2);
});

test('a file that is not a continuation starts at its first keyframe; files before from are skipped; nothing in range → null', () => {
  const late = file(20_000, 'x');
  late.tracks[0]?.table.sync?.fill(0, 0, 25); // the first second has no keyframe
  const tl = buildTimeline([file(0, 'a'), late], 4000, 30_000);
  const v = tl?.tracks[0];
  assert.ok(v);
  const firstLate = v.file.indexOf(1);
  assert.ok(v.sync[firstLate], 'starts on a keyframe');
  assert.equal(v.src[firstLate], 25 * 100, 'skips the frames before it');
  assert.equal(buildTimeline([], 0, 1000), null);
});

test('a later file with another timescale is converted to the first one', () => {
  const other: TimelineFile = { startMs: 5000, endMs: 10_000, mediaSessionId: 's', tracks: [track('vide', 90_000, 125, 3600, { gop: 25 })] };
  const first: TimelineFile = { startMs: 0, endMs: 5000, mediaSessionId: 's', tracks: [track('vide', 2500, 125, 100, { gop: 25 })] };
  const v = buildTimeline([first, other], 0, 10_000)?.tracks[0];
  assert.ok(v);
  assert.equal(v.timescale, 2500);
  v.dts.forEach((d, i) => assert.equal(d, i * 100));
});

test('the start keyframe is the latest at or before from over every file given, not the last of the first file', () => {
  const tl = buildTimeline([file(0, 's'), file(5000, 's')], 5500, 9000);
  assert.ok(tl);
  assert.equal(tl.t0Ms, 5000);
  assert.equal(tl.tracks[0]?.file[0], 1);
  // before every keyframe: the first one
  assert.equal(buildTimeline([file(1000, 's')], 0, 3000)?.t0Ms, 1000);
});

test('audio of files that are not one continuous stream (each a little longer than its place) does not drift from the video', () => {
  // every file holds 5.33 s of audio for 5 s of wall time: run on, it would end 1.3 s late after 5 files
  const files = [0, 1, 2, 3, 4].map((k) => ({
    startMs: k * 5000,
    endMs: (k + 1) * 5000,
    mediaSessionId: 's',
    tracks: [track('vide', 2500, 125, 100, { gop: 25 }), track('soun', 48000, 250, 1024)],
  }));
  const tl = buildTimeline(files, 0, 25_000);
  const a = tl?.tracks[1];
  assert.ok(tl && a);
  const last = a.dts.length - 1;
  const audioEndMs = (((a.dts[last] ?? 0) + (a.dur[last] ?? 0)) / 48000) * 1000;
  assert.ok(Math.abs(audioEndMs - 25_000) <= 550, `audio ends at ${audioEndMs} ms, not drifting past ${25_000 + 500}`);
  for (let i = 1; i < a.dts.length; i++) assert.ok((a.dts[i] ?? 0) >= (a.dts[i - 1] ?? 0) + (a.dur[i - 1] ?? 0) - 0, `audio ${i} does not overlap`);
});
