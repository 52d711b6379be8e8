import { type Box, children, makeBox, makeFullBox } from './boxes';
import { withHeaderDuration } from './track';

/** Movie timescale of what playback writes (ms). */
export const MOVIE_TIMESCALE = 1000;

/** An edit: `duration` (movie timescale) of media from `mediaTime` (media timescale), or empty when mediaTime is -1. */
export type Edit = readonly [duration: number, mediaTime: number];

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

/** An edts box with these edits (version 1 when a value needs 64 bits). */
export function edts(edits: readonly Edit[]): Buffer {
  const v1 = edits.some(([d, m]) => d > 0xffffffff || m > 0x7fffffff);
  const step = v1 ? 20 : 12;
  const body = Buffer.alloc(4 + edits.length * step);
  body.writeUInt32BE(edits.length, 0);
  edits.forEach(([d, m], e) => {
    const at = 4 + e * step;
    if (v1) {
      body.writeBigUInt64BE(BigInt(Math.round(d)), at);
      body.writeBigInt64BE(BigInt(Math.round(m)), at + 8);
      body.writeInt16BE(1, at + 16);
    } else {
      body.writeUInt32BE(Math.round(d), at);
      body.writeInt32BE(Math.round(m), at + 4);
      body.writeInt16BE(1, at + 8);
    }
  });
  return makeBox('edts', makeFullBox('elst', v1 ? 1 : 0, 0, body));
}

/** A copy of a tkhd box with a new track_ID and duration (movie timescale). */
function tkhd(b: Box, trackId: number, duration: number): Buffer {
  const out = Buffer.from(b.raw);
  const at = b.raw.length - b.body.length;
  const v1 = b.body.readUInt8(0) === 1;
  out.writeUInt32BE((out.readUInt32BE(at) & 0xff000000) | 0x000003, at); // enabled, in movie
  out.writeUInt32BE(trackId, at + (v1 ? 20 : 12));
  const d = Math.max(0, Math.round(duration));
  if (v1) out.writeBigUInt64BE(BigInt(d), at + 28);
  else out.writeUInt32BE(Math.min(d, 0xffffffff), at + 20);
  return out;
}

/** The stsd box holding `entries`. */
export function stsd(entries: readonly Buffer[]): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(entries.length, 0);
  return makeFullBox('stsd', 0, 0, Buffer.concat([n, ...entries]));
}

/** What outputTrak() needs. */
export interface TrakSpec {
  /** source trak body: tkhd, mdia (mdhd, hdlr, minf headers) are copied from it */
  readonly template: Buffer;
  readonly trackId: number;
  /** movie timescale */
  readonly duration: number;
  /** media timescale */
  readonly mediaDuration: number;
  readonly edits: readonly Edit[] | null;
  readonly stbl: Buffer;
}

/** A trak for the answer: the template's boxes with this id, durations, edit list and sample table. */
export function outputTrak(s: TrakSpec): Buffer {
  const parts: Buffer[] = [];
  for (const b of children(s.template)) {
    if (b.type === 'tkhd') {
      parts.push(tkhd(b, s.trackId, s.duration));
      if (s.edits) parts.push(edts(s.edits));
    } else if (b.type === 'edts' || b.type === 'tref') continue;
    else if (b.type === 'mdia') {
      const mdia = children(b.body).map((m) => {
        if (m.type === 'mdhd') return withHeaderDuration(m, s.mediaDuration);
        if (m.type !== 'minf') return m.raw;
        return makeBox('minf', ...children(m.body).map((x) => (x.type === 'stbl' ? s.stbl : x.raw)));
      });
      parts.push(makeBox('mdia', ...mdia));
    } else parts.push(b.raw);
  }
  return makeBox('trak', ...parts);
}
