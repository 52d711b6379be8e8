import type { TimestampGuard } from '../../pipeline/timestamp-guard';
import type { FlvTag } from './flv';

/**
 * The FLV adapter of the timestamp guard: an audio or video tag's timestamp (its DTS) and, for AVC/HEVC, its
 * composition time (PTS - DTS) go through `guard`; the tag's bytes are rewritten in place when a repair moved them
 * (the chunks are the stream's own copies). Script tags and sequence headers pass untouched.
 */
export function guardFlvTag(guard: TimestampGuard, tag: FlvTag, arrivalMs: number): FlvTag {
  if ((tag.type !== 8 && tag.type !== 9) || tag.sequenceHeader || tag.bytes.length < 11 + 2) return tag;
  const cts = tag.type === 9 ? compositionTime(tag.bytes) : null;
  const p = guard.place(tag.type === 9 ? 'video' : 'audio', tag.timestamp, tag.timestamp + (cts ?? 0), arrivalMs);
  if (!p.repair) return tag;
  const b = tag.bytes;
  const ts = Math.max(0, Math.round(p.dtsMs)) >>> 0;
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b[7] = (ts >>> 24) & 0xff;
  if (cts !== null) {
    const out = Math.round(p.ptsMs - p.dtsMs);
    if (out !== cts) b.writeIntBE(out, 11 + 2, 3);
  }
  return { ...tag, timestamp: ts };
}

/** The signed 24-bit composition time of an AVC/HEVC NALU tag (legacy FLV, packet type 1); null for anything else. */
export function compositionTime(bytes: Buffer): number | null {
  const b0 = bytes[11] ?? 0;
  if (b0 & 0x80) return null; // enhanced RTMP: its own packet layout
  const codec = b0 & 0x0f;
  if ((codec !== 7 && codec !== 12) || bytes[12] !== 1 || bytes.length < 11 + 5) return null;
  return bytes.readIntBE(11 + 2, 3);
}
