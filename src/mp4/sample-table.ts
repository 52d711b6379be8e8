import { endianness } from 'node:os';
import { type Box, children, makeBox, makeFullBox } from './boxes';
import { fail } from './format-error';

/**
 * The samples of one track, in decode order, as every writer takes them (the cut, the remux, playback): a parsed
 * stbl, the fragments of a fragmented file, a timeline stitched from several files. Times in the media timescale.
 */
export interface Samples {
  readonly dur: ArrayLike<number>;
  /** composition offset (pts − dts) */
  readonly cts: ArrayLike<number>;
  readonly size: ArrayLike<number>;
  /** true or 1 for a sync sample; null when every sample is sync */
  readonly sync: ArrayLike<number | boolean> | null;
  /** sample description index (1-based) */
  readonly sdi: ArrayLike<number>;
  /** the stsd box its sample descriptions come from */
  readonly stsd: Buffer;
}

/** Every sample of one track of a file, in decode order (times in the track's media timescale). */
export interface SampleTable extends Samples {
  count: number;
  dts: Float64Array;
  dur: Uint32Array;
  /** composition offset (pts − dts); zeros when the track has no ctts */
  cts: Int32Array;
  hasCtts: boolean;
  size: Uint32Array;
  /** byte offset in the source file */
  offset: Float64Array;
  /** 1 for a sync sample; null when every sample is sync (no stss) */
  sync: Uint8Array | null;
  /** sample description index (1-based) */
  sdi: Uint32Array;
  /** the stsd box, copied as is */
  stsd: Buffer;
}

/** A run of samples of one track stored together in the output: samples [first, first+count) of the source table. */
export interface OutChunk {
  first: number;
  count: number;
  /** file offset in the output */
  offset: number;
}

function fullBody(b: Box | undefined, what: string): { version: number; body: Buffer } {
  if (!b || b.body.length < 4) fail(`missing or short ${what}`);
  return { version: b.body.readUInt8(0), body: b.body.subarray(4) };
}

