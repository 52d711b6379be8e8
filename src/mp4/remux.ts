import { open, rm, type FileHandle } from 'node:fs/promises';
import { box, boxesIn, fail, must } from './remux-boxes';
import { readFragments, type FragFile, type FragTrack } from './fragments';
import { buildTrak, presentation, withDuration } from './remux-tables';

/** Options of remuxFmp4. */
export interface Fmp4RemuxOptions {
  /** moov before mdat (progressive download); else moov after mdat */
  readonly moovFirst: boolean;
}

/** What remuxFmp4 wrote. */
export interface Fmp4RemuxResult {
  /** samples of all kept tracks */
  readonly samples: number;
  /** movie duration (mvhd) in ms */
  readonly durationMs: number;
}

const BLOCK = 1024 * 1024;

/** A source byte range and where it lands in the output mdat payload. */
interface Range {
  src: number;
  size: number;
}

/**
 * Rewrite a fragmented MP4 (`src`, complete boxes only) into a plain MP4 `dst`: ftyp, moov, one mdat, the
 * media bytes copied in ≤ 1 MiB blocks. Tracks without samples are dropped. Anything it does not understand
 * throws an Error naming the box and offset (and `dst` is removed): the caller then remuxes another way.
 * Does not fsync `dst`.
 */
export async function remuxFmp4(src: string, dst: string, o: Fmp4RemuxOptions): Promise<Fmp4RemuxResult> {
  const fh = await open(src, 'r');
  try {
    const { size } = await fh.stat();
    const f = await readFragments(fh, size);
    const tracks = f.tracks.filter((t) => t.dur.length > 0);
    if (tracks.length === 0) fail('no track holds a sample', 'moof', 0);
    const { ranges, rel, dataBytes } = layout(tracks);
    const mdatHead = dataBytes + 8 > 0xffffffff ? 16 : 8;
    const probe = buildMoov(f, tracks, rel, 0, false).moov.length;
    const co64 = f.ftyp.length + probe + mdatHead + dataBytes > 0xffffffff;
    const moovLen = co64 ? buildMoov(f, tracks, rel, 0, true).moov.length : probe;
    const dataStart = f.ftyp.length + (o.moovFirst ? moovLen : 0) + mdatHead;
    const { moov, duration } = buildMoov(f, tracks, rel, dataStart, co64);
    if (moov.length !== moovLen) fail('moov size changed between passes', 'moov', 0);
    const out = await open(dst, 'w');
    try {
      await out.write(f.ftyp);
      if (o.moovFirst) await out.write(moov);
      await out.write(mdatHeader(dataBytes, mdatHead));
      await copyRanges(fh, out, ranges);
      if (!o.moovFirst) await out.write(moov);
    } catch (err) {
      await out.close();
      await rm(dst, { force: true });
      throw err;
    }
    await out.close();
    return { samples: tracks.reduce((n, t) => n + t.dur.length, 0), durationMs: Math.round((duration * 1000) / f.movieTimescale) };
  } finally {
    await fh.close();
  }
}

/** Output order of the chunks (source order), each chunk's offset in the mdat payload, the ranges to copy. */
function layout(tracks: readonly FragTrack[]): { ranges: Range[]; rel: Map<FragTrack, number[]>; dataBytes: number } {
  const all = tracks.flatMap((t) => t.chunks.map((c, i) => ({ t, i, src: c.src, size: c.size })));
  all.sort((a, b) => a.src - b.src);
  const rel = new Map<FragTrack, number[]>(tracks.map((t) => [t, new Array<number>(t.chunks.length).fill(0)]));
  const ranges: Range[] = [];
  let pos = 0;
  let prevEnd = -1;
  for (const c of all) {
    if (c.src < prevEnd) fail(`track ${c.t.id}: sample data at ${c.src} overlaps other samples (ending at ${prevEnd})`, 'trun', c.src);
    const last = ranges[ranges.length - 1];
    if (last && last.src + last.size === c.src) last.size += c.size;
    else ranges.push({ src: c.src, size: c.size });
    const offs = rel.get(c.t);
    if (offs) offs[c.i] = pos;
    pos += c.size;
    prevEnd = c.src + c.size;
  }
  return { ranges, rel, dataBytes: pos };
}

