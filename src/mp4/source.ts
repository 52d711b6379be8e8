import { open } from 'node:fs/promises';
import { bodyOf, type BoxRef, children, findBox } from './boxes';
import type { TrackTiming } from './cut-range';
import { fail } from './format-error';
import { presentation, readFragments } from './fragments';
import { BoxFile, type ByteReader, readAt } from './reader';
import { type SampleTable, stsdEntries } from './sample-table';
import { handlerOf, parseTrack, readHeaderTimes } from './track';

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
  for await (const b of new BoxFile(fh, size).boxes()) if (b.end <= size) boxes.push(b);
  const last = boxes[boxes.length - 1];
  if (last && last.type === 'moof') boxes.pop();
  return boxes;
}

async function moovBody(fh: ByteReader, top: readonly BoxRef[]): Promise<Buffer> {
  const ref = top.find((b) => b.type === 'moov');
  if (!ref) fail(`no moov box (top-level boxes: ${top.map((b) => b.type).join(',') || 'none'})`);
  if (ref.size > 256 * 1024 * 1024) fail(`moov of ${ref.size} bytes is too large`);
  return readAt(fh, ref.body, ref.end - ref.body);
}

function plainTracks(moov: Buffer): SourceTrack[] {
  const kids = children(moov);
  const mvhd = kids.find((b) => b.type === 'mvhd');
  if (!mvhd) fail('moov without mvhd');
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
  const f = await readFragments(fh, last ? last.end : 0);
  const withSamples = f.tracks.filter((t) => t.dur.length > 0);
  const pres = withSamples.map((t) => presentation(t, f.movieTimescale));
  const shift = Math.min(...pres.map((p) => p.presStart));
  return withSamples.map((t, k) => {
    const trak = bodyOf(t.trak);
    const hdlr = findBox(trak, ['mdia', 'hdlr']);
    if (!hdlr) fail(`track ${t.id} without hdlr`);
    const n = t.dur.length;
    const dts = new Float64Array(n);
    for (let i = 1; i < n; i++) dts[i] = (dts[i - 1] ?? 0) + (t.dur[i - 1] ?? 0);
    const table: SampleTable = {
      count: n,
      dts,
      dur: Uint32Array.from(t.dur),
      cts: Int32Array.from(t.cts),
      hasCtts: t.cts.some((c) => c !== 0),
      size: Uint32Array.from(t.size),
      offset: Float64Array.from(t.offset),
      sync: t.sync.every((s) => s) ? null : Uint8Array.from(t.sync, (s) => (s ? 1 : 0)),
      sdi: Uint32Array.from(t.sdi),
      stsd: t.stsd,
    };
    const p = pres[k];
    const timing: TrackTiming = { timescale: t.timescale, mediaTime: p ? p.mediaTime : 0, emptyS: p ? (p.presStart - shift) / f.movieTimescale : 0 };
    return { handler: handlerOf(hdlr), trak, timing, table, entries: stsdEntries(t.stsd) };
  });
}
