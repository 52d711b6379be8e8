import { box, boxesIn, fail, fullBox, must } from './remux-boxes';
import type { FragTrack } from './fragments';

/** stbl children the remux rewrites (the source ones are empty or describe fragments only). */
const SAMPLE_TABLES = new Set(['stts', 'ctts', 'stss', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'sdtp', 'sgpd', 'sbgp', 'cslg', 'stps', 'subs']);

/** A rebuilt trak and how long it lasts on the movie timeline (movie timescale). */
export interface BuiltTrak {
  readonly trak: Buffer;
  readonly movieDuration: number;
}

/** Write `value` into a copy of a v0/v1 full box at the duration field; v0 that cannot hold it throws. */
export function withDuration(src: Buffer, at: { readonly body: number }, v0At: number, v1At: number, value: number, type: string): Buffer {
  const b = Buffer.from(src);
  if (b[at.body] === 1) b.writeBigUInt64BE(BigInt(value), at.body + v1At);
  else if (value > 0xffffffff) fail(`duration ${value} does not fit in a version 0 ${type}`, type, 0);
  else b.writeUInt32BE(value, at.body + v0At);
  return b;
}

/** Run-length pairs [count, value] of `xs`. */
function runs(xs: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; ) {
    const v = xs[i] ?? 0;
    let j = i + 1;
    while (j < xs.length && xs[j] === v) j++;
    out.push(j - i, v);
    i = j;
  }
  return out;
}

/** Where a track's presentation starts on the movie timeline (movie timescale) and what of its media it shows. */
export interface Presentation {
  readonly presStart: number;
  readonly mediaTime: number;
  readonly mediaDur: number;
}

/** The presentation of `t` as the fragmented source has it (its own edit list, else composition times). */
export function presentation(t: FragTrack, movieTs: number): Presentation {
  let dts = t.firstDts;
  let pts0 = Infinity;
  let ptsEnd = -Infinity;
  for (let i = 0; i < t.dur.length; i++) {
    const pts = dts + (t.cto[i] ?? 0);
    const dur = t.dur[i] ?? 0;
    pts0 = Math.min(pts0, pts);
    ptsEnd = Math.max(ptsEnd, pts + dur);
    dts += dur;
  }
  const toMovie = (v: number) => Math.round((v * movieTs) / t.timescale);
  const start = t.edit ? Math.max(t.edit.mediaTime, pts0) : pts0;
  const presStart = t.edit ? t.edit.empty + toMovie(start - t.edit.mediaTime) : toMovie(start);
  const mediaTime = start - t.firstDts;
  const mediaDur = toMovie(ptsEnd - start);
  if (mediaTime < 0 || presStart < 0 || mediaDur <= 0)
    fail(`track ${t.id}: presentation starts before its first decode time (negative composition offsets)`, 'trun', 0);
  return { presStart, mediaTime, mediaDur };
}

/** The edts of a track shown from `p`, `shift` (movie timescale) earlier. */
function editList(p: Presentation, shift: number): { elst: Buffer; movieDuration: number } {
  const { mediaTime, mediaDur } = p;
  const presStart = p.presStart - shift;
  const entries: [number, number][] = presStart > 0 ? [[presStart, -1], [mediaDur, mediaTime]] : [[mediaDur, mediaTime]];
  const v1 = entries.some(([d, m]) => d > 0xffffffff || m > 0x7fffffff);
  const body = Buffer.alloc(8 + entries.length * (v1 ? 20 : 12));
  body.writeUInt32BE(v1 ? 0x01000000 : 0, 0);
  body.writeUInt32BE(entries.length, 4);
  entries.forEach(([d, m], i) => {
    const at = 8 + i * (v1 ? 20 : 12);
    if (v1) {
      body.writeBigUInt64BE(BigInt(d), at);
      body.writeBigInt64BE(BigInt(m), at + 8);
      body.writeUInt32BE(0x10000, at + 16);
    } else {
      body.writeUInt32BE(d, at);
      body.writeInt32BE(m, at + 4);
      body.writeUInt32BE(0x10000, at + 8);
    }
  });
  return { elst: box('edts', box('elst', body)), movieDuration: presStart + mediaDur };
}

