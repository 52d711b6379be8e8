import { ntpToEpochMs } from './clock';

/** The sender info of an RTCP SR (RFC 3550 §6.4.1). */
export interface RtcpSenderInfo {
  readonly ssrc: number;
  /** 64-bit NTP timestamp: seconds since 1900 in the high word */
  readonly ntp: bigint;
  readonly rtpTime: number;
}

/** The first sender report (PT 200) of an RTCP packet, compound or not; null when it holds none or is malformed. */
export function findSenderReport(rtcp: Buffer): RtcpSenderInfo | null {
  let off = 0;
  // Every sub-packet is at least 4 bytes, so at most length/4 passes.
  while (off + 4 <= rtcp.length) {
    const b0 = rtcp[off] ?? 0;
    if (b0 >> 6 !== 2) return null;
    const size = (rtcp.readUInt16BE(off + 2) + 1) * 4;
    if (off + size > rtcp.length) return null;
    if (rtcp[off + 1] === 200 && size >= 28) {
      return { ssrc: rtcp.readUInt32BE(off + 4), ntp: rtcp.readBigUInt64BE(off + 8), rtpTime: rtcp.readUInt32BE(off + 16) };
    }
    off += size;
  }
  return null;
}

/** How far the camera's wall clock is ahead of ours (ms, negative = behind), from an SR's NTP time and when it arrived. */
export function clockOffsetMs(sr: RtcpSenderInfo, arrivedAtMs: number): number {
  return Math.round(ntpToEpochMs(sr.ntp) - arrivedAtMs) + 0; // + 0: no -0
}
