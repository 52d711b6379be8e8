import { randomBytes } from 'node:crypto';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError, errMessage } from '../lib/errors';
import { badMp4, type Box, children, makeBox, readAt, readTopBoxes } from './boxes';
import { cutEdit, type CutEdit, samplePts, type SampleRange, selectOverlap, selectVideo } from './cut-range';
import { buildSampleTable, type OutChunk } from './sample-table';
import { buildTrack, parseTrack, readHeaderTimes, type Track, trackDuration, withHeaderDuration } from './track';

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
  chunks: OutChunk[];
}

/** A run of samples of one track that sit back to back in the source: becomes one output chunk. */
interface Run {
  kept: KeptTrack;
  first: number;
  count: number;
  src: number;
  len: number;
}

/** Hooks of cutMp4. */
export interface CutOptions {
  /** called with the cut's size before anything is written; may refuse (throw) or make room */
  reserve?: (bytes: number) => Promise<void> | void;
}

const MAX_RUN_SAMPLES = 1024;
const COPY_BUF = 4 * 1024 * 1024;

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
      throw badMp4(`${errMessage(err)} (while reading ${name})`);
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
  ranges: Array<{ src: number; len: number }>;
  dataLen: number;
  t0: number;
  durS: number;
}

async function planCut(fh: FileHandle, name: string, startS: number | null, endS: number | null): Promise<CutPlan> {
  const { size } = await fh.stat();
  const top = await readTopBoxes(fh, size);
  if (top.some((b) => b.type === 'moof')) throw badMp4(`${name} is a fragmented MP4 (moof); only a plain MP4 can be cut`);
  const moovRef = top.find((b) => b.type === 'moov');
  if (!moovRef) throw badMp4(`no moov box in ${name} (top-level boxes: ${top.slice(0, 10).map((b) => b.type.replace(/[^\x20-\x7e]/g, '?')).join(',')})`);
  if (moovRef.size > 512 * 1024 * 1024) throw badMp4(`moov of ${moovRef.size} bytes is too large`);
  const moov = await readAt(fh, moovRef.start + moovRef.headerLen, moovRef.size - moovRef.headerLen);
  const ftypRef = top.find((b) => b.type === 'ftyp');
  const ftyp = ftypRef && ftypRef.size <= 4096 ? await readAt(fh, ftypRef.start, ftypRef.size) : defaultFtyp();

  const kids = children(moov);
  if (kids.some((b) => b.type === 'mvex')) throw badMp4(`${name} is a fragmented MP4 (mvex); only a plain MP4 can be cut`);
  const mvhd = kids.find((b) => b.type === 'mvhd');
  if (!mvhd) throw badMp4('moov without mvhd');
  const movie = readHeaderTimes(mvhd);
  if (!(movie.timescale > 0)) throw badMp4(`movie timescale ${movie.timescale}`);
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
      if ((t.offset[i] ?? 0) + (t.size[i] ?? 0) > size) throw badMp4(`truncated: sample ${i} of track ${k.track.handler} lies past the end of the file (${size} bytes)`);
    }
  }
  const runs = layoutRuns(kept);
  const dataLen = runs.reduce((n, r) => n + r.len, 0);

  // the moov size does not depend on the offsets' values, only on stco vs co64: build once to measure
  const mdatHdrLen = dataLen + 8 > 0xffffffff ? 16 : 8;
  let co64 = false;
  let moovOut = buildMoov(kids, kept, movie.timescale, mvhd, co64);
  if (ftyp.length + moovOut.length + mdatHdrLen + dataLen > 0xffffffff) {
    co64 = true;
    moovOut = buildMoov(kids, kept, movie.timescale, mvhd, co64);
  }
  const dataStart = ftyp.length + moovOut.length + mdatHdrLen;
  for (const k of kept) for (const c of k.chunks) c.offset += dataStart;
  moovOut = buildMoov(kids, kept, movie.timescale, mvhd, co64);

  const mdatHdr = Buffer.alloc(mdatHdrLen);
  if (mdatHdrLen === 16) {
    mdatHdr.writeUInt32BE(1, 0);
    mdatHdr.writeBigUInt64BE(BigInt(dataLen + 16), 8);
  } else mdatHdr.writeUInt32BE(dataLen + 8, 0);
  mdatHdr.write('mdat', 4, 'latin1');

  const durS = Math.max(...kept.map((k) => k.edit.emptyS + k.edit.segmentS));
  return { header: Buffer.concat([ftyp, moovOut, mdatHdr]), ranges: coalesce(runs), dataLen, t0, durS };
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
    kept.push({ track: video, range, edit, chunks: [] });
  }
  for (const t of tracks) {
    if (t === video || t.table.count === 0) continue;
    const range = selectOverlap(t.table, t.timing, t0, tEnd, t.handler === 'soun');
    const edit = cutEdit(t.table, t.timing, range, t0, tEnd);
    if (edit) kept.push({ track: t, range, edit, chunks: [] });
  }
  return { kept, t0 };
}

