/** The one RTP header parser (RFC 3550 §5.1) and RTP's 16/32-bit wrapping arithmetic. */

/** The fields of one RTP packet a depayloader needs; payload is a view into the packet. */
export interface RtpPacket {
  readonly payloadType: number;
  readonly marker: boolean;
  readonly seq: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly payload: Buffer;
}

/** True when b can be an RTP packet: version 2 and a whole fixed header. */
export function isRtp(b: Buffer): boolean {
  return b.length >= 12 && (b[0] ?? 0) >> 6 === 2;
}

/**
 * Parse an RTP packet: the payload follows the CSRCs and the header extension and stops before the padding.
 * null when it is not RTP version 2 or its header (or padding) runs past its end.
 */
export function parseRtp(b: Buffer): RtpPacket | null {
  if (!isRtp(b)) return null;
  const b0 = b[0] ?? 0;
  const b1 = b[1] ?? 0;
  let off = 12 + 4 * (b0 & 0x0f);
  if (b0 & 0x10) {
    if (b.length < off + 4) return null;
    off += 4 + 4 * b.readUInt16BE(off + 2);
  }
  let end = b.length;
  if (b0 & 0x20) end -= b[b.length - 1] ?? 0;
  if (off > end) return null;
  return { payloadType: b1 & 0x7f, marker: (b1 & 0x80) !== 0, seq: b.readUInt16BE(2), timestamp: b.readUInt32BE(4), ssrc: b.readUInt32BE(8), payload: b.subarray(off, end) };
}

/** The payload of a serialized RTP packet (after CSRCs and the header extension, before padding); null when malformed or empty. */
export function rtpPayload(packet: Buffer): Buffer | null {
  const p = parseRtp(packet);
  return p && p.payload.length > 0 ? p.payload : null;
}

/** Signed distance a - b between two 32-bit RTP timestamps (wraps). */
export function rtpTsDelta(a: number, b: number): number {
  const d = (a - b) >>> 0;
  return d > 0x7fff_ffff ? d - 0x1_0000_0000 : d;
}

/** Forward distance from sequence number `prev` to `next` (16-bit, wraps): 1 = in order, >1 = gap, 0 or negative = duplicate or late. */
export function seqDelta(next: number, prev: number): number {
  const d = (next - prev) & 0xffff;
  return d >= 0x8000 ? d - 0x1_0000 : d;
}
