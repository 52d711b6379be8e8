import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cutName } from '../../../src/api/cutter';
import { childBoxes, findBox, makeBox, makeFullBox } from '../../../src/mp4/boxes';
import { cutEdit, selectOverlap, selectVideo, type TrackTiming } from '../../../src/mp4/cut-range';
import { buildSampleTable, parseSampleTable, type SampleTable } from '../../../src/mp4/sample-table';

/** A synthetic track: n samples of `dur` units, optional composition offsets and sync marks, 100-byte samples back to back. */
function table(n: number, dur: number, opts: { cts?: (i: number) => number; sync?: (i: number) => boolean } = {}): SampleTable {
  const t: SampleTable = {
    count: n,
    dts: new Float64Array(n),
    dur: new Uint32Array(n).fill(dur),
    cts: new Int32Array(n),
    hasCtts: opts.cts !== undefined,
    size: new Uint32Array(n),
    offset: new Float64Array(n),
    sync: opts.sync ? new Uint8Array(n) : null,
    sdi: new Uint32Array(n).fill(1),
    stsd: makeFullBox('stsd', 0, 0, Buffer.from([0, 0, 0, 0])),
  };
  for (let i = 0; i < n; i++) {
    t.dts[i] = i * dur;
    t.cts[i] = opts.cts ? opts.cts(i) : 0;
    t.size[i] = 100 + (i % 7);
    t.offset[i] = i === 0 ? 1000 : (t.offset[i - 1] ?? 0) + (t.size[i - 1] ?? 0);
    if (t.sync && opts.sync) t.sync[i] = opts.sync(i) ? 1 : 0;
  }
  return t;
}

const video25: TrackTiming = { timescale: 1000, mediaTime: 0, emptyS: 0 };
// 120 s at 25 fps, keyframe every 2 s
const plain = table(3000, 40, { sync: (i) => i % 50 === 0 });
// decode order per 2 s GOP: I, then (P B B) x 16, then one P; shown with a 2-frame delay hidden by the edit list
const bframes = table(3000, 40, {
  sync: (i) => i % 50 === 0,
  cts: (i) => {
    const j = i % 50;
    return j === 0 || j === 49 ? 80 : (j - 1) % 3 === 0 ? 160 : 40;
  },
});

describe('selectVideo', () => {
  it('starts at the keyframe at or before start and ends before end', () => {
    assert.deepEqual(selectVideo(plain, video25, 31, 61.5), { a: 750, b: 1538 });
    assert.deepEqual(selectVideo(plain, video25, 30, 60), { a: 750, b: 1500 });
    assert.deepEqual(selectVideo(plain, video25, 0, null), { a: 0, b: 3000 });
    assert.deepEqual(selectVideo(plain, video25, 119.99, 500), { a: 2950, b: 3000 });
  });
  it('counts presentation time through the edit list', () => {
    // media time 2000 (2 s) shown at 0: the keyframe at media 32 s is at 30 s
    const shifted: TrackTiming = { timescale: 1000, mediaTime: 2000, emptyS: 0 };
    assert.equal(selectVideo(plain, shifted, 30, 60).a, 800);
    const delayed: TrackTiming = { timescale: 1000, mediaTime: 0, emptyS: 4 };
    assert.equal(selectVideo(plain, delayed, 30, 60).a, 650);
  });
});

