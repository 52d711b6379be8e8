import { type BoxRef, children, childBoxes, findBox, must, only, readUint } from './boxes';
import { fail } from './format-error';
import { BoxFile, type ByteReader } from './reader';
import type { Samples } from './sample-table';
import { leadingEdit, readHeaderTimes, trackId } from './track';

/** A run of samples stored back to back in the source (one trun). */
export interface Chunk {
  readonly src: number;
  readonly size: number;
  readonly samples: number;
  readonly sdi: number;
}

/** A track of the fragmented source: its moov trak and the samples its fragments hold (offsets in the file). */
export interface FragTrack extends Samples {
  readonly id: number;
  readonly timescale: number;
  /** the whole trak box of the source moov */
  readonly trak: Buffer;
  /** input edit list reduced to: presentation of media time `mediaTime` at `empty` (movie timescale) */
  readonly edit: { readonly empty: number; readonly mediaTime: number } | null;
  readonly trex: { readonly sdi: number; readonly dur: number; readonly size: number; readonly flags: number };
  /** decode time of the first sample (media timescale) */
  firstDts: number;
  /** decode time after the last sample */
  nextDts: number;
  readonly dur: number[];
  readonly size: number[];
  readonly cts: number[];
  readonly sync: boolean[];
  readonly sdi: number[];
  readonly offset: number[];
  /** one per trun */
  readonly chunks: Chunk[];
  /** the stsd box of the source trak */
  readonly stsd: Buffer;
}

/** The parsed fragmented source. */
export interface FragFile {
  readonly ftyp: Buffer;
  /** the source moov, whole */
  readonly moov: Buffer;
  readonly movieTimescale: number;
  readonly tracks: FragTrack[];
  /** [start, end) of every mdat payload */
  readonly mdats: [number, number][];
}

const IGNORED_TOP = new Set(['free', 'skip', 'mfra', 'sidx', 'styp', 'uuid', 'prft', 'emsg', 'meta', 'udta']);
const IGNORED_TRAF = new Set(['sdtp', 'sbgp', 'sgpd', 'subs']);
const MAX_HEADER_BOX = 64 * 1024 * 1024;
const NON_SYNC = 0x10000;

/** Read the boxes of a fragmented MP4 `fh` (`size` bytes): moov tracks, then every moof's samples. */
export async function readFragments(fh: ByteReader, size: number): Promise<FragFile> {
  let ftyp: Buffer | null = null;
  let moov: Buffer | null = null;
  let movieTimescale = 0;
  let tracks = new Map<number, FragTrack>();
  const mdats: [number, number][] = [];
  // the window makes one read cover a box header and, mostly, the moof and the next mdat header
  const file = new BoxFile(fh, size, 64 * 1024);
  for await (const b of file.boxes(10_000_000)) {
    if (b.end > size) fail(`box of ${b.size} bytes runs past the end of the file (${size} bytes): a cut file`, b.type, b.start);
    if (b.type === 'mdat') mdats.push([b.body, b.end]);
    else if (b.type === 'ftyp' || b.type === 'moov' || b.type === 'moof') {
      if (b.size > MAX_HEADER_BOX) fail(`${b.size}-byte ${b.type} is too large`, b.type, b.start);
      const buf = Buffer.from(await file.bytes(b.start, b.size));
      if (b.type === 'ftyp') ftyp = buf;
      else if (b.type === 'moov') {
        if (moov) fail('a second moov', b.type, b.start);
        moov = buf;
        ({ movieTimescale, tracks } = readMoov(buf.subarray(b.body - b.start), b.start));
      } else {
        if (!moov) fail('moof before the moov', b.type, b.start);
        readMoof(buf, b.body - b.start, b.start, tracks);
      }
    } else if (!IGNORED_TOP.has(b.type)) fail(`unexpected top-level box ${JSON.stringify(b.type)}`, b.type, b.start);
  }
  if (!ftyp || !moov) fail(`no ${ftyp ? 'moov' : 'ftyp'}: not an MP4`, 'file', 0);
  for (const t of tracks.values())
    for (const c of t.chunks)
      if (!mdats.some(([s, e]) => c.src >= s && c.src + c.size <= e))
        fail(`track ${t.id}: ${c.size} sample bytes at ${c.src} are not inside one complete mdat`, 'trun', c.src);
  return { ftyp, moov, movieTimescale, tracks: [...tracks.values()], mdats };
}

