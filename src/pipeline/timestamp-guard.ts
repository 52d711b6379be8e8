/**
 * The timestamp guard at the ingest boundary (pure): whatever a peer sends, what reaches the muxer has per track a
 * strictly increasing DTS, PTS ≥ DTS, no negative time, and no jump that would make a track longer (or shorter)
 * than the wall time it was recorded in. Adapters (RTMP tags, RTP packets, feed frames) map their units to ms.
 */

/** What a repair did. */
export type Repair = 'nudged' | 'clipped' | 'rebased' | 'dropped';

/** Settings of a TimestampGuard. */
export interface TimestampGuardOptions {
  /**
   * a forward step larger than this (ms) that the wall clock did not see (within as much) is a jump, rebased on the
   * wall time; default 5000
   */
  readonly maxForwardMs?: number;
  /** a backward step larger than this (ms) is a reset, rebased on wall time; smaller ones are nudged; default 1000 */
  readonly maxBackwardMs?: number;
  /** a burst of repairs ends after this long (ms) without one; default 2000 */
  readonly burstQuietMs?: number;
  /** called at every repair (metrics) */
  readonly onRepair?: (repair: Repair, track: string) => void;
}

/** Where one unit goes: its output DTS and PTS (ms), or null when it is dropped. */
export interface Placement {
  readonly dtsMs: number;
  readonly ptsMs: number;
  /** the repair made, null when the unit went through as it came */
  readonly repair: Repair | null;
}

/** A burst of repairs as it is reported: once at its first repair, once (with counts) when it ended. */
export interface RepairBurst {
  readonly phase: 'started' | 'ended';
  readonly track: string;
  readonly first: Repair;
  /** repairs in the burst by kind (at 'started': the first one only) */
  readonly counts: Readonly<Record<Repair, number>>;
  /** input and output DTS of the unit that started the burst, ms */
  readonly inDtsMs: number;
  readonly lastDtsMs: number;
}

interface TrackState {
  lastDts: number;
  lastArrival: number;
  /**
   * the last clean forward steps (ms), newest last, at most STEPS_KEPT: a nudge moves half of the smallest, so the unit
   * keeps its own frame slot and the nudged run falls back onto the input times (see place())
   */
  steps: number[];
  /** the last unit was moved: the step to the next one is not a clean frame step */
  moved: boolean;
  /** added to every input time of this track (0 until a jump) */
  offset: number;
}

/** clean steps a track remembers for its nudge size */
const STEPS_KEPT = 8;

const zero = (): Record<Repair, number> => ({ nudged: 0, clipped: 0, rebased: 0, dropped: 0 });

/**
 * One guard per stream (all its tracks). Each track has its own offset (a jump in one track alone must not move
 * the other); a reset that moves every track (an RTMP timestamp reset, a camera reboot) rebases each on the wall
 * time since its last unit, so they stay in sync within a frame. Counts every repair and groups them into bursts.
 */
export class TimestampGuard {
  private readonly maxForward: number;
  private readonly maxBackward: number;
  private readonly quietMs: number;
  private readonly onRepair: (repair: Repair, track: string) => void;
  private readonly tracks = new Map<string, TrackState>();
  private readonly total = zero();
  private burst: { track: string; first: Repair; counts: Record<Repair, number>; inDts: number; lastDts: number; lastAt: number } | null = null;
  private readonly bursts: RepairBurst[] = [];

  constructor(o: TimestampGuardOptions = {}) {
    this.maxForward = o.maxForwardMs ?? 5000;
    this.maxBackward = o.maxBackwardMs ?? 1000;
    this.quietMs = o.burstQuietMs ?? 2000;
    this.onRepair = o.onRepair ?? (() => undefined);
  }

