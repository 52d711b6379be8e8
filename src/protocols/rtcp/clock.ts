import { rtpTsDelta } from '../rtp/packet';

/** The latest RTCP sender report of a track: an NTP wall-clock time and the RTP timestamp it matches. */
export interface SenderReport {
  /** NTP time of the report as epoch ms */
  readonly ntpMs: number;
  readonly rtpTs: number;
  /** server clock when it arrived, epoch ms */
  readonly receivedAt: number;
}

const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** A 64-bit NTP timestamp (seconds since 1900 . fraction) as epoch milliseconds. */
export function ntpToEpochMs(ntp: bigint): number {
  const sec = Number(ntp >> 32n);
  const frac = Number(ntp & 0xffff_ffffn);
  return (sec - NTP_UNIX_OFFSET_S) * 1000 + (frac * 1000) / 0x1_0000_0000;
}

/** Wall-clock epoch ms of an RTP timestamp through a sender report. */
export function rtpToWallClock(sr: SenderReport, rtpTs: number, clockRate: number): number {
  return sr.ntpMs + (rtpTsDelta(rtpTs, sr.rtpTs) * 1000) / clockRate;
}
