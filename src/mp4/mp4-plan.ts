import { makeBox, makeFullBox } from './boxes';
import { type Edit, ftyp, MOVIE_TIMESCALE, mvhd, outputTrak, stsd } from './movie-boxes';
import type { MovieTrack } from './movie-track';

/** Source bytes copied into the answer: `len` bytes at `src` of file `file`, at `out` in the answer. */
export interface Piece {
  readonly file: number;
  readonly src: number;
  len: number;
  readonly out: number;
}

/** A plain MP4 (ftyp, moov, mdat) described without its media: the header bytes, then pieces of source files. */
export interface Mp4Plan {
  /** ftyp + moov + mdat header */
  readonly header: Buffer;
  /** in answer order, back to back after the header */
  readonly pieces: Piece[];
  /** total bytes */
  readonly size: number;
  /** movie duration, ms */
  readonly durationMs: number;
}

interface Chunk {
  first: number;
  count: number;
  out: number;
}

/** Movie time (ms) when the track's presentation starts, and the edits that put it there. */
export function trackEdits(t: MovieTrack): { edits: Edit[]; durationMs: number; mediaDuration: number } {
  const n = t.dts.length - 1;
  const first = t.dts[0] ?? 0;
  const mediaDuration = (t.dts[n] ?? 0) + (t.dur[n] ?? 0) - first;
  const emptyMs = Math.round(((first - t.cts0 > 0 ? first - t.cts0 : 0) / t.timescale) * MOVIE_TIMESCALE);
  const showMs = Math.max(1, Math.round(((mediaDuration - Math.max(0, t.cts0 - first)) / t.timescale) * MOVIE_TIMESCALE));
  const edits: Edit[] = [];
  if (emptyMs > 0) edits.push([emptyMs, -1]);
  edits.push([showMs, Math.max(0, t.cts0 - first)]);
  return { edits, durationMs: emptyMs + showMs, mediaDuration };
}

/**
 * Plan a moov-first MP4 of `tracks` (samples read from the caller's files): each file's samples keep their
 * order in that file (interleaved as recorded), files follow each other.
 */
export function planMp4(tracks: readonly MovieTrack[]): Mp4Plan {
  // every sample of every track, grouped by file, in source order
  const order: Array<{ t: number; i: number }> = [];
  tracks.forEach((t, ti) => t.file.forEach((_f, i) => order.push({ t: ti, i })));
  order.sort((a, b) => {
    const ta = tracks[a.t] as MovieTrack;
    const tb = tracks[b.t] as MovieTrack;
    return (ta.file[a.i] ?? 0) - (tb.file[b.i] ?? 0) || (ta.src[a.i] ?? 0) - (tb.src[b.i] ?? 0);
  });
  const chunks: Chunk[][] = tracks.map(() => []);
  const pieces: Piece[] = [];
  let out = 0;
  let lastT = -1;
  let lastI = -1;
  for (const { t, i } of order) {
    const tr = tracks[t] as MovieTrack;
    const file = tr.file[i] ?? 0;
    const src = tr.src[i] ?? 0;
    const len = tr.size[i] ?? 0;
    const cs = chunks[t] as Chunk[];
    const prevChunk = cs[cs.length - 1];
    const last = pieces[pieces.length - 1];
    const contiguous = last !== undefined && last.file === file && last.src + last.len === src;
    if (prevChunk && lastT === t && lastI === i - 1 && contiguous && prevChunk.count < 1024 && tr.sdi[i] === tr.sdi[i - 1]) prevChunk.count++;
    else cs.push({ first: i, count: 1, out });
    if (contiguous && last) last.len += len;
    else pieces.push({ file, src, len, out });
    out += len;
    lastT = t;
    lastI = i;
  }
  for (const cs of chunks) cs.sort((a, b) => a.first - b.first);
  const dataLen = out;
  const mdatHead = dataLen + 8 > 0xffffffff ? 16 : 8;
  const head = ftyp(false);
  const build = (base: number, co64: boolean) => moov(tracks, chunks, base, co64);
  let co64 = false;
  let m = build(0, co64);
  if (head.length + m.moov.length + mdatHead + dataLen > 0xffffffff) {
    co64 = true;
    m = build(0, co64);
  }
  const dataStart = head.length + m.moov.length + mdatHead;
  m = build(dataStart, co64);
  const mdat = Buffer.alloc(mdatHead);
  if (mdatHead === 16) {
    mdat.writeUInt32BE(1, 0);
    mdat.writeBigUInt64BE(BigInt(dataLen + 16), 8);
  } else mdat.writeUInt32BE(dataLen + 8, 0);
  mdat.write('mdat', 4, 'latin1');
  const header = Buffer.concat([head, m.moov, mdat]);
  for (const p of pieces) (p as { out: number }).out += header.length;
  return { header, pieces, size: header.length + dataLen, durationMs: m.durationMs };
}