  /**
   * Place one unit of `track` (a frame, an FLV tag, the first packet of an RTP frame): input DTS and PTS in ms on
   * the peer's clock (PTS = DTS when the source has no reordering), arrival on the server clock (ms).
   */
  place(track: string, dtsMs: number, ptsMs: number, arrivalMs: number): Placement {
    let repair: Repair | null = null;
    let cts = ptsMs - dtsMs;
    if (cts < 0) {
      cts = 0;
      repair = 'clipped';
    }
    const st = this.tracks.get(track);
    if (!st) {
      let offset = 0;
      if (dtsMs < 0) {
        offset = -dtsMs;
        repair = 'clipped';
      }
      const dts = dtsMs + offset;
      this.tracks.set(track, { lastDts: dts, lastArrival: arrivalMs, steps: [], moved: false, offset });
      return this.out(track, dtsMs, dts, dts + cts, repair, arrivalMs);
    }
    let dts = dtsMs + st.offset;
    const step = dts - st.lastDts;
    const wall = Math.max(1, Math.round(arrivalMs - st.lastArrival));
    // a forward step that the wall clock also saw (a pause, Opus DTX silence) is time passing, not a jump
    const jump = step < -this.maxBackward || (step > this.maxForward && Math.abs(step - wall) > this.maxForward);
    if (jump) {
      // continue from the last time by the wall time that passed (at least 1 ms)
      const target = st.lastDts + wall;
      st.offset += target - dts;
      dts = target;
      repair = 'rebased';
    } else if (step <= 0) {
      // Half a frame, not 1 ms: a player that counts in frames (25 fps = 40 ms ticks) must still see two times.
      // Half the SMALLEST recent step, not the last one: a nudged unit is ahead of its input time, and the units after
      // it are nudged too until the input overtakes; that happens only if a nudge is shorter than a real frame step.
      // Half of one jittered step (rtmp2sink's audio: 23, 23, 50, 0, 19 ms…) was longer than the 23.2 ms AAC frames:
      // every later frame was nudged 25 ms, the track ran ahead of the publisher until a "rebase", and the file was
      // 8.6 s of audio for 8 s sent, or the muxer stalled.
      const frame = st.steps.length > 0 ? Math.min(...st.steps) : 0;
      dts = st.lastDts + Math.max(1, Math.floor(Math.min(frame, 200) / 2));
      repair = 'nudged';
    } else if (!st.moved) {
      st.steps.push(step);
      if (st.steps.length > STEPS_KEPT) st.steps.shift();
    }
    st.moved = repair === 'nudged' || repair === 'rebased';
    st.lastDts = dts;
    st.lastArrival = arrivalMs;
    return this.out(track, dtsMs, dts, dts + cts, repair, arrivalMs);
  }

  /** Count a unit the adapter dropped itself (it could not be placed: e.g. before the stream's zero). */
  drop(track: string, inDtsMs: number, arrivalMs: number): void {
    this.note(track, 'dropped', inDtsMs, this.tracks.get(track)?.lastDts ?? 0, arrivalMs);
  }

  /** Repairs so far by kind. */
  counts(): Readonly<Record<Repair, number>> {
    return { ...this.total };
  }

  /**
   * Burst reports to log since the last call: a burst is reported when it starts and, with its counts, when no
   * repair came for burstQuietMs (checked at `nowMs`). One line per burst edge, never one per unit.
   */
  takeReports(nowMs: number): RepairBurst[] {
    const b = this.burst;
    if (b && nowMs - b.lastAt >= this.quietMs) {
      this.bursts.push({ phase: 'ended', track: b.track, first: b.first, counts: { ...b.counts }, inDtsMs: b.inDts, lastDtsMs: b.lastDts });
      this.burst = null;
    }
    return this.bursts.splice(0);
  }

  private out(track: string, inDts: number, dts: number, pts: number, repair: Repair | null, at: number): Placement {
    if (repair) this.note(track, repair, inDts, dts, at);
    return { dtsMs: dts, ptsMs: pts, repair };
  }

  private note(track: string, r: Repair, inDts: number, dts: number, at: number): void {
    this.total[r]++;
    this.onRepair(r, track);
    if (this.burst && at - this.burst.lastAt >= this.quietMs) this.takeReports(at).forEach((x) => this.bursts.push(x));
    if (!this.burst) {
      const counts = zero();
      counts[r] = 1;
      this.burst = { track, first: r, counts, inDts, lastDts: dts, lastAt: at };
      this.bursts.push({ phase: 'started', track, first: r, counts: { ...counts }, inDtsMs: inDts, lastDtsMs: dts });
      return;
    }
    this.burst.counts[r]++;
    this.burst.lastAt = at;
  }
}
