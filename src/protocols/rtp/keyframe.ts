import { rtpPayload } from './packet';

/** VP8 (RFC 7741): first packet of a frame (S=1, partition 0) whose frame header says key frame (P=0). */
function vp8KeyframeStart(p: Buffer): boolean {
  const d = p[0];
  if (d === undefined || !(d & 0x10) || (d & 0x07) !== 0) return false;
  let off = 1;
  if (d & 0x80) {
    const x = p[off++];
    if (x === undefined) return false;
    if (x & 0x80) off += (p[off] ?? 0) & 0x80 ? 2 : 1; // picture id, 7 or 15 bits
    if (x & 0x40) off += 1; // TL0PICIDX
    if (x & 0x30) off += 1; // TID / KEYIDX
  }
  const h = p[off];
  return h !== undefined && (h & 0x01) === 0;
}

/** H.264 (RFC 6184): an IDR or SPS NAL unit, alone, inside a STAP-A, or as the first FU-A fragment. */
function h264KeyframeStart(p: Buffer): boolean {
  const key = (t: number) => t === 5 || t === 7;
  const type = (p[0] ?? 0) & 0x1f;
  if (type >= 1 && type <= 23) return key(type);
  if (type === 24) {
    for (let off = 1; off + 2 < p.length; ) {
      const size = p.readUInt16BE(off);
      if (key((p[off + 2] ?? 0) & 0x1f)) return true;
      off += 2 + size;
    }
    return false;
  }
  if (type === 28) {
    const fu = p[1] ?? 0;
    return (fu & 0x80) !== 0 && key(fu & 0x1f);
  }
  return false;
}

/** True when an RTP packet starts a frame a decoder can begin from (VP8 key frame, H.264 SPS/IDR); other codecs: false. */
export function isKeyframeStart(encodingName: string, packet: Buffer): boolean {
  const p = rtpPayload(packet);
  if (!p) return false;
  switch (encodingName.toUpperCase()) {
    case 'VP8':
      return vp8KeyframeStart(p);
    case 'H264':
      return h264KeyframeStart(p);
    default:
      return false;
  }
}