function moov(tracks: readonly MovieTrack[], chunks: Chunk[][], dataStart: number, co64: boolean): { moov: Buffer; durationMs: number } {
  let durationMs = 0;
  const traks = tracks.map((t, ti) => {
    const e = trackEdits(t);
    durationMs = Math.max(durationMs, e.durationMs);
    return outputTrak({ template: t.template, trackId: ti + 1, duration: e.durationMs, mediaDuration: e.mediaDuration, edits: e.edits, stbl: sampleTable(t, chunks[ti] ?? [], dataStart, co64) });
  });
  return { moov: makeBox('moov', mvhd(durationMs, tracks.length + 1), ...traks), durationMs };
}

/** Run-length [count, value] pairs of xs. */
function runs(xs: readonly number[]): number[][] {
  const out: number[][] = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && last[1] === x) last[0] = (last[0] ?? 0) + 1;
    else out.push([1, x]);
  }
  return out;
}

function table(type: string, version: number, rows: readonly number[][], signed = false): Buffer {
  const width = rows[0]?.length ?? 0;
  const body = Buffer.alloc(4 + rows.length * width * 4);
  body.writeUInt32BE(rows.length, 0);
  rows.forEach((r, k) => r.forEach((v, j) => (signed && j > 0 ? body.writeInt32BE(v, 4 + (k * width + j) * 4) : body.writeUInt32BE(v, 4 + (k * width + j) * 4))));
  return makeFullBox(type, version, 0, body);
}

/** The stbl of a track whose samples sit in `chunks` from `dataStart`. */
export function sampleTable(t: MovieTrack, chunks: readonly Chunk[], dataStart: number, co64: boolean): Buffer {
  const parts = [stsd(t.entries), table('stts', 0, runs(t.dur))];
  if (t.cts.some((c) => c !== 0)) parts.push(table('ctts', t.cts.some((c) => c < 0) ? 1 : 0, runs(t.cts), true));
  if (t.sync.some((s) => !s)) {
    const keys: number[][] = [];
    t.sync.forEach((s, i) => s && keys.push([i + 1]));
    parts.push(table('stss', 0, keys));
  }
  const stsc: number[][] = [];
  chunks.forEach((c, k) => {
    const desc = t.sdi[c.first] ?? 1;
    const last = stsc[stsc.length - 1];
    if (!last || last[1] !== c.count || last[2] !== desc) stsc.push([k + 1, c.count, desc]);
  });
  parts.push(table('stsc', 0, stsc));
  const stsz = Buffer.alloc(8 + t.size.length * 4);
  stsz.writeUInt32BE(t.size.length, 4);
  t.size.forEach((s, i) => stsz.writeUInt32BE(s, 8 + i * 4));
  parts.push(makeFullBox('stsz', 0, 0, stsz));
  const co = Buffer.alloc(4 + chunks.length * (co64 ? 8 : 4));
  co.writeUInt32BE(chunks.length, 0);
  chunks.forEach((c, k) => (co64 ? co.writeBigUInt64BE(BigInt(dataStart + c.out), 4 + k * 8) : co.writeUInt32BE(dataStart + c.out, 4 + k * 4)));
  parts.push(makeFullBox(co64 ? 'co64' : 'stco', 0, 0, co));
  return makeBox('stbl', ...parts);
}
