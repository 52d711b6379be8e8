import { randomBytes } from 'node:crypto';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError, errMessage } from '../lib/errors';
import { type BoxRef, children } from './boxes';
import { copyRanges } from './copy';
import { cutEdit, type CutEdit, samplePts, type SampleRange, selectOverlap, selectVideo } from './cut-range';
import { fail, Mp4FormatError, printable } from './format-error';
import { layoutMedia, type Piece } from './layout';
import { ftyp as defaultFtyp, placeMedia, rebuildMoov } from './movie-boxes';
import { BoxFile, readAt } from './reader';
import { buildSampleTable } from './sample-table';
import { buildTrak, type Edit, parseTrack, readHeaderTimes, type Track, withDuration } from './track';

/** What a cut produced: its span on the source timeline (seconds) and its size. */
export interface CutResult {
  startS: number;
  endS: number;
  bytes: number;
}

interface KeptTrack {
  track: Track;
  range: SampleRange;
  edit: CutEdit;
}

/** Hooks of cutMp4. */
export interface CutOptions {
  /** called with the cut's size before anything is written; may refuse (throw) or make room */
  reserve?: (bytes: number) => Promise<void> | void;
}

const COPY_BLOCK = 4 * 1024 * 1024;

/**
 * Cut [startS, endS) of a non-fragmented MP4 into dst without re-encoding: from the video keyframe at or before
 * startS (null = 0) to endS (null = end), moov before mdat. Reads the top-level box headers, the moov and the
 * mdat bytes of the kept samples only. Writes dst.part, then renames it.
 */
export async function cutMp4(src: string, dst: string, startS: number | null, endS: number | null, opts: CutOptions = {}): Promise<CutResult> {
  const name = basename(src);
  if (endS !== null && endS <= (startS ?? 0)) throw new AppError('BAD_REQUEST', `end (${endS}) must be after start (${startS ?? 0})`);
  const fh = await open(src, 'r');
  try {
    const plan = await planCut(fh, name, startS, endS).catch((err: unknown) => {
      // an I/O error is ours (500); anything else thrown while parsing means the file is not what it claims
      if (err instanceof AppError || (err as NodeJS.ErrnoException).syscall !== undefined) throw err;
      throw new Mp4FormatError(`${errMessage(err)} (while reading ${name})`);
    });
    await opts.reserve?.(plan.header.length + plan.dataLen);
    await writeOut(fh, dst, plan.header, plan.ranges);
    return { startS: plan.t0, endS: plan.t0 + plan.durS, bytes: plan.header.length + plan.dataLen };
  } finally {
    await fh.close();
  }
}

/** What a cut will write: the header (ftyp, moov, mdat header) and the source ranges of the mdat data. */
interface CutPlan {
  header: Buffer;
  ranges: Piece[];
  dataLen: number;
  t0: number;
  durS: number;
}

async function planCut(fh: FileHandle, name: string, startS: number | null, endS: number | null): Promise<CutPlan> {
  const { size } = await fh.stat();
  const top = await topBoxes(fh, size);
  if (top.some((b) => b.type === 'moof')) fail(`${name} is a fragmented MP4 (moof); only a plain MP4 can be cut`);
  const moovRef = top.find((b) => b.type === 'moov');
  if (!moovRef) fail(`no moov box in ${name} (top-level boxes: ${top.slice(0, 10).map((b) => printable(b.type)).join(',')})`);
  if (moovRef.size > 512 * 1024 * 1024) fail(`moov of ${moovRef.size} bytes is too large`);
  const moov = await readAt(fh, moovRef.body, moovRef.end - moovRef.body);
  const ftypRef = top.find((b) => b.type === 'ftyp');
  const ftyp = ftypRef && ftypRef.size <= 4096 ? await readAt(fh, ftypRef.start, ftypRef.size) : defaultFtyp(false);

  const kids = children(moov, 'moov');
  if (kids.some((b) => b.type === 'mvex')) fail(`${name} is a fragmented MP4 (mvex); only a plain MP4 can be cut`);
  const mvhd = kids.find((b) => b.type === 'mvhd');
  if (!mvhd) fail('moov without mvhd');
  const movie = readHeaderTimes(mvhd);
  const tracks = kids.filter((b) => b.type === 'trak').map((b) => parseTrack(b.body, movie.timescale));
  const fileDurationS = movie.duration / movie.timescale;
  const from = startS ?? 0;
  if (from >= fileDurationS) {
    throw new AppError('BAD_REQUEST', `start ${from} s is beyond the end of ${name} (duration ${fileDurationS.toFixed(3)} s)`);
  }

  const { kept, t0 } = selectTracks(tracks, from, endS, fileDurationS, name);
  if (kept.length === 0) throw new AppError('BAD_REQUEST', `nothing of ${name} is shown between ${from} s and ${endS ?? 'the end'}`);
  for (const k of kept) {
    const t = k.track.table;
    for (let i = k.range.a; i < k.range.b; i++) {
      if ((t.offset[i] ?? 0) + (t.size[i] ?? 0) > size) fail(`truncated: sample ${i} of track ${k.track.handler} lies past the end of the file (${size} bytes)`);
    }
  }
  const media = layoutMedia(kept.map((k) => ({ ...k.range, offset: k.track.table.offset, size: k.track.table.size, sdi: k.track.table.sdi })));
  const movieDuration = Math.max(...kept.map((k) => trackDuration(k.edit, movie.timescale)));
  const byTrak = new Map(kept.map((k, n) => [k.track.trak, n]));
  const placed = placeMedia(ftyp.length, media.dataLen, true, (dataStart, co64) =>
    rebuildMoov(kids, withDuration(mvhd, movieDuration), (body) => {
      const n = byTrak.get(body);
      const k = n === undefined ? undefined : kept[n];
      if (!k) return null;
      const t = k.track.table;
      let mediaDuration = 0;
      for (let i = k.range.a; i < k.range.b; i++) mediaDuration += t.dur[i] ?? 0;
      const chunks = (media.chunks[n ?? 0] ?? []).map((c) => ({ ...c, offset: c.offset + dataStart }));
      const stbl = buildSampleTable(t, k.range.a, k.range.b, chunks, co64);
      return buildTrak({ template: k.track.trak, duration: trackDuration(k.edit, movie.timescale), mediaDuration, edits: edits(k.edit, movie.timescale), stbl });
    }),
  );
  const durS = Math.max(...kept.map((k) => k.edit.emptyS + k.edit.segmentS));
  return { header: Buffer.concat([ftyp, placed.moov, placed.mdatHeader]), ranges: media.pieces, dataLen: media.dataLen, t0, durS };
}