describe('selectOverlap and cutEdit', () => {
  const audio: TrackTiming = { timescale: 44100, mediaTime: 0, emptyS: 0 };
  const aac = table(6000, 1024);
  it('keeps the audio shown in the span, one sample of preroll, trimmed by the edit', () => {
    const r = selectOverlap(aac, audio, 30, 60, true);
    const containing = Math.floor((30 * 44100) / 1024);
    assert.equal(r.a, containing - 1);
    assert.equal(r.b, Math.ceil((60 * 44100) / 1024));
    const e = cutEdit(aac, audio, r, 30, 60);
    assert.ok(e);
    assert.equal(e.emptyS, 0);
    assert.equal(e.mediaTime, Math.round(30 * 44100 - (containing - 1) * 1024));
    assert.ok(Math.abs(e.segmentS - 30) < 1e-9, `segment ${e.segmentS}`);
  });
  it('puts an empty edit first when a track starts after the cut', () => {
    const late: TrackTiming = { timescale: 44100, mediaTime: 0, emptyS: 31 };
    const r = selectOverlap(aac, late, 30, 60, true);
    assert.equal(r.a, 0);
    const e = cutEdit(aac, late, r, 30, 60);
    assert.ok(e);
    assert.ok(Math.abs(e.emptyS - 1) < 1e-9);
    assert.equal(e.mediaTime, 0);
    assert.ok(Math.abs(e.segmentS - 29) < 1e-9);
  });
  it('hides the B-frame composition shift and the frames past the end', () => {
    const tm: TrackTiming = { timescale: 1000, mediaTime: 80, emptyS: 0 };
    const r = selectVideo(bframes, tm, 31, 40);
    assert.equal(r.a, 750);
    const e = cutEdit(bframes, tm, r, 30, 40);
    assert.ok(e);
    assert.equal(e.mediaTime, bframes.cts[750]);
    assert.ok(Math.abs(e.segmentS - 10) < 1e-9, `segment ${e.segmentS}`);
    assert.equal(cutEdit(bframes, tm, { a: 5, b: 5 }, 0, 1), null);
  });
});

describe('sample table', () => {
  it('builds a stbl that parses back to the same samples', () => {
    const a = 750;
    const b = 1500;
    const chunks = [
      { first: 750, count: 300, offset: 5000 },
      { first: 1050, count: 300, offset: 900_000 },
      { first: 1350, count: 150, offset: 5_000_000_000 },
    ];
    for (const co64 of [false, true]) {
      const stbl = buildSampleTable(bframes, a, b, co64 ? chunks : chunks.slice(0, 2).concat([{ first: 1350, count: 150, offset: 2_000_000 }]), co64);
      assert.ok(findBox(stbl, ['stbl', co64 ? 'co64' : 'stco']));
      const back = parseSampleTable(stbl.subarray(8));
      assert.equal(back.count, b - a);
      assert.deepEqual([...back.dts], [...bframes.dts.subarray(a, b)].map((d) => d - (bframes.dts[a] ?? 0)));
      assert.deepEqual([...back.cts], [...bframes.cts.subarray(a, b)]);
      assert.deepEqual([...back.size], [...bframes.size.subarray(a, b)]);
      assert.deepEqual([...(back.sync ?? [])], [...(bframes.sync ?? new Uint8Array(0)).subarray(a, b)]);
      assert.equal(back.offset[0], 5000);
      assert.equal(back.offset[300], 900_000);
      assert.equal(back.offset[1], 5000 + (bframes.size[a] ?? 0));
      assert.equal(back.offset[600], co64 ? 5_000_000_000 : 2_000_000);
    }
  });
  it('refuses a truncated table with a reason', () => {
    const stbl = buildSampleTable(plain, 0, 10, [{ first: 0, count: 10, offset: 0 }], false);
    const cut = Buffer.from(stbl.subarray(8));
    cut.writeUInt32BE(0, cut.length - 8); // stco now places no chunk
    assert.throws(() => parseSampleTable(cut), /damaged or unsupported MP4 \[reason: stsc\/stco place 0 of 10 samples\]/);
  });
});

describe('boxes and names', () => {
  it('walks box headers and rejects a box that overruns its parent', () => {
    const buf = Buffer.concat([makeBox('free', Buffer.alloc(4)), makeBox('moov', makeBox('mvhd', Buffer.alloc(2)))]);
    assert.deepEqual(childBoxes(buf).map((b) => [b.type, b.size]), [['free', 12], ['moov', 18]]);
    buf.writeUInt32BE(1000, 0);
    assert.throws(() => childBoxes(buf), /bad box header/);
  });
  it('names cuts <base>-s<S>-e<E>.mp4 without trailing zeros', () => {
    assert.equal(cutName('/rec/cam1.mp4', 30, 60), 'cam1-s30-e60.mp4');
    assert.equal(cutName('/rec/cam1.mp4', 30.5, null), 'cam1-s30.5.mp4');
    assert.equal(cutName('/rec/cam1.mp4', null, 1.25), 'cam1-e1.25.mp4');
    assert.equal(cutName('/rec/cam1.mp4', 0, 10.0), 'cam1-s0-e10.mp4');
  });
});
