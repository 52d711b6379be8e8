import { type Box, children, findBox, makeBox, makeFullBox } from './boxes';
import type { TrackTiming } from './cut-range';
import { fail } from './format-error';
import { parseSampleTable, type SampleTable } from './sample-table';

/** One trak of a plain MP4's moov, parsed far enough to cut or play it. */
export interface Track {
  /** the trak box body */
  trak: Buffer;
  /** hdlr handler type: 'vide', 'soun', ... */
  handler: string;
  timing: TrackTiming;
  table: SampleTable;
}

/** An edit: `duration` (movie timescale) of media from `mediaTime` (media timescale), or empty when mediaTime is -1. */
export type Edit = readonly [duration: number, mediaTime: number];

/** Offset of the duration field in an mvhd / mdhd / tkhd body (version and flags included), by version. */
function durationAt(type: string, v1: boolean): number {
  return (type === 'tkhd' ? 4 : 0) + (v1 ? 24 : 16);
}

/** Timescale and duration of an mvhd or mdhd box. */
export function readHeaderTimes(b: Box): { timescale: number; duration: number } {
  const v1 = b.body.length > 0 && b.body.readUInt8(0) === 1;
  const at = durationAt(b.type, v1);
  if (b.body.length < at + (v1 ? 8 : 4)) fail(`short ${b.type}`);
  const timescale = b.body.readUInt32BE(at - 4);
  const duration = v1 ? Number(b.body.readBigUInt64BE(at)) : b.body.readUInt32BE(at);
  if (timescale === 0) fail(`${b.type} timescale is 0`);
  return { timescale, duration };
}

/** The track_ID of a tkhd box. */
export function trackId(tkhd: Box): number {
  const v1 = tkhd.body.length > 0 && tkhd.body.readUInt8(0) === 1;
  const at = v1 ? 20 : 12;
  if (tkhd.body.length < at + 4) fail('short tkhd');
  return tkhd.body.readUInt32BE(at);
}

/**
 * A copy of an mvhd, mdhd or tkhd box with a new duration (rounded, at least 0); a version 0 box that cannot
 * hold it becomes version 1 (its times widened to 64 bits).
 */
export function withDuration(b: Box, duration: number): Buffer {
  const d = Math.max(0, Math.round(duration));
  const v1 = b.body.readUInt8(0) === 1;
  const at = durationAt(b.type, v1);
  if (b.body.length < at + (v1 ? 8 : 4)) fail(`short ${b.type}`);
  const head = b.raw.length - b.body.length;
  if (v1 || d <= 0xffffffff) {
    const out = Buffer.from(b.raw);
    if (v1) out.writeBigUInt64BE(BigInt(d), head + at);
    else out.writeUInt32BE(d, head + at);
    return out;
  }
  // version 0 → 1: creation and modification times and the duration take 8 bytes
  const body = b.body;
  const times = Buffer.alloc(16);
  times.writeBigUInt64BE(BigInt(body.readUInt32BE(4)), 0);
  times.writeBigUInt64BE(BigInt(body.readUInt32BE(8)), 8);
  const dur = Buffer.alloc(8);
  dur.writeBigUInt64BE(BigInt(d), 0);
  return makeFullBox(b.type, 1, body.readUInt32BE(0) & 0xffffff, times, body.subarray(12, at), dur, body.subarray(at + 4));
}

/** The entries of an elst box. */
export function readEdits(elst: Box): Array<{ duration: number; mediaTime: number; rate: number }> {
  const body = elst.body;
  if (body.length < 8) fail('short elst');
  const v1 = body.readUInt8(0) === 1;
  const n = body.readUInt32BE(4);
  const step = v1 ? 20 : 12;
  const out: Array<{ duration: number; mediaTime: number; rate: number }> = [];
  for (let e = 0; e < n && 8 + (e + 1) * step <= body.length; e++) {
    const at = 8 + e * step;
    out.push({
      duration: v1 ? Number(body.readBigUInt64BE(at)) : body.readUInt32BE(at),
      mediaTime: v1 ? Number(body.readBigInt64BE(at + 8)) : body.readInt32BE(at + 4),
      rate: body.readInt32BE(at + (v1 ? 16 : 8)),
    });
  }
  return out;
}

