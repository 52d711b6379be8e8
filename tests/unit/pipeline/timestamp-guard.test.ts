import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimestampGuard } from '../../../src/pipeline/timestamp-guard';
import { RtpTimestampGuard } from '../../../src/pipeline/rtp-timestamp-guard';
import { compositionTime, guardFlvTag } from '../../../src/ingest/rtmp/flv-guard';
import { flvTag } from '../../../src/ingest/rtmp/codecs';
import { FlvParser } from '../../../src/ingest/rtmp/flv';

/** Feed (dts, pts) pairs of one track at 40 ms wall steps; returns the output DTS/PTS. */
function run(g: TimestampGuard, track: string, units: [number, number][], wallStep = 40, wall0 = 0): { dts: number[]; pts: number[] } {
  const dts: number[] = [];
  const pts: number[] = [];
  units.forEach(([d, p], i) => {
    const o = g.place(track, d, p, wall0 + i * wallStep);
    dts.push(o.dtsMs);
    pts.push(o.ptsMs);
  });
  return { dts, pts };
}

const increasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > (xs[i - 1] as number));

test('clean timestamps pass untouched and count nothing', () => {
  const g = new TimestampGuard();
  const { dts, pts } = run(g, 'video', [[0, 80], [40, 200], [80, 120], [120, 160]]);
  assert.deepEqual(dts, [0, 40, 80, 120]);
  assert.deepEqual(pts, [80, 200, 120, 160]);
  assert.deepEqual(g.counts(), { nudged: 0, clipped: 0, rebased: 0, dropped: 0 });
});

test('equal and slightly backward DTS are nudged to strictly increasing, PTS moved along (PTS ≥ DTS)', () => {
  const g = new TimestampGuard();
  // the x264enc ! flvmux ! rtmp2sink case: pairs of equal timestamps, then one 30 ms back
  const { dts, pts } = run(g, 'video', [[0, 0], [40, 40], [40, 40], [80, 80], [80, 80], [50, 50], [160, 160]]);
  assert.ok(increasing(dts), `DTS ${dts}`);
  assert.deepEqual(dts, [0, 40, 60, 80, 100, 120, 160], 'half a frame step each: a 25 fps player still sees distinct frames');
  assert.ok(pts.every((p, i) => p >= (dts[i] as number)));
  assert.equal(g.counts().nudged, 3);
  assert.equal(g.counts().rebased, 0);
});

test('a nudged run falls back onto the input times: rtmp2sink\'s jittered AAC (23, 23, 23, 24, 50, 0, 19 ms, then 1024-sample frames)', () => {
  const g = new TimestampGuard();
  // what GStreamer's flvmux ! rtmp2sink sent (captured with ffmpeg -listen): one 50 ms step, then a repeat
  const input = [0, 23, 46, 69, 93, 143, 143, 162];
  for (let k = 1; k <= 340; k++) input.push(Math.round(162 + (k * 1024000) / 44100));
  const { dts } = run(g, 'audio', input.map((d) => [d, d] as [number, number]), 23);
  assert.ok(increasing(dts), 'strictly increasing');
  const firstBack = dts.findIndex((d, i) => i > 6 && d === input[i]);
  assert.ok(firstBack > 0 && firstBack <= 10, `back on the input times within a few frames (at unit ${firstBack}: ${dts.slice(5, 12)} for ${input.slice(5, 12)})`);
  assert.deepEqual(dts.slice(firstBack), input.slice(firstBack), 'and stays there: no track running ahead of what was sent');
  assert.equal(g.counts().rebased, 0);
  assert.ok(g.counts().nudged <= 3, `nudged ${g.counts().nudged} units`);
});

test('PTS before DTS is clipped to DTS', () => {
  const g = new TimestampGuard();
  const o = g.place('video', 100, 60, 0);
  assert.equal(o.ptsMs, o.dtsMs);
  assert.equal(o.repair, 'clipped');
});

test('a backward reset (RTMP timestamp reset) continues on the wall time, both tracks together', () => {
  const g = new TimestampGuard();
  // 12 s of video and audio, the publisher's clock jumps from 6 s back to 0 and goes on: 12 s of wall time
  const out: { v: number[]; a: number[] } = { v: [], a: [] };
  for (let i = 0; i < 300; i++) {
    const wall = i * 40;
    const ts = i < 150 ? wall : wall - 6000 - 27_000; // far back
    out.v.push(g.place('video', ts, ts, wall).dtsMs);
    out.a.push(g.place('audio', ts + 5, ts + 5, wall + 5).dtsMs);
  }
  assert.ok(increasing(out.v) && increasing(out.a));
  const span = (xs: number[]) => (xs[xs.length - 1] as number) - (xs[0] as number);
  assert.ok(Math.abs(span(out.v) - 299 * 40) <= 40, `video spans ${span(out.v)} ms for ${299 * 40} ms of wall time`);
  assert.ok(Math.abs(span(out.a) - 299 * 40) <= 40, `audio spans ${span(out.a)} ms`);
  // still in sync after the reset (within a frame)
  assert.ok(Math.abs((out.a[299] as number) - (out.v[299] as number) - 5) <= 40, `A/V offset ${(out.a[299] as number) - (out.v[299] as number)}`);
  assert.equal(g.counts().rebased, 2, 'each track rebased once, on its own wall time');
});

