import { type Box, children, findBox } from './boxes';
import { Mp4FormatError } from './format-error';
import { BoxFile, type ByteReader, withFile } from './reader';
import { handlerOf, trackId } from './track';

/** What a fragmented MP4 a muxer left holds in its complete fragments. */
export interface Fmp4Contents {
  /** bytes of complete top-level boxes (a cut `mdat`, and the `moof` it belongs to, excluded) */
  readonly length: number;
  /** complete `mdat`s */
  readonly fragments: number;
  /** the file's video / audio tracks have samples in those fragments */
  readonly video: boolean;
  readonly audio: boolean;
}

/** The children of a box body, or none when they do not parse (a damaged box tells nothing). */
function kidsOf(body: Buffer, name: string): Box[] {
  try {
    return children(body, name);
  } catch (err) {
    if (err instanceof Mp4FormatError) return [];
    throw err;
  }
}

/** track_ID → 'vide' / 'soun' / … from a `moov` body. */
function trackKinds(moov: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  for (const trak of kidsOf(moov, 'moov')) {
    if (trak.type !== 'trak') continue;
    try {
      const tkhd = findBox(trak.body, ['tkhd']);
      const hdlr = findBox(trak.body, ['mdia', 'hdlr']);
      if (tkhd && hdlr && hdlr.body.length >= 12) out.set(trackId(tkhd), handlerOf(hdlr));
    } catch (err) {
      if (!(err instanceof Mp4FormatError)) throw err;
    }
  }
  return out;
}

/** track_IDs with at least one sample in a `moof` body. */
function tracksWithSamples(moof: Buffer): number[] {
  const ids: number[] = [];
  for (const traf of kidsOf(moof, 'moof')) {
    if (traf.type !== 'traf') continue;
    const kids = kidsOf(traf.body, 'traf');
    const tfhd = kids.find((k) => k.type === 'tfhd');
    if (!tfhd || tfhd.body.length < 8) continue;
    let samples = 0;
    for (const c of kids) if (c.type === 'trun' && c.body.length >= 8) samples += c.body.readUInt32BE(4);
    if (samples > 0) ids.push(tfhd.body.readUInt32BE(4));
  }
  return ids;
}

/**
 * Walk the top-level boxes of a fragmented MP4 a muxer may have left half-written (killed, or its disk full):
 * where the complete part ends and which tracks its complete fragments hold. qtdemux waits forever on a cut
 * first fragment, and a remux waiting for a track with no samples never ends: both are decided from this.
 */
export async function readFmp4(path: string): Promise<Fmp4Contents> {
  return withFile(path, async (fh, size) => {
    const file = new BoxFile(fh, size);
    let off = 0;
    let lastMoof = -1;
    let fragments = 0;
    let kinds = new Map<number, string>();
    let pending: number[] = [];
    const seen = new Set<string>();
    try {
      for await (const b of file.boxes()) {
        if (b.end > size) break;
        if ((b.type === 'moov' || b.type === 'moof') && b.size <= 16 * 1024 * 1024) {
          const body = await file.bytes(b.body, b.end - b.body);
          if (b.type === 'moov') kinds = trackKinds(body);
          else pending = tracksWithSamples(body);
        }
        if (b.type === 'moof') lastMoof = b.start;
        if (b.type === 'mdat') {
          fragments++;
          lastMoof = -1;
          for (const id of pending) seen.add(kinds.get(id) ?? '');
          pending = [];
        }
        off = b.end;
      }
    } catch (err) {
      if (!(err instanceof Mp4FormatError)) throw err; // a header that is no box: the complete part ends there
    }
    return { length: lastMoof >= 0 ? lastMoof : off, fragments, video: seen.has('vide'), audio: seen.has('soun') };
  });
}

/** Whether an MP4 (a recorder's tmp file, possibly cut short) holds media: a `moof` or a non-empty `mdat`. */
export async function holdsMp4Media(fh: ByteReader, size: number): Promise<boolean> {
  try {
    for await (const b of new BoxFile(fh, size).boxes(10_000)) if (b.type === 'moof' || (b.type === 'mdat' && b.size > 16)) return true;
  } catch (err) {
    if (!(err instanceof Mp4FormatError)) throw err;
  }
  return false;
}

/** The types of the top-level boxes of an MP4 file, in order, up to the first that is not a box. */
export async function topBoxTypes(path: string): Promise<string[]> {
  return withFile(path, async (fh, size) => {
    const types: string[] = [];
    try {
      for await (const b of new BoxFile(fh, size).boxes(10_000)) types.push(b.type);
    } catch (err) {
      if (!(err instanceof Mp4FormatError)) throw err;
    }
    return types;
  });
}
