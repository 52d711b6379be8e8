import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fmp4Fragments, fmp4Init } from '../../../src/mp4/fmp4-plan';
import { planMp4 } from '../../../src/mp4/mp4-plan';
import { openSource, type SourceFile } from '../../../src/mp4/source';
import { buildTimeline, type Timeline } from '../../../src/playback/timeline';
import { readFragments } from '../../../src/mp4/fragments';

const FIXTURE = resolve(__dirname, '..', '..', '..', '..', 'tests', 'fixtures', 'playback-1s.mp4');

/** The 1 s fixture read as three files of one session back to back (t = 0, 1 s, 2 s). */
async function threeFiles(): Promise<{ src: SourceFile; tl: Timeline; bytes: Buffer }> {
  const src = await openSource(FIXTURE);
  await src.fh.close();
  const files = [0, 1, 2].map((k) => ({ startMs: 10_000 + k * 1000, endMs: 11_000 + k * 1000, mediaSessionId: 's', tracks: src.tracks }));
  const tl = buildTimeline(files, 10_000, 13_000);
  assert.ok(tl);
  return { src, tl, bytes: readFileSync(FIXTURE) };
}

/** The samples' bytes of a track of a parsed file, in decode order. */
async function sampleBytes(path: string, handler: string): Promise<Buffer[]> {
  const f = await openSource(path);
  try {
    const t = f.tracks.find((x) => x.handler === handler);
    assert.ok(t, handler);
    const data = readFileSync(path);
    return Array.from({ length: t.table.count }, (_, i) => data.subarray(t.table.offset[i], (t.table.offset[i] ?? 0) + (t.table.size[i] ?? 0)));
  } finally {
    await f.fh.close();
  }
}

test('planMp4: moov first, every sample of every file once, in order, with continuous decode times', async () => {
  const { src, tl, bytes } = await threeFiles();
  const plan = planMp4(tl.tracks);
  const out = Buffer.alloc(plan.size);
  plan.header.copy(out, 0);
  for (const p of plan.pieces) bytes.copy(out, p.out, p.src, p.src + p.len);
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-pb-'));
  try {
    const path = join(dir, 'out.mp4');
    writeFileSync(path, out);
    assert.deepEqual([out.toString('latin1', 4, 8), out.toString('latin1', plan.header.length - 4, plan.header.length)], ['ftyp', 'mdat']);
    const parsed = await openSource(path);
    await parsed.fh.close();
    for (const handler of ['vide', 'soun']) {
      const one = src.tracks.find((t) => t.handler === handler);
      const got = parsed.tracks.find((t) => t.handler === handler);
      assert.ok(one && got);
      // the first file's audio starts at the first sample shown at the keyframe (the encoder's priming frame is before it)
      const lead = handler === 'soun' ? 1 : 0;
      assert.equal(got.table.count, one.table.count * 3 - lead, `${handler}: three times the samples`);
      const want = await sampleBytes(FIXTURE, handler);
      const have = await sampleBytes(path, handler);
      have.forEach((b, i) => assert.ok(b.equals(want[(i + lead) % want.length] as Buffer), `${handler} sample ${i} bytes`));
      for (let i = 1; i < got.table.count; i++) assert.ok((got.table.dur[i - 1] ?? 0) > 0, `${handler} sample ${i - 1} has a duration`);
    }
    assert.ok(Math.abs(plan.durationMs - 3000) <= 50, `3 s (${plan.durationMs})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fmp4: an init, then fragments that never span two files, whose decode times continue and whose bytes are the samples', async () => {
  const { tl, bytes } = await threeFiles();
  const parts: Buffer[] = [fmp4Init(tl.tracks)];
  let fragments = 0;
  const fileOfFragment: number[][] = [];
  for (const f of fmp4Fragments(tl.tracks, 0.4)) {
    fragments++;
    fileOfFragment.push([...new Set(f.ranges.map((r) => r.file))]);
    const data = Buffer.alloc(f.dataLen);
    let at = 0;
    for (const r of f.ranges) {
      bytes.copy(data, at, r.src, r.src + r.len);
      at += r.len;
    }
    parts.push(f.head, data);
  }
  assert.ok(fragments >= 9, `${fragments} fragments of ≤ 0.4 s for 3 files of 1 s`);
  for (const files of fileOfFragment) assert.equal(files.length, 1, 'one file per fragment');
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-pbf-'));
  try {
    const path = join(dir, 'out.mp4');
    writeFileSync(path, Buffer.concat(parts));
    const fh = await open(path, 'r');
    try {
      const parsed = await readFragments(fh, (await fh.stat()).size);
      const src = await openSource(FIXTURE);
      await src.fh.close();
      for (const t of parsed.tracks) {
        const handler = t.id === 1 ? 'vide' : 'soun';
        const one = src.tracks.find((x) => x.handler === handler);
        assert.ok(one);
        assert.equal(t.dur.length, one.table.count * 3 - (handler === 'soun' ? 1 : 0), `${handler} samples`);
        assert.equal(t.firstDts, tl.tracks[t.id - 1]?.dts[0], `${handler} starts where the timeline says`);
        assert.equal(t.nextDts - t.firstDts, t.dur.reduce((a, b) => a + b, 0), `${handler}: tfdt continues (no jump, no overlap)`);
        assert.equal(t.sync[0], true);
      }
      const vid = parsed.tracks.find((t) => t.id === 1);
      const want = await sampleBytes(FIXTURE, 'vide');
      const data = readFileSync(path);
      let i = 0;
      for (const c of vid?.chunks ?? []) {
        let off = c.src;
        for (let k = 0; k < c.samples; k++, i++) {
          const size = vid?.size[i] ?? 0;
          assert.ok(data.subarray(off, off + size).equals(want[i % want.length] as Buffer), `video sample ${i}`);
          off += size;
        }
      }
      assert.equal(i, want.length * 3);
    } finally {
      await fh.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
