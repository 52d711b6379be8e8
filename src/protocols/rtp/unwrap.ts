import { rtpTsDelta } from './packet';

/**
 * One track's 32-bit RTP timestamps extended past 2^32 (RFC 3550 §5.1): each is the previous one plus the shorter
 * way round the circle from it, so a wrap-around goes on counting up and a step back stays a step back.
 */
export class RtpUnwrapper {
  private last32 = 0;
  private ext: number | null = null;

  /** The last extended timestamp; null before the first. */
  get last(): number | null {
    return this.ext;
  }

  /** From the last timestamp to `ts` the shorter way round (negative: back), without moving; 0 before the first. */
  step(ts: number): number {
    return this.ext === null ? 0 : rtpTsDelta(ts, this.last32);
  }

  /** `ts` extended: the first one is `ts` itself, each later one the last plus step(ts). */
  extend(ts: number): number {
    return this.ext === null ? this.restart(ts) : this.moveTo(ts, this.ext + this.step(ts));
  }

  /** Begin again at `ts` (a new timeline: a camera reboot, a new SSRC), extended to `origin` + `ts`. */
  restart(ts: number, origin = 0): number {
    return this.moveTo(ts, origin + ts);
  }

  private moveTo(ts: number, ext: number): number {
    this.last32 = ts;
    this.ext = ext;
    return ext;
  }
}