/** The output moov with chunk offsets from `dataStart`, and the movie duration (movie timescale). */
function buildMoov(f: FragFile, tracks: readonly FragTrack[], rel: Map<FragTrack, number[]>, dataStart: number, co64: boolean): { moov: Buffer; duration: number } {
  const built = new Map<number, Buffer>();
  let duration = 0;
  // like mp4mux: the earliest track starts the movie at 0, the others keep their offset to it (A/V sync)
  const pres = tracks.map((t) => presentation(t, f.movieTimescale));
  const shift = Math.min(...pres.map((p) => p.presStart));
  for (const [i, t] of tracks.entries()) {
    const p = pres[i];
    if (!p) continue;
    const b = buildTrak(t, p, shift, (rel.get(t) ?? []).map((r) => dataStart + r), co64);
    built.set(t.id, b.trak);
    duration = Math.max(duration, b.movieDuration);
  }
  const kids = boxesIn(f.moov, 8, f.moov.length, 0, 'moov');
  const mvhd = must(kids, 'mvhd', 'moov', 0, 0);
  const parts: Buffer[] = [];
  let trakIndex = 0;
  for (const k of kids) {
    const raw = f.moov.subarray(k.start, k.end);
    if (k.type === 'mvhd') parts.push(withDuration(raw, { body: mvhd.body - mvhd.start }, 16, 24, duration, 'mvhd'));
    else if (k.type === 'trak') {
      const t = f.tracks[trakIndex++];
      const b = t && built.get(t.id);
      if (b) parts.push(b);
    } else if (k.type !== 'mvex') parts.push(raw);
  }
  return { moov: box('moov', ...parts), duration };
}

function mdatHeader(dataBytes: number, head: number): Buffer {
  const b = Buffer.alloc(head);
  if (head === 16) {
    b.writeUInt32BE(1, 0);
    b.writeBigUInt64BE(BigInt(dataBytes + 16), 8);
  } else b.writeUInt32BE(dataBytes + 8, 0);
  b.write('mdat', 4, 'latin1');
  return b;
}

/**
 * Copy `ranges` (ascending) of `from` to the current end of `to`: source read in 1 MiB blocks that span the small
 * gaps (moof) between ranges, output gathered in a 1 MiB buffer, so a 10 s file takes a dozen calls, not a hundred.
 */
async function copyRanges(from: FileHandle, to: FileHandle, ranges: readonly Range[]): Promise<void> {
  const inBuf = Buffer.allocUnsafe(BLOCK);
  const outBuf = Buffer.allocUnsafe(BLOCK);
  let inStart = 0;
  let inLen = 0;
  let outLen = 0;
  const flush = async () => {
    for (let w = 0; w < outLen; ) w += (await to.write(outBuf, w, outLen - w)).bytesWritten;
    outLen = 0;
  };
  for (const r of ranges) {
    for (let pos = r.src, end = r.src + r.size; pos < end; ) {
      if (pos < inStart || pos >= inStart + inLen) {
        const want = BLOCK;
        const { bytesRead } = await from.read(inBuf, 0, want, pos);
        if (bytesRead < Math.min(want, end - pos)) fail(`read ${bytesRead} of ${want} bytes: the source changed while remuxing`, 'mdat', pos);
        inStart = pos;
        inLen = bytesRead;
      }
      const n = Math.min(end - pos, inStart + inLen - pos, BLOCK - outLen);
      inBuf.copy(outBuf, outLen, pos - inStart, pos - inStart + n);
      outLen += n;
      pos += n;
      if (outLen === BLOCK) await flush();
    }
  }
  await flush();
}