/**
 * What a trak's edit list does before its media: the empty edits before the first media edit (movie timescale)
 * and that edit's media time (null: no media edit); `simple` when that edit is the last one and plays at rate 1.
 */
export function leadingEdit(trak: Buffer): { empty: number; mediaTime: number | null; simple: boolean } {
  const elst = findBox(trak, ['edts', 'elst']);
  let empty = 0;
  if (!elst) return { empty, mediaTime: null, simple: true };
  const edits = readEdits(elst);
  for (const [k, e] of edits.entries()) {
    if (e.mediaTime === -1) empty += e.duration;
    else return { empty, mediaTime: e.mediaTime, simple: k === edits.length - 1 && e.rate === 0x10000 };
  }
  return { empty, mediaTime: null, simple: true };
}

/** An edts box with these edits (version 1 when a value needs 64 bits). */
export function edtsBox(edits: readonly Edit[]): Buffer {
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

/** Parse a trak box body of a plain MP4; movieTimescale converts its edit list. */
export function parseTrack(trak: Buffer, movieTimescale: number): Track {
  const mdhd = findBox(trak, ['mdia', 'mdhd']);
  const hdlr = findBox(trak, ['mdia', 'hdlr']);
  const stbl = findBox(trak, ['mdia', 'minf', 'stbl']);
  if (!mdhd || !hdlr || !stbl) fail('trak without mdhd, hdlr or stbl');
  const { timescale } = readHeaderTimes(mdhd);
  const lead = leadingEdit(trak);
  const timing: TrackTiming = { timescale, mediaTime: lead.mediaTime ?? 0, emptyS: lead.empty / movieTimescale };
  return { trak, handler: handlerOf(hdlr), timing, table: parseSampleTable(stbl.body) };
}

/** The handler type of an hdlr box ('vide', 'soun', ...; '' when too short). */
export function handlerOf(hdlr: Box): string {
  return hdlr.body.length >= 12 ? hdlr.body.toString('latin1', 8, 12) : '';
}

/** What buildTrak() needs. */
export interface TrakSpec {
  /** source trak body: its boxes are copied, but for the ones below */
  readonly template: Buffer;
  /** a new track_ID (the track is then enabled and its tref dropped); absent: kept */
  readonly trackId?: number;
  /** tkhd duration, movie timescale */
  readonly duration: number;
  /** mdhd duration, media timescale */
  readonly mediaDuration: number;
  /** the new edit list (null: none); the template's is dropped */
  readonly edits: readonly Edit[] | null;
  /** the new stbl box */
  readonly stbl: Buffer;
}

/** A trak rebuilt from a template: new durations, edit list and sample table, other boxes as they are. */
export function buildTrak(s: TrakSpec): Buffer {
  const parts: Buffer[] = [];
  for (const b of children(s.template, 'trak')) {
    if (b.type === 'tkhd') {
      const tkhd = withDuration(b, s.duration);
      if (s.trackId !== undefined) {
        const head = tkhd.length === b.raw.length ? b.raw.length - b.body.length : 8;
        const v1 = tkhd.readUInt8(head) === 1;
        tkhd.writeUInt32BE((tkhd.readUInt32BE(head) & 0xff000000) | 0x000003, head); // enabled, in movie
        tkhd.writeUInt32BE(s.trackId, head + (v1 ? 20 : 12));
      }
      parts.push(tkhd);
      if (s.edits) parts.push(edtsBox(s.edits));
    } else if (b.type === 'edts' || (b.type === 'tref' && s.trackId !== undefined)) continue;
    else if (b.type === 'mdia') {
      const mdia = children(b.body, 'mdia').map((m) => {
        if (m.type === 'mdhd') return withDuration(m, s.mediaDuration);
        if (m.type !== 'minf') return m.raw;
        return makeBox('minf', ...children(m.body, 'minf').map((x) => (x.type === 'stbl' ? s.stbl : x.raw)));
      });
      parts.push(makeBox('mdia', ...mdia));
    } else parts.push(b.raw);
  }
  return makeBox('trak', ...parts);
}
