/** Settings of a Backoff. */
export interface BackoffOptions {
  /** first delay, ms */
  readonly minMs: number;
  /** cap, ms */
  readonly maxMs: number;
  /** growth per attempt, default 2 */
  readonly factor?: number;
  /** ± fraction of the delay drawn at random, default 0.1 (0 = none) */
  readonly jitter?: number;
  /** [0, 1) source for the jitter; Math.random by default (tests pass their own) */
  readonly random?: () => number;
}

/** Reconnect delays that grow from minMs by factor up to maxMs, with bounded jitter so cameras do not retry in step. */
export class Backoff {
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private n = 0;
  private base: number;

  constructor(o: BackoffOptions) {
    const bad = (what: string) => new RangeError(`Backoff: ${what}`);
    if (!Number.isFinite(o.minMs) || o.minMs < 0) throw bad(`minMs must be a finite number ≥ 0, got ${o.minMs}`);
    if (!Number.isFinite(o.maxMs) || o.maxMs < o.minMs) throw bad(`maxMs must be finite and ≥ minMs (${o.minMs}), got ${o.maxMs}`);
    const factor = o.factor ?? 2;
    if (!Number.isFinite(factor) || factor < 1) throw bad(`factor must be ≥ 1, got ${factor}`);
    const jitter = o.jitter ?? 0.1;
    if (!(jitter >= 0 && jitter < 1)) throw bad(`jitter must be in [0, 1), got ${jitter}`);
    this.minMs = o.minMs;
    this.maxMs = o.maxMs;
    this.factor = factor;
    this.jitter = jitter;
    this.random = o.random ?? Math.random;
    this.base = o.minMs;
  }

  /** Delays handed out since the last reset(). */
  get attempt(): number {
    return this.n;
  }

  /** The next delay in ms: min, min·factor, … capped at max, each within ±jitter and never above max. */
  next(): number {
    const base = this.base;
    this.n++;
    this.base = Math.min(this.maxMs, base * this.factor);
    const r = Math.min(Math.max(this.random(), 0), 1);
    const d = base * (1 + this.jitter * (2 * r - 1));
    return Math.round(Math.min(this.maxMs, Math.max(0, d)));
  }

  /** Back to minMs (a connection that lived a while). */
  reset(): void {
    this.n = 0;
    this.base = this.minMs;
  }
}
