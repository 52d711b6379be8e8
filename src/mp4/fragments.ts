import type { ByteReader } from './boxes';
import { boxesIn, fail, must, only, readUint, type BoxRef } from './remux-boxes';

/** A run of samples stored back to back in the source (one trun). */
export interface Chunk {
  readonly src: number;
  readonly size: number;
  readonly samples: number;
  readonly sdi: number;
}

/** A track of the fragmented source: its moov trak and the samples its fragments hold. */
export interface FragTrack {
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
  readonly cto: number[];
  readonly sync: boolean[];
  readonly chunks: Chunk[];
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
  // one read covers a box header and, mostly, the moof and the next mdat header (each fs call costs ~60 µs CPU)
  const win = new Window(fh, size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    if (i >= 10_000_000) fail('too many top-level boxes', 'file', off);
    if (off + 8 > size) fail(`${size - off} stray bytes at the end of the file`, 'file', off);
    const hdr = await win.bytes(off, Math.min(16, size - off));
    let len = hdr.readUInt32BE(0);
    const type = hdr.toString('latin1', 4, 8);
    let head = 8;
    if (len === 1) {
      len = readUint(hdr, 8, 8, type, off);
      head = 16;
    } else if (len === 0) len = size - off;
    if (len < head || off + len > size) fail(`box of ${len} bytes runs past the end of the file (${size} bytes): a cut file`, type, off);
    if (type === 'mdat') mdats.push([off + head, off + len]);
    else if (type === 'ftyp' || type === 'moov' || type === 'moof') {
      if (len > MAX_HEADER_BOX) fail(`${len}-byte ${type} is too large`, type, off);
      const buf = Buffer.from(await win.bytes(off, len));
      if (type === 'ftyp') ftyp = buf;
      else if (type === 'moov') {
        if (moov) fail('a second moov', type, off);
        moov = buf;
        ({ movieTimescale, tracks } = readMoov(buf, off));
      } else {
        if (!moov) fail('moof before the moov', type, off);
        readMoof(buf, off, tracks);
      }
    } else if (!IGNORED_TOP.has(type)) fail(`unexpected top-level box ${JSON.stringify(type)}`, type, off);
    off += len;
  }
  if (!ftyp || !moov) fail(`no ${ftyp ? 'moov' : 'ftyp'}: not an MP4`, 'file', 0);
  for (const t of tracks.values())
    for (const c of t.chunks)
      if (!mdats.some(([s, e]) => c.src >= s && c.src + c.size <= e))
        fail(`track ${t.id}: ${c.size} sample bytes at ${c.src} are not inside one complete mdat`, 'trun', c.src);
  return { ftyp, moov, movieTimescale, tracks: [...tracks.values()], mdats };
}

/** Reads of a file through a 64 KiB window. */
class Window {
  private buf = Buffer.alloc(64 * 1024);
  private start = 0;
  private len = 0;
  constructor(private readonly fh: ByteReader, private readonly size: number) {}

  /** [off, off + n) of the file (a view, valid until the next call). */
  async bytes(off: number, n: number): Promise<Buffer> {
    if (off < this.start || off + n > this.start + this.len) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n);
      const want = Math.min(this.buf.length, this.size - off);
      const { bytesRead } = await this.fh.read(this.buf, 0, want, off);
      if (bytesRead < n) fail(`read ${bytesRead} of ${n} bytes: the file changed`, 'file', off);
      this.start = off;
      this.len = bytesRead;
    }
    return this.buf.subarray(off - this.start, off - this.start + n);
  }
}

