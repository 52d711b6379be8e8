import { boxHeader, makeBox, makeFullBox } from './boxes';
import { appendPiece, type Piece } from './layout';
import { ftyp, mvhd } from './movie-boxes';
import type { MovieTrack } from './movie-track';
import { trackEdits } from './mp4-plan';
import { stsdBox } from './sample-table';
import { buildTrak } from './track';

/** One fragment of the stream: moof + mdat header, then the media bytes read from the sources. */
export interface Fmp4Fragment {
  readonly head: Buffer;
  /** the source bytes of its media (`out`: offset after head) */
  readonly ranges: Piece[];
  /** bytes of media after head */
  readonly dataLen: number;
}

const SYNC_FLAGS = 0x02000000; // sample_depends_on = 2 (an I-frame)
const NON_SYNC_FLAGS = 0x01010000; // depends on others, sample_is_non_sync_sample

/** The init segment: ftyp + moov (empty sample tables, an mvex with one trex per track, and mehd: the whole duration). */
export function fmp4Init(tracks: readonly MovieTrack[]): Buffer {
  let durationMs = 0;
  for (const t of tracks) durationMs = Math.max(durationMs, trackEdits(t).durationMs);
  const empty = (type: string, words: number) => makeFullBox(type, 0, 0, Buffer.alloc(words * 4));
  const traks = tracks.map((t, ti) => {
    const stbl = makeBox('stbl', stsdBox(t.entries), empty('stts', 1), empty('stsc', 1), empty('stsz', 2), empty('stco', 1));
    const edits = t.cts0 > 0 ? [[0, t.cts0 - (t.dts[0] ?? 0)] as const] : null;
    return buildTrak({ template: t.template, trackId: ti + 1, duration: 0, mediaDuration: 0, edits, stbl });
  });
  const trex = tracks.map((_t, ti) => {
    const b = Buffer.alloc(20);
    b.writeUInt32BE(ti + 1, 0);
    b.writeUInt32BE(1, 4);
    return makeFullBox('trex', 0, 0, b);
  });
  const mehd = Buffer.alloc(8);
  mehd.writeBigUInt64BE(BigInt(Math.round(durationMs)), 0);
  return Buffer.concat([ftyp(true), makeBox('moov', mvhd(durationMs, tracks.length + 1), ...traks, makeBox('mvex', makeFullBox('mehd', 1, 0, mehd), ...trex))]);
}

/** [first, count) of one track in one fragment. */
interface Part {
  readonly t: number;
  readonly first: number;
  count: number;
}

/**
 * The fragments of the stream, one per source file and second of the answer's timeline (a fragment never
 * spans two files), produced lazily so the first can be sent before the last is planned.
 */
export function* fmp4Fragments(tracks: readonly MovieTrack[], windowS = 1): Generator<Fmp4Fragment> {
  const pos = tracks.map(() => 0);
  for (let seq = 1; seq < 100_000_000; seq++) {
    // the next fragment: the earliest (file, window) among the tracks' next samples
    let best: { file: number; win: number } | null = null;
    tracks.forEach((t, ti) => {
      const i = pos[ti] ?? 0;
      if (i >= t.dts.length) return;
      const key = { file: t.file[i] ?? 0, win: Math.floor((t.dts[i] ?? 0) / t.timescale / windowS) };
      if (!best || key.file < best.file || (key.file === best.file && key.win < best.win)) best = key;
    });
    const b = best as { file: number; win: number } | null;
    if (!b) return;
    const parts: Part[] = [];
    tracks.forEach((t, ti) => {
      const first = pos[ti] ?? 0;
      let i = first;
      while (i < t.dts.length && t.file[i] === b.file && Math.floor((t.dts[i] ?? 0) / t.timescale / windowS) <= b.win && (i === first || t.sdi[i] === t.sdi[first])) i++;
      if (i > first) parts.push({ t: ti, first, count: i - first });
      pos[ti] = i;
    });
    yield fragment(tracks, parts, seq);
  }
}

function fragment(tracks: readonly MovieTrack[], parts: readonly Part[], seq: number): Fmp4Fragment {
  const ranges: Piece[] = [];
  const trafs: Array<{ part: Part; dataAt: number }> = [];
  let dataLen = 0;
  for (const p of parts) {
    const t = tracks[p.t] as MovieTrack;
    trafs.push({ part: p, dataAt: dataLen });
    for (let i = p.first; i < p.first + p.count; i++) {
      const len = t.size[i] ?? 0;
      appendPiece(ranges, t.file[i] ?? 0, t.src[i] ?? 0, len, dataLen);
      dataLen += len;
    }
  }
  const build = (moofLen: number) => {
    const mfhd = Buffer.alloc(4);
    mfhd.writeUInt32BE(seq, 0);
    const bodies = trafs.map(({ part, dataAt }) => traf(tracks[part.t] as MovieTrack, part, moofLen + 8 + dataAt));
    return makeBox('moof', makeFullBox('mfhd', 0, 0, mfhd), ...bodies);
  };
  const probe = build(0);
  const moof = build(probe.length);
  return { head: Buffer.concat([moof, boxHeader('mdat', dataLen)]), ranges, dataLen };
}

function traf(t: MovieTrack, p: Part, dataOffset: number): Buffer {
  const tfhd = Buffer.alloc(8);
  tfhd.writeUInt32BE(p.t + 1, 0);
  tfhd.writeUInt32BE(t.sdi[p.first] ?? 1, 4);
  const tfdt = Buffer.alloc(8);
  tfdt.writeBigUInt64BE(BigInt(Math.max(0, t.dts[p.first] ?? 0)), 0);
  let withCts = false;
  let negative = false;
  for (let i = p.first; i < p.first + p.count; i++) {
    const c = t.cts[i] ?? 0;
    if (c !== 0) withCts = true;
    if (c < 0) negative = true;
  }
  const per = withCts ? 16 : 12;
  const trun = Buffer.alloc(8 + p.count * per);
  trun.writeUInt32BE(p.count, 0);
  trun.writeInt32BE(dataOffset, 4);
  for (let k = 0; k < p.count; k++) {
    const i = p.first + k;
    const at = 8 + k * per;
    trun.writeUInt32BE(t.dur[i] ?? 0, at);
    trun.writeUInt32BE(t.size[i] ?? 0, at + 4);
    trun.writeUInt32BE(t.sync[i] ? SYNC_FLAGS : NON_SYNC_FLAGS, at + 8);
    if (withCts) trun.writeInt32BE(t.cts[i] ?? 0, at + 12);
  }
  const trunFlags = 0x1 | 0x100 | 0x200 | 0x400 | (withCts ? 0x800 : 0);
  return makeBox(
    'traf',
    makeFullBox('tfhd', 0, 0x20000 | 0x2, tfhd),
    makeFullBox('tfdt', 1, 0, tfdt),
    makeFullBox('trun', negative ? 1 : 0, trunFlags, trun),
  );
}