/** Group kept samples into runs contiguous in the source, in source file order; fills each track's chunks (offsets relative to the mdat data). */
function layoutRuns(kept: KeptTrack[]): Run[] {
  const runs: Run[] = [];
  for (const k of kept) {
    const t = k.track.table;
    let cur: Run | null = null;
    for (let i = k.range.a; i < k.range.b; i++) {
      const off = t.offset[i] ?? 0;
      const len = t.size[i] ?? 0;
      if (cur && cur.src + cur.len === off && cur.count < MAX_RUN_SAMPLES && t.sdi[i] === t.sdi[cur.first]) {
        cur.count++;
        cur.len += len;
      } else {
        cur = { kept: k, first: i, count: 1, src: off, len };
        runs.push(cur);
      }
    }
  }
  runs.sort((x, y) => x.src - y.src);
  let at = 0;
  for (const r of runs) {
    r.kept.chunks.push({ first: r.first, count: r.count, offset: at });
    at += r.len;
  }
  for (const k of kept) k.chunks.sort((x, y) => x.first - y.first);
  return runs;
}

/** Source byte ranges to copy, in output order, merged where they touch. */
function coalesce(runs: Run[]): Array<{ src: number; len: number }> {
  const out: Array<{ src: number; len: number }> = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.src + last.len === r.src) last.len += r.len;
    else out.push({ src: r.src, len: r.len });
  }
  return out;
}

function buildMoov(kids: Box[], kept: KeptTrack[], movieTimescale: number, mvhd: Box, co64: boolean): Buffer {
  const duration = Math.max(...kept.map((k) => trackDuration(k.edit, movieTimescale)));
  const parts: Buffer[] = [];
  const byTrak = new Map(kept.map((k) => [k.track.trak, k]));
  for (const b of kids) {
    if (b.type === 'mvhd') parts.push(withHeaderDuration(mvhd, duration));
    else if (b.type === 'trak') {
      const k = byTrak.get(b.body);
      if (!k) continue;
      const t = k.track.table;
      let mediaDur = 0;
      for (let i = k.range.a; i < k.range.b; i++) mediaDur += t.dur[i] ?? 0;
      const stbl = buildSampleTable(t, k.range.a, k.range.b, k.chunks, co64);
      parts.push(buildTrack(k.track, stbl, k.edit, mediaDur, movieTimescale));
    } else parts.push(b.raw);
  }
  return makeBox('moov', ...parts);
}

function defaultFtyp(): Buffer {
  return makeBox('ftyp', Buffer.from('isom\0\0\x02\0isomiso2avc1mp41', 'latin1'));
}

/**
 * Write the header, then copy the ranges with large positioned reads, reading the next while writing the last.
 * Writes a new hidden file next to dst (created exclusively: never through a symlink or over another file), then
 * links it as dst, which fails if anything stands at dst (EEXIST): nothing is ever overwritten.
 */
async function writeOut(src: FileHandle, dst: string, header: Buffer, ranges: Array<{ src: number; len: number }>): Promise<void> {
  const partPath = join(dirname(dst), `.cut-${process.pid}-${randomBytes(6).toString('hex')}.part`);
  const out = await open(partPath, 'wx', 0o644);
  let ok = false;
  try {
    await out.write(header, 0, header.length, 0);
    let pos = header.length;
    const bufs = [Buffer.allocUnsafe(COPY_BUF), Buffer.allocUnsafe(COPY_BUF)];
    let pending: Promise<unknown> = Promise.resolve();
    let which = 0;
    for (const r of ranges) {
      for (let done = 0; done < r.len; ) {
        const n = Math.min(COPY_BUF, r.len - done);
        const buf = bufs[which] as Buffer;
        which ^= 1;
        const data = await readAt(src, r.src + done, n, buf);
        await pending;
        pending = out.write(data, 0, n, pos);
        pos += n;
        done += n;
      }
    }
    await pending;
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
