import { type Logger, log as rootLog } from '../lib/log';
import { PeriodicPass } from '../lib/periodic-pass';

/** A pipeline running in a media host, as the pool reports it. */
export interface RunningPipeline {
  readonly id: string;
  readonly hostPid: number;
}

/**
 * Which running pipelines are orphans: unknown to the manager now and at the previous pass too (so a pipeline
 * caught between its launch and its owner's bookkeeping, or one still ending after a stop, is never taken).
 * Returns the orphans and the suspects to pass to the next call.
 */
export function findOrphans(
  running: readonly RunningPipeline[],
  known: ReadonlySet<string>,
  suspects: ReadonlySet<string>,
): { orphans: RunningPipeline[]; suspects: Set<string> } {
  const orphans: RunningPipeline[] = [];
  const next = new Set<string>();
  for (const p of running) {
    if (known.has(p.id)) continue;
    if (suspects.has(p.id)) orphans.push(p);
    else next.add(p.id);
  }
  return { orphans, suspects: next };
}

/** What the reconciler reads and acts on. */
export interface PipelineReconcilerOptions {
  /** pipelines the media hosts run now */
  readonly running: () => RunningPipeline[];
  /** pipelines that belong to a recording (or a camera's monitoring) the manager knows */
  readonly known: () => ReadonlySet<string>;
  /** EOS to one pipeline: its muxer finishes the file, its owner finalizes what was written */
  readonly end: (id: string) => boolean;
  /** ms between passes; default 10000 */
  readonly intervalMs?: number;
  /** called for each orphan stopped (metrics) */
  readonly onOrphan?: (p: RunningPipeline) => void;
  readonly log?: Logger;
}

/**
 * Every pipeline a media host runs must belong to a recording the manager knows and lists. A periodic pass ends
 * (EOS, so the file is finished and finalized) any that has been unknown for two passes in a row, and says so.
 */
export class PipelineReconciler {
  private suspects = new Set<string>();
  private readonly passes: PeriodicPass;
  private readonly log: Logger;
  /** orphans stopped so far */
  stopped = 0;

  constructor(private readonly o: PipelineReconcilerOptions) {
    this.log = o.log ?? rootLog.child({ component: 'reconcile' });
    this.passes = new PeriodicPass(async () => void this.runOnce(), { everyMs: o.intervalMs ?? 10_000, atStart: false, unref: true });
  }

  /** Start the periodic passes. */
  start(): void {
    this.passes.start();
  }

  /** One pass; returns the orphans it ended. */
  runOnce(): RunningPipeline[] {
    const r = findOrphans(this.o.running(), this.o.known(), this.suspects);
    this.suspects = r.suspects;
    for (const p of r.orphans) {
      this.log.warn({ pipeline: p.id, hostPid: p.hostPid }, 'a media host runs a pipeline no recording owns; ending it (its file is finalized)');
      if (this.o.end(p.id)) {
        this.stopped++;
        this.o.onOrphan?.(p);
      }
    }
    return r.orphans;
  }

  /** Stop the passes; safe twice. */
  close(): Promise<void> {
    return this.passes.close();
  }
}
