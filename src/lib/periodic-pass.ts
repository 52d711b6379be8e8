/** How often a PeriodicPass runs, and how its timer behaves. */
export interface PeriodicPassOptions {
  /** ms between passes */
  readonly everyMs: number;
  /** start() runs a pass at once too; default true */
  readonly atStart?: boolean;
  /** the timer does not keep the process alive; default false */
  readonly unref?: boolean;
}

/**
 * A pass (a retention sweep, a disk check, a reconciliation) run every `everyMs` once started, and on demand;
 * never two at once: a call while one runs gets that one. close() stops the timer and waits for the pass that runs.
 */
export class PeriodicPass {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly o: PeriodicPassOptions,
  ) {}

  /** Passes every everyMs from now (and one at once unless atStart is false); a second start() does nothing. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.run(), this.o.everyMs);
    if (this.o.unref) this.timer.unref();
    if (this.o.atStart ?? true) void this.run();
  }

  /** One pass: a new one, or the one running now. */
  run(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  /** No more passes; resolves when the running one (if any) ended. Safe twice. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
