import { AppError, errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { DEFAULT_WORKER_PATH, MediaHost, type HostExit, type MediaHostOptions, type RunOptions } from './media-host';
import { PipelineHandle } from './pipeline-handle';
import type { HostMemory } from './types';

export { PipelineHandle } from './pipeline-handle';
export type { Fragment, PipelineExit, PipelineHandleEvents } from './pipeline-handle';
export type { RunOptions } from './media-host';

const log = rootLog.child({ component: 'host-pool' });

/** A host that lived at least this long before dying restarts at once; quicker deaths back off. */
const STABLE_MS = 30_000;
const MAX_BACKOFF_MS = 10_000;

/** HostPool settings. */
export interface HostPoolOptions {
  /** number of host processes kept running */
  readonly size: number;
  /** default: host-worker.js next to media-host.js */
  readonly workerPath?: string;
  /** pipelines created in a host before it is replaced (pipelines are never freed); default 64 */
  readonly maxPipelinesPerHost?: number;
  /** how long run() waits for a host when none is up before the handle exits 'host-died'; default 30000 */
  readonly queueTimeoutMs?: number;
  /** ping, start and back-pressure settings of each host */
  readonly host?: Omit<MediaHostOptions, 'workerPath' | 'maxPipelines'>;
}

/** One host in stats(): its memory as of the last ping, and its slot. */
export interface HostStats extends HostMemory {
  readonly slot: number;
  readonly pid: number;
  readonly pipelines: number;
  readonly created: number;
  /** unexpected deaths in this slot so far */
  readonly restarts: number;
  readonly draining: boolean;
}

/** What pickHost() needs to know about a host. */
export interface HostLoad {
  readonly accepting: boolean;
  readonly pipelines: number;
  readonly createdCount: number;
}

/** Index of the least-loaded accepting host (fewest running, then fewest created), or -1. */
export function pickHost(hosts: readonly HostLoad[]): number {
  let best = -1;
  for (let i = 0; i < hosts.length; i++) {
    const h = hosts[i];
    const b = best >= 0 ? hosts[best] : undefined;
    if (!h?.accepting) continue;
    if (!b || h.pipelines < b.pipelines || (h.pipelines === b.pipelines && h.createdCount < b.createdCount)) best = i;
  }
  return best;
}

/** Delay before restarting a host after `quickDeaths` deaths in a row that each came soon after a start. */
export function restartDelayMs(quickDeaths: number): number {
  if (quickDeaths <= 1) return quickDeaths <= 0 ? 0 : 250;
  return Math.min(MAX_BACKOFF_MS, 250 * 2 ** (quickDeaths - 1));
}

interface Slot {
  readonly index: number;
  host: MediaHost | null;
  restarts: number;
  quickDeaths: number;
  startedAt: number;
  timer: NodeJS.Timeout | null;
}

interface Queued {
  readonly h: PipelineHandle;
  readonly launch: string;
  readonly opts: RunOptions;
  readonly timer: NodeJS.Timeout;
}

/** A supervised pool of media host processes that run pipelines, so a GStreamer crash costs only that host's pipelines. */
export class HostPool {
  private readonly o: HostPoolOptions;
  private readonly slots: Slot[];
  /** drained hosts finishing their last pipelines, with the slot they came from */
  private readonly retiring = new Map<MediaHost, Slot>();
  private queue: Queued[] = [];
  private started = false;
  private closing: Promise<void> | null = null;

  constructor(options: HostPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new AppError('INTERNAL', `host pool size must be an integer >= 1 [size:${options.size}]`);
    this.o = options;
    this.slots = Array.from({ length: options.size }, (_, index) => ({ index, host: null, restarts: 0, quickDeaths: 0, startedAt: 0, timer: null }));
  }

  /** Start every host; rejects only when none came up (failed ones keep being restarted). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const results = await Promise.allSettled(this.slots.map((s) => this.launch(s)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === results.length) throw new AppError('INTERNAL', `no media host could start: ${errMessage(failed[0]?.reason)}`);
  }

  /** Run a pipeline on the least-loaded host (waiting for one if none is up). Failures arrive as `exit`, never as a throw. */
  run(id: string, launch: string, opts: RunOptions = {}): PipelineHandle {
    const h = new PipelineHandle(id);
    if (this.closing) {
      setImmediate(() => h.end({ reason: 'stopped', error: 'the media host pool is closed' }));
      return h;
    }
    if (this.hosts().some((x) => x.has(id)) || this.queue.some((q) => q.h.id === id)) {
      setImmediate(() => h.end({ reason: 'error', error: `a pipeline with this id is already running [id:${id}]` }));
      return h;
    }
    const host = this.pick();
    if (host) {
      host.runHandle(h, launch, opts);
      return h;
    }
    const timeoutMs = this.o.queueTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      this.queue = this.queue.filter((q) => q.h !== h);
      h.end({ reason: 'host-died', error: `no media host became available within ${timeoutMs} ms` });
    }, timeoutMs);
    this.queue.push({ h, launch, opts, timer });
    return h;
  }

  /** Pipelines running in the hosts now: id and host pid (queued ones are not running yet). */
  running(): { id: string; hostPid: number }[] {
    return this.hosts().flatMap((host) => host.pipelineIds().map((id) => ({ id, hostPid: host.pid })));
  }

  /** EOS to the running pipeline `id` (its owner sees the usual `exit`); false when no host runs it. */
  endPipeline(id: string): boolean {
    return this.hosts().some((host) => host.endPipeline(id));
  }

  /** Every host process, draining ones included. */
  stats(): HostStats[] {
    const out: HostStats[] = [];
    const add = (host: MediaHost, slot: Slot) =>
      out.push({ slot: slot.index, pid: host.pid, pipelines: host.pipelines, created: host.createdCount, ...host.memory, restarts: slot.restarts, draining: host.draining });
    for (const s of this.slots) if (s.host) add(s.host, s);
    for (const [host, s] of this.retiring) add(host, s);
    return out;
  }

  /** EOS every pipeline, wait (bounded), end every host process. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of this.slots) if (s.timer) clearTimeout(s.timer);
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) {
        clearTimeout(q.timer);
        q.h.end({ reason: 'stopped', error: 'the media host pool is closed' });
      }
      await Promise.all(this.hosts().map((h) => h.close()));
      log.info('media hosts closed');
    })();
    return this.closing;
  }

  private hosts(): MediaHost[] {
    const out: MediaHost[] = [];
    for (const s of this.slots) if (s.host) out.push(s.host);
    return [...out, ...this.retiring.keys()];
  }

  private pick(): MediaHost | undefined {
    const hosts = this.slots.map((s) => s.host).filter((h): h is MediaHost => h !== null);
    return hosts[pickHost(hosts)];
  }

  private async launch(slot: Slot): Promise<void> {
    const host = new MediaHost({ ...this.o.host, workerPath: this.o.workerPath ?? DEFAULT_WORKER_PATH, maxPipelines: this.o.maxPipelinesPerHost });
    slot.host = host;
    slot.startedAt = Date.now();
    host.on('draining', () => {
      if (slot.host !== host || this.closing) return;
      log.info({ pid: host.pid, slot: slot.index }, 'media host reached its pipeline limit; starting a replacement');
      this.retiring.set(host, slot);
      slot.host = null;
      void this.launch(slot).catch(() => undefined);
    });
    host.on('exit', (x) => this.onExit(slot, host, x));
    try {
      await host.start();
    } catch (err) {
      log.error({ slot: slot.index, err: errMessage(err) }, 'media host failed to start');
      throw err;
    }
    this.flushQueue();
  }

  private onExit(slot: Slot, host: MediaHost, x: HostExit): void {
    this.retiring.delete(host);
    if (slot.host !== host) return;
    slot.host = null;
    if (this.closing) return;
    let delay = 0;
    if (!x.expected) {
      slot.restarts++;
      slot.quickDeaths = Date.now() - slot.startedAt < STABLE_MS ? slot.quickDeaths + 1 : 1;
      delay = restartDelayMs(slot.quickDeaths);
    }
    log.warn({ slot: slot.index, pid: host.pid, delayMs: delay, restarts: slot.restarts }, 'restarting media host');
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (!this.closing) void this.launch(slot).catch(() => undefined);
    }, delay);
  }

  private flushQueue(): void {
    while (this.queue.length > 0) {
      const q = this.queue[0];
      if (!q) break;
      if (q.h.done) {
        clearTimeout(q.timer);
        this.queue.shift();
        continue;
      }
      const host = this.pick();
      if (!host) break;
      this.queue.shift();
      clearTimeout(q.timer);
      host.runHandle(q.h, q.launch, q.opts);
    }
  }
}