/** The tracks of a fragmented file's moov body (at file offset `base`): ids, timescales, trex defaults, edits. */
function readMoov(moov: Buffer, base: number): { movieTimescale: number; tracks: Map<number, FragTrack> } {
  const kids = children(moov, 'moov');
  const mvhd = kids.find((k) => k.type === 'mvhd');
  const mvex = kids.find((k) => k.type === 'mvex');
  if (!mvhd || !mvex) fail(`moov has no ${mvhd ? 'mvex' : 'mvhd'}`, 'moov', base);
  const movieTimescale = readHeaderTimes(mvhd).timescale;
  const trex = new Map<number, FragTrack['trex']>();
  for (const t of children(mvex.body, 'mvex')) {
    if (t.type !== 'trex') continue;
    const w = (i: number) => readUint(t.body, 4 + 4 * i, 4, 'trex', base);
    trex.set(w(0), { sdi: w(1), dur: w(2), size: w(3), flags: w(4) });
  }
  const tracks = new Map<number, FragTrack>();
  for (const trak of kids) {
    if (trak.type !== 'trak') continue;
    const tkhd = findBox(trak.body, ['tkhd']);
    const mdhd = findBox(trak.body, ['mdia', 'mdhd']);
    const stsd = findBox(trak.body, ['mdia', 'minf', 'stbl', 'stsd']);
    if (!tkhd || !mdhd || !stsd) fail('trak without tkhd, mdhd or stsd', 'trak', base);
    const id = trackId(tkhd);
    const stsz = findBox(trak.body, ['mdia', 'minf', 'stbl', 'stsz']);
    if (stsz && readUint(stsz.body, 8, 4, 'stsz', base) > 0) fail(`track ${id} has samples in the moov too (only fragments are read)`, 'stsz', base);
    const defaults = trex.get(id);
    if (!defaults) fail(`track ${id} has no trex`, 'mvex', base);
    if (tracks.has(id)) fail(`two traks with track_ID ${id}`, 'trak', base);
    const lead = leadingEdit(trak.body);
    if (!lead.simple) fail('an edit list with more than one media edit or a rate other than 1 is not supported', 'elst', base);
    tracks.set(id, {
      id, timescale: readHeaderTimes(mdhd).timescale, trak: trak.raw, stsd: stsd.raw, trex: defaults,
      edit: lead.mediaTime === null ? null : { empty: lead.empty, mediaTime: lead.mediaTime },
      firstDts: 0, nextDts: 0, dur: [], size: [], cts: [], sync: [], sdi: [], offset: [], chunks: [],
    });
  }
  return { movieTimescale, tracks };
}