function readMoov(moov: Buffer, base: number): { movieTimescale: number; tracks: Map<number, FragTrack> } {
  const kids = boxesIn(moov, 8, moov.length, base, 'moov');
  const mvhd = must(kids, 'mvhd', 'moov', base, 0);
  const movieTimescale = readUint(moov, mvhd.body + (moov[mvhd.body] === 1 ? 20 : 12), 4, 'mvhd', base);
  const mvex = must(kids, 'mvex', 'moov', base, 0);
  const trex = new Map<number, FragTrack['trex']>();
  for (const t of boxesIn(moov, mvex.body, mvex.end, base, 'mvex')) {
    if (t.type !== 'trex') continue;
    const w = (i: number) => readUint(moov, t.body + 4 + 4 * i, 4, 'trex', base);
    trex.set(w(0), { sdi: w(1), dur: w(2), size: w(3), flags: w(4) });
  }
  const tracks = new Map<number, FragTrack>();
  for (const trak of kids) {
    if (trak.type !== 'trak') continue;
    const tk = boxesIn(moov, trak.body, trak.end, base, 'trak');
    const tkhd = must(tk, 'tkhd', 'trak', base, trak.start);
    const id = readUint(moov, tkhd.body + 4 + (moov[tkhd.body] === 1 ? 16 : 8), 4, 'tkhd', base);
    const mdia = must(tk, 'mdia', 'trak', base, trak.start);
    const mdhd = must(boxesIn(moov, mdia.body, mdia.end, base, 'mdia'), 'mdhd', 'mdia', base, mdia.start);
    const timescale = readUint(moov, mdhd.body + (moov[mdhd.body] === 1 ? 20 : 12), 4, 'mdhd', base);
    const minf = must(boxesIn(moov, mdia.body, mdia.end, base, 'mdia'), 'minf', 'mdia', base, mdia.start);
    const stbl = must(boxesIn(moov, minf.body, minf.end, base, 'minf'), 'stbl', 'minf', base, minf.start);
    const stsz = only(boxesIn(moov, stbl.body, stbl.end, base, 'stbl'), 'stsz', base);
    if (stsz && readUint(moov, stsz.body + 8, 4, 'stsz', base) > 0) fail(`track ${id} has samples in the moov too (only fragments are read)`, 'stsz', base + stsz.start);
    const defaults = trex.get(id);
    if (!defaults) fail(`track ${id} has no trex`, 'mvex', base + mvex.start);
    if (tracks.has(id)) fail(`two traks with track_ID ${id}`, 'trak', base + trak.start);
    if (timescale === 0 || movieTimescale === 0) fail('a timescale of 0', 'mdhd', base + mdhd.start);
    tracks.set(id, {
      id, timescale, trak: moov.subarray(trak.start, trak.end), edit: readEdit(moov, tk, base), trex: defaults,
      firstDts: 0, nextDts: 0, dur: [], size: [], cto: [], sync: [], chunks: [],
    });
  }
  return { movieTimescale, tracks };
}

/** An input edit list: at most one empty edit, then one media edit at rate 1; anything else throws. */
function readEdit(moov: Buffer, trakKids: readonly BoxRef[], base: number): FragTrack['edit'] {
  const edts = only(trakKids, 'edts', base);
  if (!edts) return null;
  const elst = only(boxesIn(moov, edts.body, edts.end, base, 'edts'), 'elst', base);
  if (!elst) return null;
  const v1 = moov[elst.body] === 1;
  const n = readUint(moov, elst.body + 4, 4, 'elst', base);
  let empty = 0;
  let media: number | null = null;
  for (let i = 0, at = elst.body + 8; i < n; i++, at += v1 ? 20 : 12) {
    const dur = readUint(moov, at, v1 ? 8 : 4, 'elst', base);
    const time = v1 ? Number(moov.readBigInt64BE(at + 8)) : readUint(moov, at + 4, 4, 'elst', base) | 0;
    const rate = readUint(moov, at + (v1 ? 16 : 8), 4, 'elst', base);
    if (time === -1 && media === null) empty += dur;
    else if (media === null && rate === 0x10000) media = time;
    else fail('an edit list with more than one media edit or a rate other than 1 is not supported', 'elst', base + elst.start);
  }
  return media === null ? null : { empty, mediaTime: media };
}

function readMoof(moof: Buffer, base: number, tracks: Map<number, FragTrack>): void {
  let prevEnd = base; // data of a traf without a base offset follows the previous traf's (first: the moof)
  for (const traf of boxesIn(moof, 8, moof.length, base, 'moof')) {
    if (traf.type === 'mfhd') continue;
    if (traf.type !== 'traf') fail(`unexpected ${traf.type} in moof`, traf.type, base + traf.start);
    const kids = boxesIn(moof, traf.body, traf.end, base, 'traf');
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
    t.cto.push(cto);
    t.sync.push(!(sflags & NON_SYNC));
    t.nextDts += dur;
    bytes += size;
  }
  if (count > 0) {
    if (src < 0) fail(`track ${t.id}: negative data offset`, 'trun', base + trun.start);
    t.chunks.push({ src, size: bytes, samples: count, sdi: c.sdi });
  }
  return src + bytes;
}
