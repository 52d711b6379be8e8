import { randomUUID } from 'node:crypto';
import type { CameraConf } from '../../conf/types';
import { AppError, errMessage } from '../../lib/errors';
import { type Logger, log as rootLog, redactUrl } from '../../lib/log';
import { describePipeline } from '../../pipeline/launch';
import type { PipelineHandle } from '../../pipeline/host-pool';
import { feedCarries, feedFor } from '../../pipeline/launch-source';
import type { Codecs, RtspClient, SourceSpec } from '../../pipeline/types';
import type { PullController } from '../../recorder/manager';
import { Recorder, type RecordingContext, recordingContext, type RecordingSettings } from '../../recorder/recorder';
import type { Stream, StreamStatus } from '../../recorder/stream';
import { Backoff } from '../../lib/backoff';
import { describeRtsp, type RtspDescription } from '../../protocols/rtsp/describe';
import { unsupportedTrack } from '../../protocols/rtp/depay';
import { sdpCodecs } from '../../protocols/sdp/sdp';
import { probeCameraClock } from '../../protocols/rtsp/clock-probe';

/** How long the clock probe waits for the camera's first RTCP sender report. */
const CLOCK_PROBE_MS = 8000;

export interface CameraOptions extends RecordingContext {
  /** counted in metrics */
  readonly onReconnect?: (name: string) => void;
  /** timestamp repairs (edgerec's RTSP client), counted in metrics */
  readonly onRepair?: (name: string, kind: string, n: number) => void;
}

/**
 * One RTSP camera, supervised for months: learn its codecs (DESCRIBE), pull it in a pipeline that records or
 * only monitors, and on any loss (refused, killed, frozen, new SPS) end the file cleanly and reconnect with a
 * backoff that grows to a cap. The media session id stays the same across reconnects.
 */
export class Camera implements Stream, PullController {
  readonly mediaSessionId = randomUUID();
  readonly protocol = 'rtsp' as const;
  readonly sessionId: string;
  readonly login = '';
  readonly startedAt = Date.now();
  private cam: CameraConf;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private state: StreamStatus = 'connecting';
  private detected: Codecs = { video: null, audio: null };
  /** who pulls the camera on this connection (chosen after each DESCRIBE) */
  private client: RtspClient = 'gstreamer';
  private clientNote = '';
  private attempts = 0;
  private lastError: string | null = null;
  private retryDelayMs: number | null = null;
  private connectedAt: number | null = null;
  private desired: RecordingSettings | null = null;
  private rec: Recorder | null = null;
  private monitor: PipelineHandle | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  /** the camera's clock minus ours (ms) from its RTCP sender reports; null: not known (server clock used) */
  private clockOffsetMs: number | null = null;
  private clockProbe: Promise<void> | null = null;
  /** timestamp repairs of edgerec's RTSP client over this camera's life, by kind */
  private readonly repairs: Record<string, number> = {};

  constructor(
    cam: CameraConf,
    private readonly o: CameraOptions,
  ) {
    this.cam = cam;
    this.sessionId = Buffer.from(this.mediaSessionId).toString('base64').slice(0, 60);
    this.log = rootLog.child({ component: 'camera', stream: cam.name });
    // what the next connection will use, until a DESCRIBE tells more (chooseClient)
    this.client = o.conf().rtsp_client === 'edgerec' && cam.transport === 'tcp' ? 'edgerec' : 'gstreamer';
    const c = o.conf();
    this.backoff = new Backoff({ minMs: c.rtsp_reconnect_min_delay * 1000, maxMs: c.rtsp_reconnect_max_delay * 1000 });
  }

  get name(): string {
    return this.cam.name;
  }

  codecs(): Codecs {
    return this.detected;
  }

  status(): StreamStatus {
    return this.state;
  }

  source(): SourceSpec {
    return { kind: 'rtsp', url: this.cam.url, transport: this.cam.transport, client: this.client };
  }