test('a jump in one track alone moves that track only (no ping-pong between tracks)', () => {
  const g = new TimestampGuard();
  const v: number[] = [];
  const a: number[] = [];
  for (let i = 0; i < 100; i++) {
    const wall = i * 40;
    v.push(g.place('video', i < 50 ? wall : wall + 600_000, i < 50 ? wall : wall + 600_000, wall).dtsMs);
    a.push(g.place('audio', wall, wall, wall).dtsMs);
  }
  assert.deepEqual(g.counts().rebased, 1);
  assert.deepEqual(a, Array.from({ length: 100 }, (_, i) => i * 40), 'audio untouched');
  assert.ok(increasing(v) && Math.abs((v[99] as number) - 99 * 40) <= 40, `video continues on the wall time: ${v[99]}`);
});

test('a forward jump without wall time passing is rebased; a pause with wall time is kept as it is', () => {
  const g = new TimestampGuard();
  const a = run(g, 'video', [[0, 0], [40, 40], [3_600_040, 3_600_040], [3_600_080, 3_600_080]]);
  assert.deepEqual(a.dts, [0, 40, 80, 120], 'a camera clock jumping an hour ahead does not make an hour-long track');
  const p = new TimestampGuard();
  const b = [p.place('video', 0, 0, 0), p.place('video', 30_000, 30_000, 30_000), p.place('video', 30_040, 30_040, 30_040)];
  assert.deepEqual(b.map((x) => x.dtsMs), [0, 30_000, 30_040], 'a 30 s pause (or DTX silence) the wall clock saw is kept');
  assert.equal(p.counts().rebased, 0);
  const q = new TimestampGuard();
  const c = [q.place('video', 0, 0, 0), q.place('video', 60_000, 60_000, 30_000)];
  assert.equal(c[1]?.dtsMs, 30_000, 'a step 30 s longer than the wall time is rebased onto the wall time');
});

test('repairs are reported once per burst: a start line, then one line with the counts after a quiet spell', () => {
  const g = new TimestampGuard({ burstQuietMs: 2000 });
  for (let i = 0; i < 50; i++) g.place('video', 40, 40, i); // 49 nudges in 50 ms
  const first = g.takeReports(100);
  assert.equal(first.length, 1);
  assert.equal(first[0]?.phase, 'started');
  assert.deepEqual(g.takeReports(1000), [], 'nothing more while the burst goes on');
  const end = g.takeReports(2200);
  assert.equal(end.length, 1);
  assert.equal(end[0]?.phase, 'ended');
  assert.equal(end[0]?.counts.nudged, 49);
  g.place('video', 10_000, 10_000, 10_000);
  g.place('video', 10_000, 10_000, 10_040);
  assert.equal(g.takeReports(10_050)[0]?.phase, 'started', 'a later repair starts a new burst');
});

test('guardFlvTag rewrites an FLV tag with a repeated timestamp in place, keeping its composition time', () => {
  const g = new TimestampGuard();
  const avc = (cts: number) => {
    const p = Buffer.alloc(8);
    p[0] = 0x27; // inter frame, AVC
    p[1] = 1; // NALU
    p.writeIntBE(cts, 2, 3);
    return p;
  };
  const t1 = new FlvParser(undefined, (t) => guardFlvTag(g, t, 0));
  const header = Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0]);
  const tags = t1.push(Buffer.concat([header, flvTag(9, 1000, avc(80)), flvTag(9, 1000, avc(40)), flvTag(9, 0x1000000, avc(-40))]));
  assert.deepEqual(tags.map((t) => t.timestamp), [1000, 1001, 1002], 'no step seen yet: 1 ms');
  assert.equal(tags[1]?.bytes.readUIntBE(4, 3), 1001, 'the bytes carry the repaired timestamp');
  assert.equal(compositionTime(tags[1]?.bytes ?? Buffer.alloc(0)), 40);
  assert.equal(compositionTime(tags[2]?.bytes ?? Buffer.alloc(0)), 0, 'a negative composition time (PTS < DTS) is clipped');
  assert.equal(tags[2]?.bytes[7], 0, 'the extended timestamp byte is rewritten too');
});

test('RtpTimestampGuard: packets of one frame keep one timestamp; a publisher clock reset is rewritten onto the wall time', () => {
  const g = new TimestampGuard();
  const rg = new RtpTimestampGuard(g, 'video', 90_000);
  const pkt = (ts: number) => {
    const b = Buffer.alloc(12);
    b[0] = 0x80;
    b.writeUInt32BE(ts >>> 0, 4);
    return b;
  };
  const out: number[] = [];
  // 3 frames of 2 packets near the 32-bit wrap, then the clock restarts somewhere else
  const frames = [2 ** 32 - 3600, 2 ** 32 - 3600, 0 /* wrapped: 3600 later */, 0, 3600, 3600, 1_000_000_000, 1_000_000_000, 1_000_003_600];
  frames.forEach((ts, i) => {
    const p = pkt(ts === 0 ? 0 : ts);
    rg.apply(p, Math.floor(i / 2) * 40);
    out.push(p.readUInt32BE(4));
  });
  assert.equal(out[0], out[1], 'one frame, one timestamp');
  assert.equal(out[2], 0, 'a wrap is not a jump');
  assert.equal(g.counts().rebased, 1, 'the reset is one rebase');
  const d = (a: number, b: number) => ((a - b) >>> 0);
  assert.equal(d(out[6] as number, out[4] as number), 40 * 90, 'the frame after the reset comes one wall step (40 ms) later');
  assert.equal(d(out[8] as number, out[6] as number), 3600, 'and the stream goes on at its own pace');
});
