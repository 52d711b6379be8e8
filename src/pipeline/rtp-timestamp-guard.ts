import { isRtp } from '../protocols/rtp/packet';
import { RtpUnwrapper } from '../protocols/rtp/unwrap';
import type { TimestampGuard } from './timestamp-guard';

/**
 * The RTP adapter of the timestamp guard, for one track: each new RTP timestamp (a new frame; the packets of one
 * frame share it) goes through `guard` in ms, and the packet's timestamp is rewritten in place by the repair's
 * offset (a publisher that restarts its clock, a jump after a pause). Wrap-around is unwrapped first.
 */
export class RtpTimestampGuard {
  private lastIn = -1;
  private readonly unwrap = new RtpUnwrapper();
  private offsetTicks = 0;

  constructor(
    private readonly guard: TimestampGuard,
    private readonly track: string,
    private readonly clockRate: number,
  ) {}

  /** Guard one RTP packet (rewritten in place when a repair moved its frame). */
  apply(packet: Buffer, arrivalMs: number): void {
    if (!isRtp(packet)) return;
    const ts = packet.readUInt32BE(4);
    if (ts !== this.lastIn) {
      this.lastIn = ts;
      const inMs = (this.unwrap.extend(ts) * 1000) / this.clockRate;
      const p = this.guard.place(this.track, inMs, inMs, arrivalMs);
      this.offsetTicks = Math.round(((p.dtsMs - inMs) * this.clockRate) / 1000);
    }
    if (this.offsetTicks !== 0) packet.writeUInt32BE((ts + this.offsetTicks) >>> 0, 4);
  }
}
