import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { AppError, errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { holdBytes, releaseBytes } from '../lib/slab-pool';
import { TypedEmitter } from '../lib/typed-emitter';
import { CHANNEL_FD, MAX_FRAME_CHUNKS, encodePushFrame, encodePushHead, encodeRequestFrame } from './host-channel';
import { PipelineHandle, type HostLink } from './pipeline-handle';
import type { HostEvent, HostMemory, HostRequest, PushItem, RtspFeedSpec } from './types';

/** The compiled worker next to this file. */
export const DEFAULT_WORKER_PATH = join(__dirname, 'host-worker.js');

/** Per-pipeline options. */
export interface RunOptions {
  /** EOS after this long without the position advancing; 0 = off. Must exceed the source's GOP (splitmuxsink holds a GOP). */
  readonly stallMs?: number;
  /** how long an EOS may take before the pipeline is stopped; default 8000 */
  readonly eosTimeoutMs?: number;
  /** the host pulls this RTSP camera itself into the pipeline's appsrcs (launch-source feedFor) */
  readonly feed?: RtspFeedSpec | null;
}

/** MediaHost settings; every field has a default. */
export interface MediaHostOptions {
  /** default: host-worker.js next to this file */
  readonly workerPath?: string;
  /** pipelines created before the host drains and exits (pipelines are never freed); default 64 */
  readonly maxPipelines?: number;
  /** default 2000 */
  readonly pingIntervalMs?: number;
  /** a ping unanswered this long gets the host SIGKILLed; default 8000 */
  readonly pingTimeoutMs?: number;
  /** bytes queued to the worker (batched, or written to the channel and not yet taken by the pipe) above which push() drops data; default 16 MiB */
  readonly maxPendingBytes?: number;
  /** default 15000 */
  readonly startTimeoutMs?: number;
  /**
   * pushes are coalesced into one channel write at most this many ms after the first one waiting (or sooner, at
   * MAX_BATCH_BYTES or before any other request); 0 = at the end of the event-loop turn. Default 20 (the most):
   * 8 RTMP streams cost 2.42–2.49 % of a core each against 3.13–3.34 % at 10 ms (bench/README.md).
   */
  readonly pushBatchMs?: number;
}

/** coalesced push bytes that make the batch go out at once */
const MAX_BATCH_BYTES = 1024 * 1024;
const MAX_PUSH_BATCH_MS = 20;

/** Pushes to one appsrc waiting for the batch numbered `gen`. */
interface BatchItem extends PushItem {
  readonly chunks: Uint8Array[];
  readonly gen: number;
}

/** How a host process ended; `expected` when it was closed or drained. */
export interface HostExit {
  readonly expected: boolean;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: string;
}

/** Events of a MediaHost (the pool listens to them). */
export interface MediaHostEvents extends Record<string, unknown[]> {
  /** maxPipelines were created: no new pipelines; the host exits after its last one */
  draining: [];
  exit: [HostExit];
}

type State = 'new' | 'starting' | 'ready' | 'closing' | 'exited';

/** One supervised media host process (host-worker.js) and the pipelines running in it. */
export class MediaHost extends TypedEmitter<MediaHostEvents> {
  private readonly o: Required<MediaHostOptions>;
  private child: ChildProcess | null = null;
  private state: State = 'new';
  private readonly handles = new Map<string, PipelineHandle>();
  private created = 0;
  private mem: HostMemory = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  /** bytes handed to push() and not yet written to the channel (batched); the channel's own backlog is its writableLength */
  private pendingBytes = 0;
  /** the byte channel to the worker (host-channel.ts): every request goes through it, in order; IPC carries events back */
  private channel: Socket | null = null;
  /** waiting pushes by pipeline id + appsrc name, in first-push order */
  private batch: BatchItem[] = [];
  /**
   * items by pipeline id, then appsrc name (no key string built per push), kept across batches (an item belongs to
   * the batch numbered `gen`); a pipeline's entry goes when it stops
   */
  private readonly batchIndex = new Map<string, Map<string, BatchItem>>();
  private batchGen = 0;
  private batchBytes = 0;
  private batchTimer: { readonly cancel: () => void } | null = null;
  private pingSeq = 0;
  private pingSentAt: number | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private expectedExit = false;
  private fatal: string | null = null;
  private exited: Promise<void> | null = null;
  private readonly link: HostLink;

  constructor(options: MediaHostOptions = {}) {
    super();
    this.o = {
      workerPath: options.workerPath ?? DEFAULT_WORKER_PATH,
      maxPipelines: options.maxPipelines ?? 64,
      pingIntervalMs: options.pingIntervalMs ?? 2000,
      pingTimeoutMs: options.pingTimeoutMs ?? 8000,
      maxPendingBytes: options.maxPendingBytes ?? 16 * 1024 * 1024,
      startTimeoutMs: options.startTimeoutMs ?? 15_000,
      pushBatchMs: Math.min(MAX_PUSH_BATCH_MS, Math.max(0, options.pushBatchMs ?? 20)),
    };
    this.link = {
      pid: () => this.pid,
      send: (req) => this.send(req),
      push: (id, src, data) => this.enqueue(id, src, data),
      overloaded: () => this.pendingBytes + (this.channel?.writableLength ?? 0) > this.o.maxPendingBytes,
    };
  }

  /** Fork the worker; resolves when it answers a first ping (GStreamer loaded). */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new AppError('INTERNAL', `media host start() called twice [state:${this.state}]`);
    this.state = 'starting';
    // Each running pipeline's bus poll holds a libuv pool thread; the pool is sized before the child's first async call.
    const threads = Math.min(1024, 4 + 2 * this.o.maxPipelines);
    const child = fork(this.o.workerPath, [], {
      serialization: 'advanced',
      env: { ...process.env, UV_THREADPOOL_SIZE: String(threads), EDGEREC_HOST_CHANNEL: String(CHANNEL_FD) },
      // an allow-list: inheriting -e/-p/--test/--inspect would re-run the parent's code or clash on ports
      // --expose-gc: the host runs a full collection with its periodic malloc_trim (host-worker.ts, tidyMemory)
      execArgv: [...process.execArgv.filter((a) => /^--(max-old-space-size|max-semi-space-size|enable-source-maps|stack-size)\b/.test(a)), '--expose-gc'],
      // fd 4: the request channel (length-prefixed frames, media without a serializer; see host-channel.ts)
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
    });
    this.child = child;
    const log = rootLog.child({ component: 'media-host', pid: child.pid });
    const channel = child.stdio[CHANNEL_FD] as Socket | null;
    if (channel) {
      // a dead host's pipe errors (EPIPE) before its exit is seen: the exit handling reports it
      channel.on('error', (err) => log.debug({ err: errMessage(err) }, 'media host channel error'));
      this.channel = channel;
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.onExit(code, signal);
        resolve();
      });
    });
    child.on('error', (err) => log.error({ err: errMessage(err) }, 'media host process error'));
    child.on('message', (m) => this.onEvent(m as HostEvent));
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`media host did not answer within ${this.o.startTimeoutMs} ms [pid:${child.pid}]`)), this.o.startTimeoutMs);
      const onPong = (m: unknown) => {
        if ((m as HostEvent).t !== 'pong') return;
        clearTimeout(timer);
        child.off('message', onPong);
        resolve();
      };
      child.on('message', onPong);
      void this.exited?.then(() => {
        clearTimeout(timer);
        reject(new Error(`media host exited while starting${this.fatal ? `: ${this.fatal}` : ''} [pid:${child.pid}]`));
      });
    });
    this.ping();
    try {
      await ready;
    } catch (err) {
      this.kill();
      throw err;
    }
    if (this.state !== 'starting') throw new AppError('INTERNAL', `media host closed while starting [pid:${child.pid}]`);
    this.state = 'ready';
    this.pingTimer = setInterval(() => this.ping(), this.o.pingIntervalMs);
    this.pingTimer.unref();
    log.info({ threads }, 'media host started');
  }

  /** Start a pipeline in this host. Failures arrive as the handle's `error`/`exit` events, never as a throw. */
  run(id: string, launch: string, opts: RunOptions = {}): PipelineHandle {
    const h = new PipelineHandle(id);
    this.runHandle(h, launch, opts);
    return h;
  }

  /** Start a pipeline for a handle made elsewhere (the pool's queue). */
  runHandle(h: PipelineHandle, launch: string, opts: RunOptions = {}): void {
    const refuse = (error: string): void => {
      setImmediate(() => h.end({ reason: 'error', error }));
    };
    if (this.state !== 'ready') return refuse(`media host is not running [state:${this.state}]`);
    if (this.draining) return refuse(`media host is draining [created:${this.created}]`);
    if (this.handles.has(h.id)) return refuse(`a pipeline with this id is already running [id:${h.id}]`);
    this.handles.set(h.id, h);
    this.created++;
    h.bind(this.link);
    const sent = this.send({ t: 'start', id: h.id, launch, stallMs: opts.stallMs ?? 0, eosTimeoutMs: opts.eosTimeoutMs, ...(opts.feed ? { feed: opts.feed } : {}) });
    if (!sent) {
      this.handles.delete(h.id);
      setImmediate(() => h.end({ reason: 'host-died', error: 'media host IPC channel is closed' }));
    }
    if (this.created === this.o.maxPipelines) this.emit('draining');
  }

  /** Ids of the pipelines running here. */
  pipelineIds(): string[] {
    return [...this.handles.keys()];
  }

  /** EOS to the pipeline `id` if it runs here (the worker stops it if EOS does not arrive in time); false if not. */
  endPipeline(id: string): boolean {
    const h = this.handles.get(id);
    if (!h) return false;
    h.eos();
    return true;
  }

  /** True when a pipeline with this id runs here. */
  has(id: string): boolean {
    return this.handles.has(id);
  }

  /** OS process id (0 before start). */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** Pipelines running now. */
  get pipelines(): number {
    return this.handles.size;
  }

  /** Pipelines created over the host's life. */
  get createdCount(): number {
    return this.created;
  }

  /** True once maxPipelines were created: takes no new pipelines. */
  get draining(): boolean {
    return this.created >= this.o.maxPipelines;
  }

  /** Ready and not draining. */
  get accepting(): boolean {
    return this.state === 'ready' && !this.draining;
  }

  /** The worker's memory as of its last pong (zeros before the first). */
  get memory(): HostMemory {
    return this.mem;
  }

  /** EOS to every pipeline, wait for them (bounded by timeoutMs), then end the process (SIGKILL if it lingers). */
  async close(timeoutMs = 8000): Promise<void> {
    if (this.state === 'new') {
      this.state = 'exited';
      return;
    }
    this.expectedExit = true;
    if (this.state !== 'exited' && this.state !== 'closing') {
      this.state = 'closing';
      for (const h of this.handles.values()) h.eos();
      const deadline = Date.now() + timeoutMs;
      while (this.handles.size > 0 && this.child?.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      this.retire();
    }
    await this.exited;
  }

  /** SIGKILL the process; its pipelines end with 'host-died'. */
  kill(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private retire(): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.expectedExit = true;
    this.state = 'closing';
    if (child.connected) child.disconnect(); // the worker exits when its IPC channel closes
    setTimeout(() => this.kill(), 3000).unref();
  }

  /** Queue a push for the next batch; everything else goes out after the pushes before it. */
  private send(req: HostRequest): boolean {
    if (req.t === 'push') return this.enqueue(req.id, req.src, req.data);
    this.flush();
    return this.write(req, 0);
  }

  private enqueue(id: string, src: string, data: Uint8Array): boolean {
    const child = this.child;
    if (!child || !child.connected) return false;
    // kept until the write that carries it completed (or failed): slab bytes (lib/slab-pool) are not cut again before
    holdBytes(data);
    let bySrc = this.batchIndex.get(id);
    if (!bySrc) this.batchIndex.set(id, (bySrc = new Map()));
    const item = bySrc.get(src);
    if (item && item.gen === this.batchGen) item.chunks.push(data);
    else {
      const it: BatchItem = { id, src, chunks: [data], gen: this.batchGen };
      bySrc.set(src, it);
      this.batch.push(it);
    }
    this.batchBytes += data.byteLength;
    this.pendingBytes += data.byteLength;
    if (this.batchBytes >= MAX_BATCH_BYTES) this.flush();
    else if (!this.batchTimer) {
      if (this.o.pushBatchMs > 0) {
        const t = setTimeout(() => this.flush(), this.o.pushBatchMs);
        this.batchTimer = { cancel: () => clearTimeout(t) };
      } else {
        const t = setImmediate(() => this.flush());
        this.batchTimer = { cancel: () => clearImmediate(t) };
      }
    }
    return true;
  }

  /** Send the waiting pushes as one message. */
  private flush(): void {
    this.batchTimer?.cancel();
    this.batchTimer = null;
    if (this.batch.length === 0) return;
    const items: PushItem[] = this.batch;
    this.batch = [];
    this.batchGen++;
    const bytes = this.batchBytes;
    this.batchBytes = 0;
    // the batch's bytes are in pendingBytes already; write() releases them when the channel took them
    this.pendingBytes -= bytes;
    this.write({ t: 'push-many', items }, bytes);
  }

  private write(req: HostRequest, bytes: number): boolean {
    const child = this.child;
    const channel = this.channel;
    if (!child || !child.connected || (channel && (channel.destroyed || !channel.writable))) {
      if (req.t === 'push-many') releaseItems(req.items);
      return false;
    }
    if (channel) {
      // one writev per batch: frame headers and the tag buffers themselves, no serializer and no JS copy;
      // what the pipe has not taken yet is channel.writableLength (the back-pressure count)
      channel.cork();
      try {
        if (req.t === 'push-many') {
          // a stream calls its write callbacks in order: the last one's means every chunk of the batch left (or failed)
          const items = req.items;
          const lastItem = items[items.length - 1];
          for (const it of items) {
            const n = it.chunks.length;
            for (let i = 0; i < n; i += MAX_FRAME_CHUNKS) {
              const end = Math.min(n, i + MAX_FRAME_CHUNKS);
              channel.write(encodePushHead(it.id, it.src, it.chunks, i, end));
              for (let k = i; k < end; k++) {
                const c = it.chunks[k] as Uint8Array;
                if (it === lastItem && k === n - 1) channel.write(c, () => releaseItems(items));
                else channel.write(c);
              }
            }
          }
        }
        else if (req.t === 'push') for (const b of encodePushFrame(req.id, req.src, [req.data])) channel.write(b);
        else channel.write(encodeRequestFrame(req));
      } finally {
        channel.uncork();
      }
      return true;
    }
    this.pendingBytes += bytes;
    try {
      // the serializer copies the message before send() returns
      if (req.t === 'push-many') setImmediate(() => releaseItems(req.items));
      child.send(req, (err) => {
        this.pendingBytes -= bytes;
        if (err) rootLog.debug({ err: errMessage(err), pid: child.pid }, 'IPC send failed');
      });
      return true;
    } catch (err) {
      this.pendingBytes -= bytes;
      rootLog.debug({ err: errMessage(err), pid: child.pid }, 'IPC send threw');
      return false;
    }
  }

  private ping(): void {
    if (this.pingSentAt !== null) {
      if (Date.now() - this.pingSentAt > this.o.pingTimeoutMs) {
        rootLog.error({ component: 'media-host', pid: this.pid, timeoutMs: this.o.pingTimeoutMs }, 'media host does not answer; killing it');
        this.fatal ??= `media host did not answer a ping within ${this.o.pingTimeoutMs} ms`;
        this.kill();
      }
      return;
    }
    if (this.send({ t: 'ping', seq: ++this.pingSeq })) this.pingSentAt = Date.now();
  }

  private onEvent(ev: HostEvent): void {
    switch (ev.t) {
      case 'pong':
        this.pingSentAt = null;
        this.mem = ev.memory;
        return;
      case 'fatal':
        this.fatal = ev.message;
        return;
      default: {
        const h = this.handles.get(ev.id);
        if (!h) return;
        if (ev.t === 'stopped') {
          this.handles.delete(ev.id);
          this.batchIndex.delete(ev.id);
        }
        h.deliver(ev);
        if (this.handles.size === 0 && this.draining && this.state === 'ready') this.retire();
      }
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const expected = this.expectedExit && this.fatal === null;
    this.state = 'exited';
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.flush(); // the channel is gone: this only drops the batch and its byte count
    this.batchIndex.clear();
    const error = this.fatal ?? `media host exited [pid:${this.pid}, code:${code}, signal:${signal}]`;
    const log = rootLog.child({ component: 'media-host', pid: this.pid });
    if (expected) log.info({ code, signal }, 'media host exited');
    else log.error({ code, signal, reason: error }, 'media host died');
    const handles = [...this.handles.values()];
    this.handles.clear();
    // a close() whose pipelines did not finish in time is not a death
    for (const h of handles) h.end(expected ? { reason: 'stopped', error: 'media host closed' } : { reason: 'host-died', error });
    this.emit('exit', { expected, code, signal, error: expected ? undefined : error });
  }
}

/** The batch's bytes are no longer read here (enqueue held each). */
function releaseItems(items: readonly PushItem[]): void {
  for (const it of items) for (const c of it.chunks) releaseBytes(c);
}