  /** edgerec's own client where config, transport and the camera's tracks allow, else rtspsrc (the reason logged once). */
  private chooseClient(d: RtspDescription): RtspClient {
    if (this.o.conf().rtsp_client !== 'edgerec') return 'gstreamer';
    let why = '';
    if (this.cam.transport !== 'tcp') why = 'the camera is pulled over UDP';
    else if (!feedCarries(d.codecs.video, d.codecs.audio)) why = `edgerec's client does not carry ${d.codecs.video ?? 'no video'} + ${d.codecs.audio ?? 'no audio'}`;
    else {
      const video = d.media.find((m) => m.media === 'video' && d.codecs.video && sdpCodecs([m]).video === d.codecs.video);
      const audio = d.media.find((m) => m.media === 'audio' && d.codecs.audio && sdpCodecs([m]).audio === d.codecs.audio);
      why = (video && unsupportedTrack(video)) || (audio && unsupportedTrack(audio)) || '';
    }
    if (why && why !== this.clientNote) this.log.info({ reason: why }, "pulling this camera with rtspsrc rather than edgerec's RTSP client");
    this.clientNote = why;
    return why ? 'gstreamer' : 'edgerec';
  }

  /** {startTime}: the camera's wall clock from its RTCP sender reports where it sends them, else ours. */
  streamClock(epochMs: number): number {
    return epochMs + (this.clockOffsetMs ?? 0);
  }

  /**
   * Learn the camera's clock from its first RTCP sender report, on a short second session once the pipeline is
   * connected (not before: a camera with one session slot must give it to the recording).
   */
  private probeClock(): void {
    if (this.clockProbe || this.stopping) return;
    this.clockProbe = probeCameraClock(this.cam.url, { timeoutMs: CLOCK_PROBE_MS })
      .then((off) => {
        if (off !== null) this.setClock(off);
        else this.log.debug('no RTCP sender report from the camera; its files use the server clock');
      })
      .catch((err: unknown) => this.log.debug({ reason: errMessage(err) }, 'camera clock probe failed; its files use the server clock'))
      .finally(() => (this.clockProbe = null));
  }

  /** The camera's clock offset from an RTCP sender report (the probe's, or edgerec's RTSP client's). */
  private setClock(off: number): void {
    // a clock set decades off (never synced) still names files as the camera sees time; only a negative time is refused
    if (Date.now() + off <= 0) return;
    if (this.clockOffsetMs === null || Math.abs(off - this.clockOffsetMs) > 1000) this.log.info({ clockOffsetMs: off }, 'camera clock from its RTCP sender reports');
    this.clockOffsetMs = off;
  }

  details(): Record<string, unknown> {
    return {
      url: redactUrl(this.cam.url),
      transport: this.cam.transport,
      client: this.client,
      connectedAt: this.connectedAt,
      clockOffsetMs: this.clockOffsetMs,
      reconnectAttempts: this.attempts,
      retryDelayMs: this.retryDelayMs,
      lastError: this.lastError,
      timestampRepairs: { nudged: 0, clipped: 0, rebased: 0, dropped: 0, ...this.repairs },
    };
  }

  recorder(): Recorder | null {
    return this.rec?.active ? this.rec : null;
  }

  pipelineIds(): string[] {
    const ids: string[] = [];
    const r = this.rec?.pipelineId;
    if (r) ids.push(r);
    if (this.monitor && !this.monitor.done) ids.push(this.monitor.id);
    return ids;
  }

  /** Record with these settings, or only monitor (null); the running pipeline is swapped at once. */
  async setRecording(settings: RecordingSettings | null): Promise<void> {
    this.desired = settings;
    await this.endCurrent();
  }

  /** Start the supervision loop. */
  start(): void {
    this.loopDone = this.loop();
  }

  /** The camera's config changed (URL, transport...): reconnect with it. */
  async update(cam: CameraConf): Promise<void> {
    if (cam.url !== this.cam.url) this.clockOffsetMs = null;
    this.cam = cam;
    this.backoff.reset();
    await this.endCurrent();
  }

