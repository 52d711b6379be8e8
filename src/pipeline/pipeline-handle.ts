import { TypedEmitter } from '../lib/typed-emitter';
import type { HostEvent, HostRequest } from './types';

/** A splitmuxsink fragment boundary. */
export interface Fragment {
  readonly location: string;
  /** pipeline running time of the boundary, ns */
  readonly runningTimeNs: number;
}

/** How a pipeline ended: 'eos' (finished cleanly), 'error' (a bus or parse error came first), 'stopped', 'host-died'. */
export interface PipelineExit {
  readonly reason: 'eos' | 'error' | 'stopped' | 'host-died';
  readonly error?: string;
}

/** Events of a PipelineHandle. */
export interface PipelineHandleEvents extends Record<string, unknown[]> {
  started: [];
  'fragment-opened': [Fragment];
  'fragment-closed': [Fragment];
  /** pipeline position in ns, about once a second (it moves in GOP steps behind splitmuxsink) */
  position: [number];
  /** the position did not advance for stallMs: EOS was sent */
  stalled: [];
  /** the camera's wall clock minus ours (ms), from its first RTCP sender report (edgerec's RTSP client only) */
  clock: [number];
  /** timestamp repairs by kind so far (edgerec's RTSP client only) */
  repairs: [Readonly<Record<string, number>>];
  /** element 'ipc': push() is dropping data because the host is not keeping up */
  warning: [{ readonly message: string; readonly element: string }];
  error: [{ readonly message: string; readonly debug: string; readonly element: string }];
  /** exactly once */
  exit: [PipelineExit];
}

/** What a handle needs from the host it runs on. */
export interface HostLink {
  pid(): number;
  send(req: HostRequest): boolean;
  /** send({ t: 'push', id, src, data }) without the request object (one per pushed tag or frame) */
  push(id: string, src: string, data: Uint8Array): boolean;
  /** the IPC backlog to the host is above its bound */
  overloaded(): boolean;
}

/**
 * One pipeline in a media host, seen from the main process. Events arrive asynchronously, so listeners added
 * right after run() see everything; `exit` comes exactly once.
 */
export class PipelineHandle extends TypedEmitter<PipelineHandleEvents> {
  readonly id: string;
  private link: HostLink | null = null;
  private finished = false;
  private ending = false;
  private sawEos = false;
  private firstError: string | null = null;
  private droppedBytes = -1;

  constructor(id: string) {
    super();
    this.id = id;
  }

  /** PID of the host process running it; 0 while it waits for a host. */
  get hostPid(): number {
    return this.link?.pid() ?? 0;
  }

  /** True once `exit` was emitted. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * Push bytes into appsrc `src`. Returns false when nothing was sent: the handle is gone or ending, or the IPC
   * backlog to the host is over its bound (the chunk is dropped; a `warning` from element 'ipc' starts and ends
   * each dropping episode). Dropping whole chunks, not blocking, because a publisher cannot be paused.
   * The host coalesces pushes into one IPC message per few ms (MediaHostOptions.pushBatchMs), so `buf` is held
   * until then and must not be modified; eos()/stop() go out after the pushes before them.
   */
  push(src: string, buf: Uint8Array): boolean {
    const link = this.link;
    if (!link || this.finished || this.ending) return false;
    if (link.overloaded()) {
      if (this.droppedBytes < 0) {
        this.droppedBytes = 0;
        this.emit('warning', { message: 'media host is not keeping up with pushed data; dropping it', element: 'ipc' });
      }
      this.droppedBytes += buf.byteLength;
      return false;
    }
    if (this.droppedBytes >= 0) {
      this.emit('warning', { message: `media host caught up; ${this.droppedBytes} bytes were dropped`, element: 'ipc' });
      this.droppedBytes = -1;
    }
    return link.push(this.id, src, buf);
  }

  /** Ask for a clean end (EOS; the host stops it if EOS does not arrive in time). */
  eos(): void {
    this.request('eos');
  }

  /** Stop now, without EOS. */
  stop(): void {
    this.request('stop');
  }

  private request(t: 'eos' | 'stop'): void {
    if (this.finished) return;
    this.ending = true;
    if (!this.link) {
      // still waiting for a host: nothing ran, nothing to finish
      this.end({ reason: 'stopped' });
      return;
    }
    this.link.send({ t, id: this.id });
  }

  /** Attach to the host that runs it (MediaHost only). */
  bind(link: HostLink): void {
    this.link = link;
  }

  /** An event from the host for this pipeline (MediaHost only). */
  deliver(ev: HostEvent): void {
    if (this.finished) return;
    switch (ev.t) {
      case 'started':
        return this.emit('started');
      case 'fragment-opened':
      case 'fragment-closed':
        return this.emit(ev.t, { location: ev.location, runningTimeNs: ev.runningTimeNs });
      case 'position':
        return this.emit('position', ev.positionNs);
      case 'stalled':
        return this.emit('stalled');
      case 'clock':
        return this.emit('clock', ev.offsetMs);
      case 'repairs':
        return this.emit('repairs', ev.counts);
      case 'warning':
        return this.emit('warning', { message: ev.message, element: ev.element });
      case 'error':
        this.firstError ??= `${ev.message} [element:${ev.element}]`;
        return this.emit('error', { message: ev.message, debug: ev.debug, element: ev.element });
      case 'eos':
        this.sawEos = true;
        return;
      case 'stopped':
        if (this.firstError !== null) return this.end({ reason: 'error', error: this.firstError });
        return this.end({ reason: this.sawEos ? 'eos' : 'stopped' });
      default:
        return;
    }
  }

  /** Emit `exit` once (MediaHost and HostPool only). */
  end(exit: PipelineExit): void {
    if (this.finished) return;
    this.finished = true;
    this.ending = true;
    this.emit('exit', exit);
  }
}