function entries(body: Buffer, entrySize: number, what: string): number {
  const n = body.readUInt32BE(0);
  if (4 + n * entrySize > body.length) fail(`${what} says ${n} entries but is ${body.length} bytes`);
  return n;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** n big-endian 32-bit words at `at` as a native array (one copy and a byte swap instead of n reads). */
function words(body: Buffer, at: number, n: number): Uint32Array {
  const u = new Uint32Array(n);
  const b = Buffer.from(u.buffer, 0, n * 4);
  body.copy(b, 0, at, at + n * 4);
  if (LITTLE_ENDIAN) b.swap32();
  return u;
}

/** Expand [count, value] word pairs over samples from 0 (at most `count`): set(i, value); returns the samples covered. */
function expandRuns(w: Uint32Array, count: number, set: (i: number, value: number) => void): number {
  let i = 0;
  for (let e = 0; e + 1 < w.length && i < count; e += 2) {
    const c = w[e] ?? 0;
    const v = w[e + 1] ?? 0;
    for (let k = 0; k < c && i < count; k++, i++) set(i, v);
  }
  return i;
}

/** Parse a stbl box body into per-sample arrays. */
export function parseSampleTable(stbl: Buffer): SampleTable {
  const kids = children(stbl);
  const get = (t: string): Box | undefined => kids.find((k) => k.type === t);
  const stsd = get('stsd');
  if (!stsd) fail('stbl without stsd');

  // sizes first: they give the sample count
  let count: number;
  let size: Uint32Array;
  const stszBox = get('stsz');
  if (stszBox) {
    const { body } = fullBody(stszBox, 'stsz');
    const fixed = body.readUInt32BE(0);
    count = body.readUInt32BE(4);
    if (fixed !== 0) size = new Uint32Array(count).fill(fixed);
    else {
      if (8 + count * 4 > body.length) fail('short stsz');
      size = words(body, 8, count);
    }
  } else {
    const { body } = fullBody(get('stz2'), 'stsz/stz2');
    const field = body.readUInt8(3);
    count = body.readUInt32BE(4);
    size = new Uint32Array(count);
    if (![4, 8, 16].includes(field) || 8 + Math.ceil((count * field) / 8) > body.length) fail('bad stz2');
    for (let i = 0; i < count; i++) {
      if (field === 16) size[i] = body.readUInt16BE(8 + i * 2);
      else if (field === 8) size[i] = body.readUInt8(8 + i);
      else size[i] = (body.readUInt8(8 + (i >> 1)) >> ((i & 1) === 0 ? 4 : 0)) & 0xf;
    }
  }

  const dts = new Float64Array(count);
  const dur = new Uint32Array(count);
  {
    const { body } = fullBody(get('stts'), 'stts');
    let t = 0;
    const i = expandRuns(words(body, 4, entries(body, 8, 'stts') * 2), count, (k, d) => {
      dts[k] = t;
      dur[k] = d;
      t += d;
    });
    if (i < count) fail(`stts covers ${i} of ${count} samples`);
  }

  const cts = new Int32Array(count);
  const cttsBox = get('ctts');
  if (cttsBox) {
    const { body } = fullBody(cttsBox, 'ctts');
    // read as signed whatever the version: some writers put negative offsets in version 0
    expandRuns(words(body, 4, entries(body, 8, 'ctts') * 2), count, (k, o) => (cts[k] = o | 0));
  }

  let sync: Uint8Array | null = null;
  const stssBox = get('stss');
  if (stssBox) {
    const { body } = fullBody(stssBox, 'stss');
    sync = new Uint8Array(count);
    for (const s of words(body, 4, entries(body, 4, 'stss'))) if (s >= 1 && s <= count) sync[s - 1] = 1;
  }

  // chunk offsets
  let chunkOffsets: Float64Array;
  const stco = get('stco');
  const co64 = get('co64');
  if (stco) {
    const { body } = fullBody(stco, 'stco');
    chunkOffsets = new Float64Array(words(body, 4, entries(body, 4, 'stco')));
  } else {
    const { body } = fullBody(co64, 'stco/co64');
    const n = entries(body, 8, 'co64');
    chunkOffsets = new Float64Array(n);
    for (let e = 0; e < n; e++) chunkOffsets[e] = Number(body.readBigUInt64BE(4 + e * 8));
  }

  const offset = new Float64Array(count);
  const sdi = new Uint32Array(count);
  {
    const { body } = fullBody(get('stsc'), 'stsc');
    const n = entries(body, 12, 'stsc');
    const w = words(body, 4, n * 3);
    const nChunks = chunkOffsets.length;
    let i = 0;
    for (let e = 0; e < n && i < count; e++) {
      const firstChunk = w[e * 3] ?? 0;
      const perChunk = w[e * 3 + 1] ?? 0;
      const desc = w[e * 3 + 2] ?? 0;
      const nextFirst = e + 1 < n ? (w[e * 3 + 3] ?? 0) : nChunks + 1;
      for (let c = firstChunk; c < nextFirst && c <= nChunks && i < count; c++) {
        let off = chunkOffsets[c - 1] ?? 0;
        for (let k = 0; k < perChunk && i < count; k++, i++) {
          offset[i] = off;
          sdi[i] = desc;
          off += size[i] ?? 0;
        }
      }
    }
    if (i < count) fail(`stsc/stco place ${i} of ${count} samples`);
  }

  return { count, dts, dur, cts, hasCtts: cttsBox !== undefined, size, offset, sync, sdi, stsd: stsd.raw };
}

/** Run-length encode values[from, to) as [count, value] pairs. */
function runs(values: ArrayLike<number>, from: number, to: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = from; i < to; i++) {
    const v = values[i] ?? 0;
    const last = out[out.length - 1];
    if (last && last[1] === v) last[0]++;
    else out.push([1, v]);
  }
  return out;
}