/** Append the samples of a moof (whole box in `moof`, body from `bodyAt`, at file offset `base`) to its tracks. */
function readMoof(moof: Buffer, bodyAt: number, base: number, tracks: Map<number, FragTrack>): void {
  let prevEnd = base; // data of a traf without a base offset follows the previous traf's (first: the moof)
  for (const traf of childBoxes(moof, bodyAt, moof.length, base, 'moof')) {
    if (traf.type === 'mfhd') continue;
    if (traf.type !== 'traf') fail(`unexpected ${traf.type} in moof`, traf.type, base + traf.start);
    const kids = childBoxes(moof, traf.body, traf.end, base, 'traf');
    const tfhd = must(kids, 'tfhd', 'traf', base, traf.start);
    const flags = readUint(moof, tfhd.body, 4, 'tfhd', base) & 0xffffff;
    const id = readUint(moof, tfhd.body + 4, 4, 'tfhd', base);
    const t = tracks.get(id);
    if (!t) fail(`traf of track ${id}, which the moov does not declare`, 'tfhd', base + tfhd.start);
    let at = tfhd.body + 8;
    const field = (bit: number, bytes: 4 | 8, dflt: number): number => {
      if (!(flags & bit)) return dflt;
      const v = readUint(moof, at, bytes, 'tfhd', base);
      at += bytes;
      return v;
    };
    const trafBase = field(0x1, 8, flags & 0x20000 ? base : prevEnd);
    let dataAt = trafBase;
    const sdi = field(0x2, 4, t.trex.sdi);
    const dDur = field(0x8, 4, t.trex.dur);
    const dSize = field(0x10, 4, t.trex.size);
    const dFlags = field(0x20, 4, t.trex.flags);
    const tfdt = only(kids, 'tfdt', base);
    if (tfdt) {
      const dts = readUint(moof, tfdt.body + 4, moof[tfdt.body] === 1 ? 8 : 4, 'tfdt', base);
      const n = t.dur.length;
      if (n === 0) t.firstDts = t.nextDts = dts;
      else if (dts !== t.nextDts) {
        // a gap or overlap between fragments: the last sample lasts until this decode time (as a demuxer sees it)
        const last = (t.dur[n - 1] ?? 0) + dts - t.nextDts;
        if (last <= 0) fail(`track ${id}: decode time ${dts} goes back before the previous sample`, 'tfdt', base + tfdt.start);
        t.dur[n - 1] = last;
        t.nextDts = dts;
      }
    }
    for (const k of kids) {
      if (k.type === 'tfhd' || k.type === 'tfdt' || IGNORED_TRAF.has(k.type)) continue;
      if (k.type !== 'trun') fail(`unsupported ${k.type} in traf (encrypted or unknown)`, k.type, base + k.start);
      dataAt = readTrun(moof, k, base, t, { base: trafBase, dataAt, sdi, dDur, dSize, dFlags });
    }
    prevEnd = dataAt;
  }
}

interface TrunCtx { base: number; dataAt: number; sdi: number; dDur: number; dSize: number; dFlags: number }

/** Append a trun's samples to `t`; returns where its data ends. */
function readTrun(moof: Buffer, trun: BoxRef, base: number, t: FragTrack, c: TrunCtx): number {
  const head = readUint(moof, trun.body, 4, 'trun', base);
  const signed = head >>> 24 === 1;
  const flags = head & 0xffffff;
  const count = readUint(moof, trun.body + 4, 4, 'trun', base);
  let at = trun.body + 8;
  let src = c.dataAt;
  if (flags & 0x1) {
    src = c.base + moof.readInt32BE(at);
    at += 4;
  }
  let firstFlags = -1;
  if (flags & 0x4) {
    firstFlags = readUint(moof, at, 4, 'trun', base);
    at += 4;
  }
  const per = [0x100, 0x200, 0x400, 0x800].filter((b) => flags & b).length * 4;
  if (at + per * count > trun.end) fail(`${count} samples do not fit in the box`, 'trun', base + trun.start);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const dur = flags & 0x100 ? moof.readUInt32BE((at += 4) - 4) : c.dDur;
    const size = flags & 0x200 ? moof.readUInt32BE((at += 4) - 4) : c.dSize;
    let sflags = flags & 0x400 ? moof.readUInt32BE((at += 4) - 4) : c.dFlags;
    if (i === 0 && firstFlags >= 0) sflags = firstFlags;
    const cto = flags & 0x800 ? (signed ? moof.readInt32BE((at += 4) - 4) : moof.readUInt32BE((at += 4) - 4)) : 0;
    t.dur.push(dur);
    t.size.push(size);
    t.cts.push(cto);
    t.sync.push(!(sflags & NON_SYNC));
    t.sdi.push(c.sdi);
    t.offset.push(src + bytes);
    t.nextDts += dur;
    bytes += size;
  }
  if (count > 0) {
    if (src < 0) fail(`track ${t.id}: negative data offset`, 'trun', base + trun.start);
    t.chunks.push({ src, size: bytes, samples: count, sdi: c.sdi });
  }
  return src + bytes;
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
    const pts = dts + (t.cts[i] ?? 0);
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
