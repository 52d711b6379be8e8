import { open, rm } from 'node:fs/promises';
import { bodyOf, children, findBox } from './boxes';
import { copyRanges } from './copy';
import { fail } from './format-error';
import { type FragTrack, presentation, readFragments } from './fragments';
import { layoutMedia } from './layout';
import { placeMedia, rebuildMoov } from './movie-boxes';
import { withFile } from './reader';
import { buildSampleTable } from './sample-table';
import { buildTrak, type Edit, withDuration } from './track';

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

/** stbl children the remux rewrites (the source ones are empty or describe fragments only). */
const SAMPLE_TABLES = new Set(['stts', 'ctts', 'stss', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'sdtp', 'sgpd', 'sbgp', 'cslg', 'stps', 'subs']);

/**
 * Rewrite a fragmented MP4 (`src`, complete boxes only) into a plain MP4 `dst`: ftyp, moov, one mdat, the
 * media bytes copied in ≤ 1 MiB blocks. Tracks without samples are dropped. Anything it does not understand
 * throws an Mp4FormatError naming the box and offset (and `dst` is removed): the caller then remuxes another way.
 * Does not fsync `dst`.
 */
export async function remuxFmp4(src: string, dst: string, o: Fmp4RemuxOptions): Promise<Fmp4RemuxResult> {
  return withFile(src, async (fh, size) => {
    const f = await readFragments(fh, size);
    const tracks = f.tracks.filter((t) => t.dur.length > 0);
    if (tracks.length === 0) fail('no track holds a sample', 'moof', 0);
    for (const t of tracks)
      for (const b of children(findBox(bodyOf(t.trak), ['mdia', 'minf', 'stbl'])?.body ?? Buffer.alloc(0), 'stbl'))
        if (b.type !== 'stsd' && !SAMPLE_TABLES.has(b.type)) fail(`track ${t.id}: unsupported ${b.type} in stbl`, b.type, 0);
    const media = layoutMedia(tracks.map((t) => ({ offset: t.offset, size: t.size, sdi: t.sdi, a: 0, b: t.dur.length })));
    // like mp4mux: the earliest track starts the movie at 0, the others keep their offset to it (A/V sync)
    const pres = tracks.map((t) => presentation(t, f.movieTimescale));
    const shift = Math.min(...pres.map((p) => p.presStart));
    const movieDurations = pres.map((p) => p.presStart - shift + p.mediaDur);
    const duration = Math.max(...movieDurations);
    const kids = children(bodyOf(f.moov), 'moov');
    const mvhd = kids.find((k) => k.type === 'mvhd');
    if (!mvhd) fail('moov has no mvhd', 'moov', 0);
    const placed = placeMedia(f.ftyp.length, media.dataLen, o.moovFirst, (dataStart, co64) => {
      let trakIndex = 0; // the moov's traks are f.tracks, in order
      return rebuildMoov(kids, withDuration(mvhd, duration), (body) => {
        const n = tracks.indexOf(f.tracks[trakIndex++] as FragTrack);
        const t = tracks[n];
        const p = pres[n];
        if (!t || !p) return null;
        const chunks = (media.chunks[n] ?? []).map((c) => ({ ...c, offset: c.offset + dataStart }));
        return buildTrak({
          template: body, duration: movieDurations[n] ?? 0, mediaDuration: t.dur.reduce((a, b) => a + b, 0),
          edits: edits(p, shift), stbl: buildSampleTable(t, 0, t.dur.length, chunks, co64),
        });
      });
    });
    const out = await open(dst, 'w');
    try {
      let pos = 0;
      for (const b of o.moovFirst ? [f.ftyp, placed.moov, placed.mdatHeader] : [f.ftyp, placed.mdatHeader]) {
        await out.write(b, 0, b.length, pos);
        pos += b.length;
      }
      pos = await copyRanges(fh, out, media.pieces, pos);
      if (!o.moovFirst) await out.write(placed.moov, 0, placed.moov.length, pos);
    } catch (err) {
      await out.close();
      await rm(dst, { force: true });
      throw err;
    }
    await out.close();
    return { samples: tracks.reduce((n, t) => n + t.dur.length, 0), durationMs: Math.round((duration * 1000) / f.movieTimescale) };
  });
}

/** The edit list of a track shown from `p`, `shift` (movie timescale) earlier: an empty edit first when it starts later. */
function edits(p: { presStart: number; mediaTime: number; mediaDur: number }, shift: number): Edit[] {
  const presStart = p.presStart - shift;
  return presStart > 0 ? [[presStart, -1], [p.mediaDur, p.mediaTime]] : [[p.mediaDur, p.mediaTime]];
}
