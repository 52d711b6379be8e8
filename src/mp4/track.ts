import { badMp4, type Box, children, findBox, makeBox, makeFullBox } from './boxes';
import type { CutEdit, TrackTiming } from './cut-range';
import { parseSampleTable, type SampleTable } from './sample-table';

/** One trak of the source moov, parsed far enough to cut it. */
export interface Track {
  /** the trak box body */
  trak: Buffer;
  /** hdlr handler type: 'vide', 'soun', ... */
  handler: string;
  timing: TrackTiming;
  table: SampleTable;
}

/** Offsets of (timescale, duration) in an mvhd/mdhd body by version; duration in a tkhd body. */
function timeFields(body: Buffer): { v1: boolean; ts: number; dur: number } {
  const v1 = body.readUInt8(0) === 1;
  return { v1, ts: v1 ? 20 : 12, dur: v1 ? 24 : 16 };
}

/** Timescale and duration of an mvhd or mdhd body. */
export function readHeaderTimes(b: Box): { timescale: number; duration: number } {
  if (b.body.length < 24) throw badMp4(`short ${b.type}`);
  const f = timeFields(b.body);
  if (b.body.length < f.dur + (f.v1 ? 8 : 4)) throw badMp4(`short ${b.type}`);
  const timescale = b.body.readUInt32BE(f.ts);
  const duration = f.v1 ? Number(b.body.readBigUInt64BE(f.dur)) : b.body.readUInt32BE(f.dur);
  if (timescale === 0) throw badMp4(`${b.type} timescale is 0`);
  return { timescale, duration };
}

function writeDuration(raw: Buffer, bodyStart: number, v1: boolean, at: number, value: number): Buffer {
  const out = Buffer.from(raw);
  const v = Math.max(0, Math.round(value));
  if (v1) out.writeBigUInt64BE(BigInt(v), bodyStart + at);
  else out.writeUInt32BE(Math.min(v, 0xffffffff), bodyStart + at);
  return out;
}

/** A copy of an mvhd or mdhd box with a new duration. */
export function withHeaderDuration(b: Box, duration: number): Buffer {
  const f = timeFields(b.body);
  return writeDuration(b.raw, b.raw.length - b.body.length, f.v1, f.dur, duration);
}

/** A copy of a tkhd box with a new duration (movie timescale). */
function withTkhdDuration(b: Box, duration: number): Buffer {
  if (b.body.length < 32) throw badMp4('short tkhd');
  const v1 = b.body.readUInt8(0) === 1;
  return writeDuration(b.raw, b.raw.length - b.body.length, v1, v1 ? 28 : 20, duration);
}

/** Parse a trak box body; movieTimescale converts its edit list. */
export function parseTrack(trak: Buffer, movieTimescale: number): Track {
  const mdhd = findBox(trak, ['mdia', 'mdhd']);
  const hdlr = findBox(trak, ['mdia', 'hdlr']);
  const stbl = findBox(trak, ['mdia', 'minf', 'stbl']);
  if (!mdhd || !hdlr || !stbl) throw badMp4('trak without mdhd, hdlr or stbl');
  const { timescale } = readHeaderTimes(mdhd);
  const handler = hdlr.body.length >= 12 ? hdlr.body.toString('latin1', 8, 12) : '';
  const timing: TrackTiming = { timescale, mediaTime: 0, emptyS: 0 };
  const elst = findBox(trak, ['edts', 'elst']);
  if (elst && elst.body.length >= 8) {
    const v1 = elst.body.readUInt8(0) === 1;
    const n = elst.body.readUInt32BE(4);
    const step = v1 ? 20 : 12;
    let empty = 0;
    for (let e = 0; e < n && 8 + (e + 1) * step <= elst.body.length; e++) {
      const at = 8 + e * step;
      const segDur = v1 ? Number(elst.body.readBigUInt64BE(at)) : elst.body.readUInt32BE(at);
      const mediaTime = v1 ? Number(elst.body.readBigInt64BE(at + 8)) : elst.body.readInt32BE(at + 4);
      if (mediaTime === -1) {
        empty += segDur;
        continue;
      }
      timing.mediaTime = mediaTime;
      break;
    }
    timing.emptyS = empty / movieTimescale;
  }
  return { trak, handler, timing, table: parseSampleTable(stbl.body) };
}

function elstBox(edit: CutEdit, movieTimescale: number): Buffer {
  const entries: Array<[number, number]> = [];
  const empty = Math.round(edit.emptyS * movieTimescale);
  if (empty > 0) entries.push([empty, -1]);
  entries.push([Math.max(1, Math.round(edit.segmentS * movieTimescale)), edit.mediaTime]);
  const v1 = entries.some(([d, m]) => d > 0xffffffff || m > 0x7fffffff);
  const step = v1 ? 20 : 12;
  const body = Buffer.alloc(4 + entries.length * step);
  body.writeUInt32BE(entries.length, 0);
  entries.forEach(([d, m], e) => {
    const at = 4 + e * step;
    if (v1) {
      body.writeBigUInt64BE(BigInt(d), at);
      body.writeBigInt64BE(BigInt(m), at + 8);
      body.writeInt16BE(1, at + 16);
    } else {
      body.writeUInt32BE(d, at);
      body.writeInt32BE(m, at + 4);
      body.writeInt16BE(1, at + 8);
    }
  });
  return makeBox('edts', makeFullBox('elst', v1 ? 1 : 0, 0, body));
}

/** Total length of a track in the movie timescale once cut with this edit. */
export function trackDuration(edit: CutEdit, movieTimescale: number): number {
  return Math.round(edit.emptyS * movieTimescale) + Math.max(1, Math.round(edit.segmentS * movieTimescale));
}

/** Rebuild a trak with a new sample table, edit list and durations; other boxes are copied as they are. */
export function buildTrack(tr: Track, stbl: Buffer, edit: CutEdit, mediaDuration: number, movieTimescale: number): Buffer {
  const parts: Buffer[] = [];
  for (const b of children(tr.trak)) {
    if (b.type === 'tkhd') {
      parts.push(withTkhdDuration(b, trackDuration(edit, movieTimescale)), elstBox(edit, movieTimescale));
    } else if (b.type === 'edts') {
      continue;
    } else if (b.type === 'mdia') {
      parts.push(rebuild(b, (m) => (m.type === 'mdhd' ? withHeaderDuration(m, mediaDuration) : m.type === 'minf' ? rebuild(m, (s) => (s.type === 'stbl' ? stbl : s.raw)) : m.raw)));
    } else {
      parts.push(b.raw);
    }
  }
  return makeBox('trak', ...parts);
}

function rebuild(b: Box, map: (child: Box) => Buffer): Buffer {
  return makeBox(b.type, ...children(b.body).map(map));
}