/** The sample tables of `t` with chunk `offsets` in the output file. */
function sampleTables(t: FragTrack, offsets: readonly number[], co64: boolean): Buffer[] {
  const n = t.dur.length;
  const out = [fullBox('stts', 0, 0, [runs(t.dur).length / 2, ...runs(t.dur)])];
  if (t.cto.some((c) => c !== 0)) out.push(fullBox('ctts', t.cto.some((c) => c < 0) ? 1 : 0, 0, [runs(t.cto).length / 2, ...runs(t.cto)]));
  if (t.sync.some((s) => !s)) {
    const keys: number[] = [];
    t.sync.forEach((s, i) => s && keys.push(i + 1));
    out.push(fullBox('stss', 0, 0, [keys.length, ...keys]));
  }
  const stsc: number[] = [];
  t.chunks.forEach((c, i) => {
    const l = stsc.length;
    if (l === 0 || stsc[l - 2] !== c.samples || stsc[l - 1] !== c.sdi) stsc.push(i + 1, c.samples, c.sdi);
  });
  out.push(fullBox('stsc', 0, 0, [stsc.length / 3, ...stsc]));
  const same = t.size.every((s) => s === t.size[0]);
  out.push(fullBox('stsz', 0, 0, same ? [t.size[0] ?? 0, n] : [0, n, ...t.size]));
  if (co64) {
    const b = Buffer.alloc(8 + 8 * offsets.length);
    b.writeUInt32BE(offsets.length, 4);
    offsets.forEach((o, i) => b.writeBigUInt64BE(BigInt(o), 8 + 8 * i));
    out.push(box('co64', b));
  } else out.push(fullBox('stco', 0, 0, [offsets.length, ...offsets]));
  return out;
}

/**
 * The plain-MP4 trak of `t`: the source trak with its stsd byte for byte, its sample tables filled,
 * durations set and an edit list (presentation `p`, moved `shift` earlier); `offsets`: its chunks' file offsets in the output.
 */
export function buildTrak(t: FragTrack, p: Presentation, shift: number, offsets: readonly number[], co64: boolean): BuiltTrak {
  const src = t.trak;
  const { elst, movieDuration } = editList(p, shift);
  const mediaDuration = t.dur.reduce((a, b) => a + b, 0);
  const parts: Buffer[] = [];
  for (const k of boxesIn(src, 8, src.length, 0, 'trak')) {
    const raw = src.subarray(k.start, k.end);
    if (k.type === 'tkhd') parts.push(withDuration(raw, { body: k.body - k.start }, 20, 28, movieDuration, 'tkhd'), elst);
    else if (k.type === 'edts') continue;
    else if (k.type === 'mdia') parts.push(box('mdia', ...mdia(raw, t, mediaDuration, offsets, co64)));
    else parts.push(raw);
  }
  return { trak: box('trak', ...parts), movieDuration };
}

function mdia(raw: Buffer, t: FragTrack, mediaDuration: number, offsets: readonly number[], co64: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (const k of boxesIn(raw, 8, raw.length, 0, 'mdia')) {
    const b = raw.subarray(k.start, k.end);
    if (k.type === 'mdhd') out.push(withDuration(b, { body: k.body - k.start }, 16, 24, mediaDuration, 'mdhd'));
    else if (k.type !== 'minf') out.push(b);
    else {
      const minf: Buffer[] = [];
      for (const m of boxesIn(b, 8, b.length, 0, 'minf')) {
        const mb = b.subarray(m.start, m.end);
        if (m.type !== 'stbl') {
          minf.push(mb);
          continue;
        }
        const kids = boxesIn(mb, 8, mb.length, 0, 'stbl');
        const stsd = must(kids, 'stsd', 'stbl', 0, 0);
        for (const s of kids)
          if (s.type !== 'stsd' && !SAMPLE_TABLES.has(s.type)) fail(`track ${t.id}: unsupported ${s.type} in stbl`, s.type, 0);
        minf.push(box('stbl', mb.subarray(stsd.start, stsd.end), ...sampleTables(t, offsets, co64)));
      }
      out.push(box('minf', ...minf));
    }
  }
  return out;
}
