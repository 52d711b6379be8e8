import type { Logger } from '../lib/log';
import type { TimestampGuard } from '../pipeline/timestamp-guard';

/** Log the guard's repair bursts (one line when a burst starts, one with its counts when it ended), never one per unit. */
export function logRepairs(log: Logger, guard: TimestampGuard, nowMs: number): void {
  for (const b of guard.takeReports(nowMs)) {
    const ctx = { track: b.track, repair: b.first, counts: b.counts, inputDtsMs: b.inDtsMs, outputDtsMs: b.lastDtsMs, total: guard.counts() };
    if (b.phase === 'started') log.warn(ctx, 'timestamps the muxer cannot take arrived; repairing them (nudge, clip or rebase) until they are clean again');
    else log.info(ctx, 'timestamp repairs ended');
  }
}
