import { fail } from './format-error';
import type { OutChunk, Samples } from './sample-table';

/** Samples [a, b) of one track and where their bytes are: `file` (index in the caller's list; absent: one file). */
export interface KeptSamples extends Pick<Samples, 'size' | 'sdi'> {
  readonly offset: ArrayLike<number>;
  readonly file?: ArrayLike<number>;
  readonly a: number;
  readonly b: number;
}

/** Source bytes copied as they are: `len` bytes at `src` of file `file`, at `out` in the output's media data. */
export interface Piece {
  readonly file: number;
  readonly src: number;
  len: number;
  readonly out: number;
}

/** Where kept samples go in one mdat: each track's chunks (offsets from the start of the media data) and the pieces to copy. */
export interface MediaLayout {
  readonly chunks: OutChunk[][];
  /** in output order, merged where they touch */
  readonly pieces: Piece[];
  readonly dataLen: number;
}

/** Samples in one output chunk at most. */
const MAX_CHUNK_SAMPLES = 1024;

/**
 * Lay out the kept samples of every track in one mdat, in source order (file, then offset: interleaved as
 * recorded): samples of a track that sit back to back in the source (same description) form one chunk.
 * Samples whose bytes overlap another's throw.
 */
export function layoutMedia(tracks: readonly KeptSamples[]): MediaLayout {
  interface Run { t: number; first: number; count: number; file: number; src: number; len: number }
  const runs: Run[] = [];
  tracks.forEach((k, t) => {
    let cur: Run | null = null;
    for (let i = k.a; i < k.b; i++) {
      const file = k.file?.[i] ?? 0;
      const src = k.offset[i] ?? 0;
      const len = k.size[i] ?? 0;
      if (cur && cur.file === file && cur.src + cur.len === src && cur.count < MAX_CHUNK_SAMPLES && k.sdi[i] === k.sdi[cur.first]) {
        cur.count++;
        cur.len += len;
      } else {
        cur = { t, first: i, count: 1, file, src, len };
        runs.push(cur);
      }
    }
  });
  runs.sort((x, y) => x.file - y.file || x.src - y.src);
  const chunks: OutChunk[][] = tracks.map(() => []);
  const pieces: Piece[] = [];
  let out = 0;
  for (const r of runs) {
    const last = pieces[pieces.length - 1];
    if (last && last.file === r.file && last.src + last.len > r.src) fail(`sample data at ${r.src} overlaps other samples (ending at ${last.src + last.len})`, 'stbl', r.src);
    chunks[r.t]?.push({ first: r.first, count: r.count, offset: out });
    appendPiece(pieces, r.file, r.src, r.len, out);
    out += r.len;
  }
  for (const cs of chunks) cs.sort((x, y) => x.first - y.first);
  return { chunks, pieces, dataLen: out };
}

/** Append `len` bytes at `src` of `file`, placed at `out`, to `pieces`: merged with the last one when they touch. */
export function appendPiece(pieces: Piece[], file: number, src: number, len: number, out: number): void {
  const last = pieces[pieces.length - 1];
  if (last && last.file === file && last.src + last.len === src) last.len += len;
  else pieces.push({ file, src, len, out });
}
