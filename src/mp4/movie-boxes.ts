import { type Box, boxHeader, makeBox, makeFullBox } from './boxes';
import { fail } from './format-error';

/** Movie timescale of what playback writes (ms). */
export const MOVIE_TIMESCALE = 1000;

/** An mvhd box (version 1). */
export function mvhd(duration: number, nextTrackId: number): Buffer {
  const b = Buffer.alloc(8 + 8 + 4 + 8 + 4 + 2 + 10 + 36 + 24 + 4);
  let at = 16; // creation and modification times: 0
  b.writeUInt32BE(MOVIE_TIMESCALE, at);
  at += 4;
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.round(duration))), at);
  at += 8;
  b.writeUInt32BE(0x00010000, at); // rate 1.0
  b.writeUInt16BE(0x0100, at + 4); // volume 1.0
  at += 4 + 2 + 10;
  for (const [i, v] of [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000].entries()) b.writeUInt32BE(v, at + i * 4);
  at += 36 + 24;
  b.writeUInt32BE(nextTrackId, at);
  return makeFullBox('mvhd', 1, 0, b);
}

/** An ftyp for what playback writes. */
export function ftyp(fragmented: boolean): Buffer {
  const brands = fragmented ? ['iso6', 'iso5', 'mp41', 'avc1', 'dash'] : ['isom', 'iso2', 'avc1', 'mp41'];
  return makeBox('ftyp', Buffer.from(fragmented ? 'iso5' : 'isom', 'latin1'), Buffer.from([0, 0, 2, 0]), Buffer.from(brands.join(''), 'latin1'));
}

/**
 * A moov rebuilt from the source's children: mvhd replaced, each trak by `trak(body)` (null: dropped), mvex
 * dropped (the output is a plain MP4), the other boxes as they are, in their order.
 */
export function rebuildMoov(kids: readonly Box[], mvhd: Buffer, trak: (body: Buffer) => Buffer | null): Buffer {
  const parts: Buffer[] = [];
  for (const b of kids) {
    if (b.type === 'mvhd') parts.push(mvhd);
    else if (b.type === 'trak') {
      const t = trak(b.body);
      if (t) parts.push(t);
    } else if (b.type !== 'mvex') parts.push(b.raw);
  }
  return makeBox('moov', ...parts);
}

/** A plain MP4's moov with its chunk offsets in place, the mdat header, and where the media data starts. */
export interface PlacedMedia {
  readonly moov: Buffer;
  readonly mdatHeader: Buffer;
  readonly dataStart: number;
}

/**
 * Place `dataLen` bytes of media in one mdat after `headLen` bytes (the ftyp) and, when `moovFirst`, the moov:
 * `build(dataStart, co64)` builds the moov with chunk offsets from dataStart (co64 only when an offset needs it).
 */
export function placeMedia(headLen: number, dataLen: number, moovFirst: boolean, build: (dataStart: number, co64: boolean) => Buffer): PlacedMedia {
  const mdatHeader = boxHeader('mdat', dataLen);
  // the moov's size does not depend on the offsets' values, only on stco vs co64: build once to measure
  let co64 = false;
  let probe = build(0, co64);
  if (headLen + probe.length + mdatHeader.length + dataLen > 0xffffffff) {
    co64 = true;
    probe = build(0, co64);
  }
  const dataStart = headLen + (moovFirst ? probe.length : 0) + mdatHeader.length;
  const moov = build(dataStart, co64);
  if (moov.length !== probe.length) fail('moov size changed between passes', 'moov', 0);
  return { moov, mdatHeader, dataStart };
}
