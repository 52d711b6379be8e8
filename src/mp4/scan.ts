import { open } from 'node:fs/promises';

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

/** Boxes inside `buf` [from, to): type and [start, end) of the payload. */
function* children(buf: Buffer, from: number, to: number): Generator<{ type: string; start: number; end: number }> {
  let off = from;
  for (let i = 0; i < 10_000 && off + 8 <= to; i++) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (len < 8 || off + len > to) return;
    yield { type, start: off + 8, end: off + len };
    off += len;
  }
}

function child(buf: Buffer, from: number, to: number, type: string): { start: number; end: number } | null {
  for (const c of children(buf, from, to)) if (c.type === type) return c;
  return null;
}

/** track_ID → 'vide' / 'soun' / … from a `moov` payload. */
function trackKinds(moov: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  for (const trak of children(moov, 0, moov.length)) {
    if (trak.type !== 'trak') continue;
    const tkhd = child(moov, trak.start, trak.end, 'tkhd');
    const mdia = child(moov, trak.start, trak.end, 'mdia');
    const hdlr = mdia && child(moov, mdia.start, mdia.end, 'hdlr');
    if (!tkhd || !hdlr || hdlr.end - hdlr.start < 12) continue;
    // tkhd: version(1) flags(3), then creation/modification times of 4 bytes (v0) or 8 (v1), then track_ID
    const idAt = tkhd.start + 4 + (moov[tkhd.start] === 1 ? 16 : 8);
    if (idAt + 4 > tkhd.end) continue;
    out.set(moov.readUInt32BE(idAt), moov.toString('latin1', hdlr.start + 8, hdlr.start + 12));
  }
  return out;
}

/** track_IDs with at least one sample in a `moof` payload. */
function tracksWithSamples(moof: Buffer): number[] {
  const ids: number[] = [];
  for (const traf of children(moof, 0, moof.length)) {
    if (traf.type !== 'traf') continue;
    const tfhd = child(moof, traf.start, traf.end, 'tfhd');
    if (!tfhd || tfhd.end - tfhd.start < 8) continue;
    let samples = 0;
    for (const c of children(moof, traf.start, traf.end)) if (c.type === 'trun' && c.end - c.start >= 8) samples += moof.readUInt32BE(c.start + 4);
    if (samples > 0) ids.push(moof.readUInt32BE(tfhd.start + 4));
  }
  return ids;
}

/**
 * Walk the top-level boxes of a fragmented MP4 a muxer may have left half-written (killed, or its disk full):
 * where the complete part ends and which tracks its complete fragments hold. qtdemux waits forever on a cut
 * first fragment, and a remux waiting for a track with no samples never ends: both are decided from this.
 */
export async function readFmp4(path: string): Promise<Fmp4Contents> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const hdr = Buffer.alloc(16);
    let off = 0;
    let lastMoof = -1;
    let fragments = 0;
    let kinds = new Map<number, string>();
    let pending: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000 && off + 8 <= size; i++) {
      await fh.read(hdr, 0, 16, off);
      let len = hdr.readUInt32BE(0);
      const type = hdr.toString('latin1', 4, 8);
      let head = 8;
      if (len === 1) {
        len = Number(hdr.readBigUInt64BE(8));
        head = 16;
      } else if (len === 0) len = size - off;
      if (len < head || off + len > size) break;
      if ((type === 'moov' || type === 'moof') && len <= 16 * 1024 * 1024) {
        const body = Buffer.alloc(len - head);
        await fh.read(body, 0, body.length, off + head);
        if (type === 'moov') kinds = trackKinds(body);
        else pending = tracksWithSamples(body);
      }
      if (type === 'moof') lastMoof = off;
      if (type === 'mdat') {
        fragments++;
        lastMoof = -1;
        for (const id of pending) seen.add(kinds.get(id) ?? '');
        pending = [];
      }
      off += len;
    }
    return { length: lastMoof >= 0 ? lastMoof : off, fragments, video: seen.has('vide'), audio: seen.has('soun') };
  } finally {
    await fh.close();
  }
}
