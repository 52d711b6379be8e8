import { randomUUID } from 'node:crypto';
import { type Logger, log as rootLog } from '../lib/log';
import { type Repair, TimestampGuard } from '../pipeline/timestamp-guard';
import type { Codecs, SourceProtocol, SourceSpec } from '../pipeline/types';
import type { PushFn, Stream, StreamStatus } from '../recorder/stream';
import type { PublishedStream } from './publish';

/** What a push stream takes from its publish. */
export interface PublishIdentity {
  readonly id: string;
  readonly name: string;
  readonly login: string;
  readonly startedAt: number;
}

/**
 * What every pushed stream (RTMP, WHIP, a future SRT) shares: its identity from the publish, the timestamp guard
 * its media goes through once at arrival (with the repairs logged per burst), and its end.
 */
export abstract class PushStream implements Stream, PublishedStream {
  readonly mediaSessionId = randomUUID();
  abstract readonly protocol: SourceProtocol;
  readonly name: string;
  /** the publish id in base64 */
  readonly sessionId: string;
  readonly login: string;
  readonly startedAt: number;
  protected readonly guard: TimestampGuard;
  protected readonly log: Logger;
  protected ended = false;

  protected constructor(pub: PublishIdentity, component: string, onRepair?: (repair: Repair) => void) {
    this.name = pub.name;
    this.sessionId = Buffer.from(pub.id).toString('base64').slice(0, 60);
    this.login = pub.login;
    this.startedAt = pub.startedAt;
    this.log = rootLog.child({ component, stream: pub.name });
    this.guard = new TimestampGuard({ onRepair: (r) => onRepair?.(r) });
  }

  abstract codecs(): Codecs;
  abstract source(): SourceSpec;
  abstract streamClock(epochMs: number): number;
  abstract attach(push: PushFn): () => void;

  status(): StreamStatus {
    return this.ended ? 'stopped' : 'publishing';
  }

  /** The publisher is gone: the last repair burst is logged, consumers are dropped. */
  end(): void {
    this.logRepairs(Number.MAX_SAFE_INTEGER);
    this.ended = true;
    this.dropConsumers();
  }

  protected abstract dropConsumers(): void;

  /** Log the guard's repair bursts (one line when a burst starts, one with its counts when it ended), never one per unit. */
  protected logRepairs(nowMs: number): void {
    for (const b of this.guard.takeReports(nowMs)) {
      const ctx = { track: b.track, repair: b.first, counts: b.counts, inputDtsMs: b.inDtsMs, outputDtsMs: b.lastDtsMs, total: this.guard.counts() };
      if (b.phase === 'started') this.log.warn(ctx, 'timestamps the muxer cannot take arrived; repairing them (nudge, clip or rebase) until they are clean again');
      else this.log.info(ctx, 'timestamp repairs ended');
    }
  }
}