  /** Stop for good: the recording finalizes. Safe twice. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.endCurrent();
    this.wake?.();
    await this.loopDone;
    this.state = 'stopped';
  }

  private async endCurrent(): Promise<void> {
    const rec = this.rec;
    const mon = this.monitor;
    if (rec) await rec.stop();
    if (mon) {
      mon.eos();
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          mon.stop();
          r();
        }, 3000);
        mon.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private async loop(): Promise<void> {
    for (let i = 0; !this.stopping && i < Number.MAX_SAFE_INTEGER; i++) {
      const t0 = Date.now();
      const ok = await this.runOnce().catch((err: unknown) => {
        this.lastError = errMessage(err);
        return false;
      });
      if (this.stopping) break;
      // A connection that lived a while resets the backoff; a switch between record and monitor reconnects at once.
      if (ok === 'switch') continue;
      if (this.connectedAt !== null && Date.now() - t0 > 10_000) this.backoff.reset();
      this.connectedAt = null;
      this.state = 'reconnecting';
      this.attempts++;
      this.o.onReconnect?.(this.cam.name);
      const delay = this.backoff.next();
      this.retryDelayMs = delay;
      // Log the first failures and then only every 10th, so a dead camera never floods the log.
      if (this.attempts <= 3 || this.attempts % 10 === 0)
        this.log.warn({ attempt: this.attempts, delayMs: delay, reason: this.lastError }, 'camera lost; reconnecting');
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
    }
  }

  /** One connection: DESCRIBE, then a pipeline until it ends. Returns 'switch' when ended to change mode. */
  private async runOnce(): Promise<boolean | 'switch'> {
    this.state = this.attempts === 0 ? 'connecting' : 'reconnecting';
    const d = await describeRtsp(this.cam.url, { timeoutMs: 5000 });
    if (!d.codecs.video && !d.codecs.audio) throw new AppError('PEER_FAILED', 'the camera offers no media we can record');
    this.detected = d.codecs;
    this.client = this.chooseClient(d);
    if (this.stopping) return false;
    const settings = this.desired;
    const stallMs = this.o.conf().rtsp_stall_timeout * 1000;
    // "connected" (and "camera back") only once media flows: a pipeline that failed before any media reports position 0
    const progress = (positionMs: number) => {
      if (!(positionMs > 0)) return;
      if (this.state !== 'connected') {
        this.state = 'connected';
        this.connectedAt = Date.now();
        if (this.attempts > 0) this.log.info({ attempts: this.attempts }, 'camera back');
        this.attempts = 0;
        this.lastError = null;
        this.retryDelayMs = null;
        // edgerec's client reads the sender reports on the recording's own session (a 'clock' event)
        if (this.client !== 'edgerec') this.probeClock();
      }
    };
    if (settings) {
      const rec = new Recorder({ ...recordingContext(this.o), stream: this, settings, stallMs, restartOnHostDeath: false });
      this.rec = rec;
      rec.on('progress', progress);
      // Shown at once: the pipeline's end after a stall may take a while (rtspsrc waits on a frozen server).
      rec.on('clock', (ms) => this.setClock(ms));
      // counts are per pipeline: add what is new since the last report of this one
      let seen: Readonly<Record<string, number>> = {};
      rec.on('repairs', (c) => {
        for (const [kind, n] of Object.entries(c)) {
          const d = n - (seen[kind] ?? 0);
          if (d <= 0) continue;
          this.repairs[kind] = (this.repairs[kind] ?? 0) + d;
          this.o.onRepair?.(this.cam.name, kind, d);
        }
        seen = c;
      });
      rec.on('stalled', () => {
        this.lastError = `no media for ${stallMs} ms`;
      });
      let exitReason = '';
      rec.on('exit', (x) => {
        exitReason = x.reason;
        if (x.reason !== 'stopped' && x.reason !== 'eos') this.lastError = x.error ?? x.reason;
        else if (x.reason === 'eos' && !this.stopping) this.lastError = 'the camera ended the stream';
      });
      rec.start();
      await rec.whenClosed();
      this.rec = null;
      if (exitReason === 'stalled') this.lastError = `no media for ${stallMs} ms`;
      return this.desired !== settings ? 'switch' : true;
    }
    const source = this.source();
    const launch = describePipeline({ source, codecs: this.detected, output: null });
    const feed = feedFor(source, this.detected.video, this.detected.audio);
    const h = this.o.pool.run(`cam-${this.mediaSessionId}-${Date.now()}`, launch, { stallMs, feed });
    this.monitor = h;
    h.on('position', (ns) => progress(ns / 1e6));
    let stalled = false;
    h.on('clock', (ms) => this.setClock(ms));
    h.on('stalled', () => {
      stalled = true;
      this.lastError = `no media for ${stallMs} ms`;
    });
    await new Promise<void>((r) =>
      h.once('exit', (x) => {
        if (x.reason !== 'stopped' && !stalled) this.lastError = x.error ?? x.reason;
        r();
      }),
    );
    this.monitor = null;
    return this.desired !== settings ? 'switch' : true;
  }
}
