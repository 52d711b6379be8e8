import { RtpUnwrapper } from './unwrap';

/** RTP timestamps of one track → nanoseconds on the pipeline's clock: extended past 32 bits, rebased on jumps. */
export class RtpTimeline {
  private readonly unwrap = new RtpUnwrapper();
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
    if (this.unwrap.last === null) return this.rebase(rtpTime, nowNs);
    if (Math.abs(this.unwrap.step(rtpTime)) > this.maxJumpS * this.clockRate) return this.rebase(rtpTime, Math.max(nowNs, this.lastNs + 1));
    const ns = this.baseNs + ((this.unwrap.extend(rtpTime) - this.baseExt) * 1e9) / this.clockRate;
    if (ns > this.lastNs) this.lastNs = ns;
    return Math.max(0, Math.round(ns));
  }

  private rebase(rtpTime: number, nowNs: number): number {
    this.baseExt = this.unwrap.restart(rtpTime, 2 ** 32); // room below for B-frames before the first unit
    this.baseNs = nowNs;
    this.lastNs = nowNs;
    return Math.round(nowNs);
  }
}