/**
 * The top-level boxes of a file to cut. A file cut short (copy interrupted, disk full) keeps its last box when
 * that is the mdat: samples past the end are refused later, the ones before it can still be cut.
 */
async function topBoxes(fh: FileHandle, size: number): Promise<BoxRef[]> {
  const boxes: BoxRef[] = [];
  for await (const b of new BoxFile(fh, size).boxes(100_000)) {
    if (b.end <= size) boxes.push(b);
    else if (b.type === 'mdat') boxes.push({ ...b, end: size, size: size - b.start });
    else fail(`truncated: the ${printable(b.type)} box at byte ${b.start} declares ${b.size} bytes, the file has ${size - b.start} left`);
  }
  return boxes;
}

/** The edit list of a cut track (movie timescale): an empty edit first when it starts after the cut. */
function edits(edit: CutEdit, movieTimescale: number): Edit[] {
  const out: Edit[] = [];
  const empty = Math.round(edit.emptyS * movieTimescale);
  if (empty > 0) out.push([empty, -1]);
  out.push([Math.max(1, Math.round(edit.segmentS * movieTimescale)), edit.mediaTime]);
  return out;
}

/** Total length of a track in the movie timescale once cut with this edit. */
function trackDuration(edit: CutEdit, movieTimescale: number): number {
  return Math.round(edit.emptyS * movieTimescale) + Math.max(1, Math.round(edit.segmentS * movieTimescale));
}

/** Pick the samples of each track: video sets the span (keyframe start), the others follow it. */
function selectTracks(tracks: Track[], from: number, endS: number | null, fileDurationS: number, name: string): { kept: KeptTrack[]; t0: number } {
  const kept: KeptTrack[] = [];
  const video = tracks.find((t) => t.handler === 'vide' && t.table.count > 0);
  let t0 = from;
  let tEnd = endS ?? fileDurationS;
  if (video) {
    const range = selectVideo(video.table, video.timing, from, endS);
    t0 = samplePts(video.table, video.timing, range.a);
    const edit = cutEdit(video.table, video.timing, range, t0, endS);
    if (!edit) throw new AppError('BAD_REQUEST', `the video of ${name} shows nothing between ${from} s and ${endS ?? 'the end'} s`);
    tEnd = t0 + edit.segmentS;
    kept.push({ track: video, range, edit });
  }
  for (const t of tracks) {
    if (t === video || t.table.count === 0) continue;
    const range = selectOverlap(t.table, t.timing, t0, tEnd, t.handler === 'soun');
    const edit = cutEdit(t.table, t.timing, range, t0, tEnd);
    if (edit) kept.push({ track: t, range, edit });
  }
  return { kept, t0 };
}

/**
 * Write the header, then copy the ranges with large positioned reads, reading the next while writing the last.
 * Writes a new hidden file next to dst (created exclusively: never through a symlink or over another file), then
 * links it as dst, which fails if anything stands at dst (EEXIST): nothing is ever overwritten.
 */
async function writeOut(src: FileHandle, dst: string, header: Buffer, ranges: readonly Piece[]): Promise<void> {
  const partPath = join(dirname(dst), `.cut-${process.pid}-${randomBytes(6).toString('hex')}.part`);
  const out = await open(partPath, 'wx', 0o644);
  let ok = false;
  try {
    await out.write(header, 0, header.length, 0);
    await copyRanges(src, out, ranges, header.length, COPY_BLOCK);
    await out.sync();
    ok = true;
  } finally {
    await out.close();
    if (ok) {
      try {
        await link(partPath, dst);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        throw new AppError('CONFLICT', `another file appeared at ${basename(dst)} while the cut was written; try again`);
      } finally {
        await unlink(partPath).catch(() => undefined);
      }
    } else await unlink(partPath).catch(() => undefined);
  }
}
