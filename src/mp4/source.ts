import { open } from 'node:fs/promises';
import { badMp4, type BoxRef, type ByteReader, children, findBox, readAt } from './boxes';
import type { TrackTiming } from './cut-range';
import type { SampleTable } from './sample-table';
import { parseTrack, readHeaderTimes } from './track';
import { readFragments } from './fragments';
import { presentation } from './remux-tables';

/** One track of a recorded file as playback reads it: its sample table and where it sits on the file's timeline. */
export interface SourceTrack {
  /** hdlr handler type: 'vide', 'soun', ... */
  readonly handler: string;
  /** the trak box body of the source (tkhd, mdia, ... copied into the output) */
  readonly trak: Buffer;
  readonly timing: TrackTiming;
  /** samples in decode order; dts from 0 */
  readonly table: SampleTable;
  /** the sample entries of its stsd, each a whole box */
  readonly entries: readonly Buffer[];
}

/** A file (or an archived object) read by positioned reads, closed when done with. */
export interface SourceHandle extends ByteReader {
  close(): Promise<void>;
}

/** A recorded MP4 opened for playback: plain (finished) or fragmented (being recorded, complete fragments only). */
export interface SourceFile {
  readonly fh: SourceHandle;
  readonly fragmented: boolean;
  readonly tracks: readonly SourceTrack[];
  /** the file's ftyp box, or null */
  readonly ftyp: Buffer | null;
}

/** The sample entries of an stsd box (whole box). */
export function stsdEntries(stsd: Buffer): Buffer[] {
  // box header (8) + version/flags (4) + entry_count (4)
  if (stsd.length < 16) throw badMp4('short stsd');
  const n = stsd.readUInt32BE(12);
  const out = children(stsd.subarray(16)).map((b) => b.raw);
  if (out.length < n) throw badMp4(`stsd says ${n} entries, holds ${out.length}`);
  return out.slice(0, n);
}

/** Open and parse a recorded MP4 (plain or fragmented). The caller closes `fh`. */
export async function openSource(path: string): Promise<SourceFile> {
  const fh = await open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (err) {
    await fh.close();
    throw err;
  }
  return openSourceFrom(fh, size);
}

/** Parse a recorded MP4 of `size` bytes read through `fh` (a file, or an object of the archive). Closes `fh` on error. */
export async function openSourceFrom(fh: SourceHandle, size: number): Promise<SourceFile> {
  try {
    const top = await completeTopBoxes(fh, size);
    const moov = await moovBody(fh, top);
    const fragmented = top.some((b) => b.type === 'moof') || children(moov).some((b) => b.type === 'mvex');
    const ftypRef = top.find((b) => b.type === 'ftyp');
    const ftyp = ftypRef && ftypRef.size <= 4096 ? await readAt(fh, ftypRef.start, ftypRef.size) : null;
    const tracks = fragmented ? await fragmentedTracks(fh, top) : plainTracks(moov);
    return { fh, fragmented, tracks, ftyp };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * The top-level boxes of a file that may still be written: a box running past the end, and a moof whose mdat is
 * not complete, are left out (a recording's last fragment is read once it is flushed whole).
 */
export async function completeTopBoxes(fh: ByteReader, size: number): Promise<BoxRef[]> {
  const boxes: BoxRef[] = [];
  const hdr = Buffer.alloc(16);
  let off = 0;
  for (let i = 0; off + 8 <= size; i++) {
    if (i >= 1_000_000) throw badMp4('more than 1000000 top-level boxes');
    await readAt(fh, off, Math.min(16, size - off), hdr);
    let len = hdr.readUInt32BE(0);
    let headerLen = 8;
    if (len === 1) {
      if (size - off < 16) break;
      len = Number(hdr.readBigUInt64BE(8));
      headerLen = 16;
    } else if (len === 0) len = size - off;
    if (len < headerLen) throw badMp4(`bad box header at ${off}`);
    if (off + len > size) break;
    boxes.push({ type: hdr.toString('latin1', 4, 8), start: off, headerLen, size: len });
    off += len;
  }
  const last = boxes[boxes.length - 1];
  if (last && last.type === 'moof') boxes.pop();
  return boxes;
}

async function moovBody(fh: ByteReader, top: readonly BoxRef[]): Promise<Buffer> {
  const ref = top.find((b) => b.type === 'moov');
  if (!ref) throw badMp4(`no moov box (top-level boxes: ${top.map((b) => b.type).join(',') || 'none'})`);
  if (ref.size > 256 * 1024 * 1024) throw badMp4(`moov of ${ref.size} bytes is too large`);
  return readAt(fh, ref.start + ref.headerLen, ref.size - ref.headerLen);
}

function plainTracks(moov: Buffer): SourceTrack[] {
  const kids = children(moov);
  const mvhd = kids.find((b) => b.type === 'mvhd');
  if (!mvhd) throw badMp4('moov without mvhd');
  const movie = readHeaderTimes(mvhd);
  return kids
    .filter((b) => b.type === 'trak')
    .map((b) => parseTrack(b.body, movie.timescale))
    .filter((t) => t.table.count > 0)
    .map((t) => ({ handler: t.handler, trak: t.trak, timing: t.timing, table: t.table, entries: stsdEntries(t.table.stsd) }));
}

/** Tracks of a fragmented file (the muxer's own, still being written): samples from every complete moof. */
async function fragmentedTracks(fh: ByteReader, top: readonly BoxRef[]): Promise<SourceTrack[]> {
  const last = top[top.length - 1];
  const f = await readFragments(fh, last ? last.start + last.size : 0);
  const withSamples = f.tracks.filter((t) => t.dur.length > 0);
  const pres = withSamples.map((t) => presentation(t, f.movieTimescale));
  const shift = Math.min(...pres.map((p) => p.presStart));
  return withSamples.map((t, k) => {
    const trak = t.trak.subarray(8);
    const hdlr = findBox(trak, ['mdia', 'hdlr']);
    const stsd = findBox(trak, ['mdia', 'minf', 'stbl', 'stsd']);
    if (!hdlr || !stsd) throw badMp4(`track ${t.id} without hdlr or stsd`);
    const n = t.dur.length;
    const table: SampleTable = {
      count: n,
      dts: new Float64Array(n),
      dur: Uint32Array.from(t.dur),
      cts: Int32Array.from(t.cto),
      hasCtts: t.cto.some((c) => c !== 0),
      size: Uint32Array.from(t.size),
      offset: new Float64Array(n),
      sync: t.sync.every((s) => s) ? null : Uint8Array.from(t.sync, (s) => (s ? 1 : 0)),
      sdi: new Uint32Array(n),
      stsd: stsd.raw,
    };
    for (let i = 1; i < n; i++) table.dts[i] = (table.dts[i - 1] ?? 0) + (table.dur[i - 1] ?? 0);
    let i = 0;
    for (const c of t.chunks) {
      let off = c.src;
      for (let k2 = 0; k2 < c.samples && i < n; k2++, i++) {
        table.offset[i] = off;
        table.sdi[i] = c.sdi;
        off += table.size[i] ?? 0;
      }
    }
    const p = pres[k];
    const timing: TrackTiming = { timescale: t.timescale, mediaTime: p ? p.mediaTime : 0, emptyS: p ? (p.presStart - shift) / f.movieTimescale : 0 };
    return { handler: hdlr.body.length >= 12 ? hdlr.body.toString('latin1', 8, 12) : '', trak, timing, table, entries: stsdEntries(stsd.raw) };
  });
}