/** A full box of 32-bit rows after an entry count (the sample-table layout); `signed`: later columns signed. */
function table(type: string, version: number, rows: ReadonlyArray<readonly number[]>, signed = false): Buffer {
  const width = rows[0]?.length ?? 0;
  const body = Buffer.alloc(4 + rows.length * width * 4);
  body.writeUInt32BE(rows.length, 0);
  rows.forEach((r, k) => r.forEach((v, j) => {
    const at = 4 + (k * width + j) * 4;
    if (signed && j > 0) body.writeInt32BE(v, at);
    else body.writeUInt32BE(v, at);
  }));
  return makeFullBox(type, version, 0, body);
}

/**
 * Build a stbl box for samples [a, b) of `t`, stored in the output as `chunks` (in sample order): ctts when a
 * sample has a composition offset, stss when one is not a sync sample, one stsz size when all are equal.
 */
export function buildSampleTable(t: Samples, a: number, b: number, chunks: readonly OutChunk[], co64: boolean): Buffer {
  const parts: Buffer[] = [t.stsd, table('stts', 0, runs(t.dur, a, b))];
  let withCts = false;
  let negative = false;
  for (let i = a; i < b; i++) {
    const c = t.cts[i] ?? 0;
    if (c !== 0) withCts = true;
    if (c < 0) negative = true;
  }
  if (withCts) parts.push(table('ctts', negative ? 1 : 0, runs(t.cts, a, b), true));
  if (t.sync) {
    const keys: number[][] = [];
    for (let i = a; i < b; i++) if (t.sync[i]) keys.push([i - a + 1]);
    if (keys.length < b - a) parts.push(table('stss', 0, keys));
  }
  // stsc: a new entry whenever samples-per-chunk or the description changes
  const stsc: number[][] = [];
  chunks.forEach((c, k) => {
    const desc = t.sdi[c.first] ?? 1;
    const last = stsc[stsc.length - 1];
    if (!last || last[1] !== c.count || last[2] !== desc) stsc.push([k + 1, c.count, desc]);
  });
  parts.push(table('stsc', 0, stsc));

  const n = b - a;
  const first = t.size[a] ?? 0;
  let fixed = n > 0;
  for (let i = a; i < b && fixed; i++) fixed = t.size[i] === first;
  const stszBody = Buffer.alloc(8 + (fixed ? 0 : n * 4));
  stszBody.writeUInt32BE(fixed ? first : 0, 0);
  stszBody.writeUInt32BE(n, 4);
  if (!fixed) for (let i = a; i < b; i++) stszBody.writeUInt32BE(t.size[i] ?? 0, 8 + (i - a) * 4);
  parts.push(makeFullBox('stsz', 0, 0, stszBody));

  const coBody = Buffer.alloc(4 + chunks.length * (co64 ? 8 : 4));
  coBody.writeUInt32BE(chunks.length, 0);
  chunks.forEach((c, k) => {
    if (co64) coBody.writeBigUInt64BE(BigInt(c.offset), 4 + k * 8);
    else coBody.writeUInt32BE(c.offset, 4 + k * 4);
  });
  parts.push(makeFullBox(co64 ? 'co64' : 'stco', 0, 0, coBody));
  return makeBox('stbl', ...parts);
}

/** The stsd box holding these sample entries. */
export function stsdBox(entries: readonly Buffer[]): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(entries.length, 0);
  return makeFullBox('stsd', 0, 0, n, ...entries);
}

/** The sample entries of an stsd box (whole box), each a whole box. */
export function stsdEntries(stsd: Buffer): Buffer[] {
  // box header (8) + version/flags (4) + entry_count (4)
  if (stsd.length < 16) fail('short stsd');
  const n = stsd.readUInt32BE(12);
  const out = children(stsd.subarray(16), 'stsd').map((b) => b.raw);
  if (out.length < n) fail(`stsd says ${n} entries, holds ${out.length}`);
  return out.slice(0, n);
}
