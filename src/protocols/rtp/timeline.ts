import { rtpTsDelta } from './packet';

/** RTP timestamps of one track → nanoseconds on the pipeline's clock: extended past 32 bits, rebased on jumps. */
export class RtpTimeline {
  private ext = -1;
  private baseExt = 0;
  private baseNs = 0;
  private lastNs = 0;

  constructor(
    private readonly clockRate: number,
    /** a jump larger than this (either way) is a new timeline (camera reboot, new SSRC), not time passing */
    private readonly maxJumpS = 10,
  ) {}

  /** The PTS of rtpTime; `nowNs` (the pipeline's running time at arrival) anchors the first unit and every jump. */
  ptsNs(rtpTime: number, nowNs: number): number {
    if (this.ext < 0) return this.rebase(rtpTime, nowNs);
    const d = rtpTsDelta(rtpTime, this.ext % 2 ** 32);
    if (Math.abs(d) > this.maxJumpS * this.clockRate) return this.rebase(rtpTime, Math.max(nowNs, this.lastNs + 1));
    this.ext += d;
    const ns = this.baseNs + ((this.ext - this.baseExt) * 1e9) / this.clockRate;
    if (ns > this.lastNs) this.lastNs = ns;
    return Math.max(0, Math.round(ns));
  }

  private rebase(rtpTime: number, nowNs: number): number {
    this.ext = 2 ** 32 + rtpTime; // room below for B-frames before the first unit
    this.baseExt = this.ext;
    this.baseNs = nowNs;
    this.lastNs = nowNs;
    return Math.round(nowNs);
  }
}
