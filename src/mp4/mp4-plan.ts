import { makeBox } from './boxes';
import { layoutMedia, type Piece } from './layout';
import { ftyp, MOVIE_TIMESCALE, mvhd, placeMedia } from './movie-boxes';
import type { MovieTrack } from './movie-track';
import { buildSampleTable, stsdBox } from './sample-table';
import { buildTrak, type Edit } from './track';

export type { Piece } from './layout';

/** A plain MP4 (ftyp, moov, mdat) described without its media: the header bytes, then pieces of source files. */
export interface Mp4Plan {
  /** ftyp + moov + mdat header */
  readonly header: Buffer;
  /** in answer order, back to back after the header (`out`: offset in the answer) */
  readonly pieces: Piece[];
  /** total bytes */
  readonly size: number;
  /** movie duration, ms */
  readonly durationMs: number;
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
  const media = layoutMedia(tracks.map((t) => ({ offset: t.src, size: t.size, sdi: t.sdi, file: t.file, a: 0, b: t.dts.length })));
  const head = ftyp(false);
  const edits = tracks.map((t) => trackEdits(t));
  const durationMs = Math.max(0, ...edits.map((e) => e.durationMs));
  const stsds = tracks.map((t) => stsdBox(t.entries));
  const placed = placeMedia(head.length, media.dataLen, true, (dataStart, co64) => {
    const traks = tracks.map((t, ti) => {
      const e = edits[ti] as ReturnType<typeof trackEdits>;
      const chunks = (media.chunks[ti] ?? []).map((c) => ({ ...c, offset: c.offset + dataStart }));
      const stbl = buildSampleTable({ ...t, stsd: stsds[ti] as Buffer }, 0, t.dts.length, chunks, co64);
      return buildTrak({ template: t.template, trackId: ti + 1, duration: e.durationMs, mediaDuration: e.mediaDuration, edits: e.edits, stbl });
    });
    return makeBox('moov', mvhd(durationMs, tracks.length + 1), ...traks);
  });
  const header = Buffer.concat([head, placed.moov, placed.mdatHeader]);
  const pieces = media.pieces.map((p) => ({ ...p, out: p.out + header.length }));
  return { header, pieces, size: header.length + media.dataLen, durationMs };
}
