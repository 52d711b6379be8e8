import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Conf, Rotation } from '../conf/types';
import { AppError, errMessage } from '../lib/errors';
import { Backoff } from '../lib/backoff';
import { type Logger, log as rootLog } from '../lib/log';
import { TypedEmitter } from '../lib/typed-emitter';
import { describePipeline, extensionFor, recordedCodecs } from '../pipeline/launch';
import { feedFor } from '../pipeline/launch-source';
import { mjpegH264Encoder } from '../pipeline/hw-encoders';
import type { HostPool, PipelineHandle } from '../pipeline/host-pool';
import type { Container, OutputSpec } from '../pipeline/types';
import type { RecordingsStore } from '../store/recordings';
import { expandTemplate, templateVars } from '../conf/template';
import { removeWalSync, walSpec } from '../mp4/write-ahead';
import type { FragmentFinalizer } from './fragment-finalizer';
import { chooseContainer } from './container';
import type { Stream } from './stream';

/** Settings of one recording, resolved from the config and the request. */
export interface RecordingSettings {
  readonly template: string;
  readonly rotation: Rotation;
}

/** What every recording is made with (the engine's; the manager and the cameras pass it on). */
export interface RecordingContext {
  readonly conf: () => Conf;
  readonly pool: HostPool;
  readonly store: RecordingsStore;
  readonly finalizer: FragmentFinalizer;
  /** where new fragments are written: record_tmp_dir, or the spill dir when it is nearly full (TmpSpace) */
  readonly tmpDir?: () => string;
}

/** Just the recording context of a larger options object (what a Recorder is given from it). */
export function recordingContext(o: RecordingContext): RecordingContext {
  return { conf: o.conf, pool: o.pool, store: o.store, finalizer: o.finalizer, tmpDir: o.tmpDir };
}

export interface RecorderOptions extends RecordingContext {
  readonly stream: Stream;
  readonly settings: RecordingSettings;
  /** ms without media before the pipeline counts as stalled (0 = no watchdog) */
  readonly stallMs?: number;
  /** restart the pipeline when its host dies (push sources); pull sources are restarted by their owner */
  readonly restartOnHostDeath: boolean;
  /**
   * restart the pipeline after an error, with a growing delay (push sources: a full tmp dir must not end a
   * publisher's recording for good); pull sources reconnect in their owner's loop instead
   */
  readonly restartOnError?: boolean;
}

/**
 * A running time from splitmuxsink that is a time: a muxer opened before any media (a camera failing at SETUP)
 * reports GST_CLOCK_STIME_NONE, which the binding hands over as 2^63 (a name ~292 years ahead).
 */
export function isRunningTime(ns: number): boolean {
  return Number.isFinite(ns) && ns >= 0 && ns < 2 ** 62;
}

/** How long a fragment the muxer has moved past may take to be closed before it is finalized anyway. */
const CLOSE_WAIT_MS = 15_000;

/** Why a recorder's pipeline ended. */
export interface RecorderExit {
  readonly reason: 'eos' | 'error' | 'stopped' | 'host-died' | 'stalled';
  readonly error?: string;
}

export type RecorderEvents = {
  /** a fragment was opened (row inserted) */
  fragment: [{ rowId: number; index: number; fileName: string }];
  /** media is flowing (position advanced) */
  progress: [positionMs: number];
  /** no media for stallMs: the pipeline is being ended (exit follows with reason 'stalled') */
  stalled: [];
  /** the camera's wall clock minus ours, ms (from the pipeline's RTSP client) */
  clock: [offsetMs: number];
  /** timestamp repairs of this pipeline so far, by kind (from the pipeline's RTSP client) */
  repairs: [counts: Readonly<Record<string, number>>];
  /** the pipeline ended; the recorder may restart it (host death) unless stopped */
  exit: [RecorderExit];
  /** the recorder is done: stopped or ended, every fragment handed to the finalizer */
  closed: [];
};

interface OpenFragment {
  readonly rowId: number;
  readonly index: number;
  readonly tmpPath: string;
  readonly startEpochMs: number;
}

/** One recording of one stream: runs its pipeline, turns fragments into index rows and finalized files. */
export class Recorder extends TypedEmitter<RecorderEvents> {
  readonly id = randomUUID();
  readonly container: Container;
  private readonly log: Logger;
  private handle: PipelineHandle | null = null;
  private generation = 0;
  private fragmentCount = 0;
  private open: OpenFragment | null = null;
  /**
   * Fragments splitmuxsink has moved past but not yet closed (async-finalize opens the next fragment before the
   * previous muxer has written its last data): finalized at their fragment-closed, not before, by tmp path.
   */
  private readonly closing = new Map<string, { f: OpenFragment; endEpochMs: number; timer: NodeJS.Timeout }>();
  private baseEpochMs = 0;
  private lastPositionMs = 0;
  /** a fragment the muxer opened with no running time (no media reached it): no row until it has one */
  private unborn: string | null = null;
  private stopping = false;
  private closed = false;
  private stalled = false;
  private lastFileName: string;
  /** set by rotateNow(): the pipeline's end starts the next generation instead of ending the recording */
  private rotating = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly errorBackoff = new Backoff({ minMs: 1000, maxMs: 30_000 });
  /** the directory the running pipeline writes its fragments to */
  private dir = '';
  private readonly ended: Promise<void>;
  private resolveEnded: () => void = () => undefined;

  constructor(private readonly o: RecorderOptions) {
    super();
    this.container = chooseContainer(o.stream.codecs(), o.conf().record_h264_to_ts);
    this.log = rootLog.child({ component: 'recorder', stream: o.stream.name, recording: this.id });
    this.lastFileName = this.nameFor(null, null);
    this.ended = new Promise((r) => (this.resolveEnded = r));
  }

  /** The file name as it stands (unfilled end elements while recording). */
  fileName(): string {
    return this.lastFileName;
  }

  /** True until stop() or the pipeline ended for good. */
  get active(): boolean {
    return !this.closed;
  }

  /** Id of the pipeline running now in a media host (null between pipelines and once closed). */
  get pipelineId(): string | null {
    return this.handle?.id ?? null;
  }

  /** The directory the running pipeline writes to ('' before the first launch). */
  get tmpDirInUse(): string {
    return this.dir;
  }

  /**
   * Close the open fragment now and go on in a new one, written to the current tmpDir(): EOS, then a new
   * pipeline (for a camera, a new connection: about a second without media at the switch). False when there is
   * no running pipeline to rotate.
   */
  rotateNow(why: string): boolean {
    const h = this.handle;
    if (this.closed || this.stopping || this.rotating || !h) return false;
    this.rotating = true;
    this.log.info({ why, dir: this.dir }, 'rotating early');
    h.eos();
    const timer = setTimeout(() => {
      if (this.handle === h) {
        this.log.warn('pipeline did not end in time after EOS for an early rotation; stopping it');
        h.stop();
      }
    }, this.o.conf().record_stop_timeout * 1000);
    h.once('exit', () => clearTimeout(timer));
    return true;
  }

  /** Launch the pipeline. */
  start(): void {
    if (this.closed) throw new AppError('INTERNAL', 'recorder closed');
    this.launch();
  }

  /**
   * Stop: EOS through the pipeline so the muxer finishes the file; answers within record_stop_timeout even if
   * the pipeline has not ended by then (then it is stopped hard; the partial fragment is still finalized).
   */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.stopping = true;
    const h = this.handle;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (!h) {
      this.finish();
      return;
    }
    h.eos();
    const timeoutMs = this.o.conf().record_stop_timeout * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.ended.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn({ timeoutMs }, 'pipeline did not end in time after EOS; stopping it');
      h.stop();
    }
  }

  /** Resolves once the recorder has closed. */
  whenClosed(): Promise<void> {
    return this.ended;
  }

  private launch(): void {
    const conf = this.o.conf();
    const gen = ++this.generation;
    this.dir = this.o.tmpDir?.() ?? conf.record_tmp_dir;
    const tmpPattern = join(this.dir, `rec-${this.id}-g${gen}-%05d.${extensionFor(this.container)}`);
    const output: OutputSpec = {
      container: this.container,
      location: tmpPattern,
      maxSizeTimeNs: this.o.settings.rotation.kind === 'seconds' ? this.o.settings.rotation.seconds * 1e9 : 0,
      maxSizeBytes: this.o.settings.rotation.kind === 'megabytes' ? this.o.settings.rotation.megabytes * 1024 * 1024 : 0,
      aac: { sampleRate: conf.record_audio_codec_sample_rate, channels: conf.record_audio_codec_channels, bitrateMode: conf.record_fdk_aac_bitrate_mode },
      webm: { clusterMs: conf.webm_cluster_duration_limit, clusterBytes: conf.webm_cluster_size_limit },
      writeAhead: walSpec(this.dir, `rec-${this.id}-g${gen}`, this.container, conf.record_write_ahead_seconds),
    };
    const walDir = this.dir;
    let launch: string;
    try {
      launch = describePipeline({ source: this.o.stream.source(), codecs: this.o.stream.codecs(), output }, { h264Encoder: mjpegH264Encoder(), keyframeStart: true, flvFrames: true });
    } catch (err) {
      this.log.error({ err: errMessage(err) }, 'cannot describe a pipeline for this stream');
      this.emit('exit', { reason: 'error', error: errMessage(err) });
      this.finish();
      return;
    }
    this.log.debug({ launch: launch.replace(/location=\S*rtsps?:\/\/\S*/g, 'location=***') }, 'launching pipeline');
    const source = this.o.stream.source();
    const found = feedFor(source, this.o.stream.codecs().video, this.o.stream.codecs().audio);
    const feed = found ? { ...found, audioHold: conf.record_audio_buffer_max_size } : null;
    const h = this.o.pool.run(`${this.id}-g${gen}`, launch, { stallMs: this.o.stallMs ?? 0, feed });
    this.handle = h;
    this.baseEpochMs = Date.now();
    this.stalled = false;
    let detach: (() => void) | null = null;
    h.on('started', () => {
      this.baseEpochMs = Date.now();
      if (this.o.stream.attach) detach = this.o.stream.attach((src, data) => h.push(src, data), { holds: true }); // MediaHost holds what it batches
      this.o.stream.requestKeyframe?.();
    });
    h.on('fragment-opened', (f) => this.onOpened(f.location, f.runningTimeNs));
    h.on('fragment-closed', (f) => this.onClosed(f.location, f.runningTimeNs));
    h.on('position', (ns) => {
      this.lastPositionMs = ns / 1e6;
      // a pipeline that has run a while after a restart resets the error delay
      if (this.lastPositionMs > 10_000) this.errorBackoff.reset();
      this.emit('progress', this.lastPositionMs);
    });
    h.on('stalled', () => {
      this.stalled = true;
      this.emit('stalled');
    });
    h.on('clock', (ms) => this.emit('clock', ms));
    h.on('repairs', (c) => this.emit('repairs', c));
    h.on('error', (e) => this.log.warn({ element: e.element, reason: e.message }, 'pipeline error'));
    // the media host did not keep up with pushed media (data dropped, and when it caught up): worth an operator's look
    h.on('warning', (w) => {
      if (w.element === 'ipc') this.log.warn({ reason: w.message }, 'media host backlog');
    });
    h.on('exit', (x) => {
      detach?.();
      this.handle = null;
      // the pipeline ended: its fragments are complete (or finalized as they stand), the write-ahead is not needed
      if (output.writeAhead) {
        try {
          removeWalSync(walDir, `rec-${this.id}-g${gen}`);
        } catch (err) {
          this.log.warn({ err: errMessage(err) }, 'could not remove the write-ahead sidecar');
        }
      }
      // Fragments still closing or open (host died, hard stop) are finalized as they stand: tmp files are crash-safe.
      for (const loc of [...this.closing.keys()]) this.finishClosing(loc);
      if (this.open) this.closeFragment(this.open, this.baseEpochMs + this.lastPositionMs);
      this.discardUnborn();
      const reason = this.stalled && x.reason !== 'host-died' ? 'stalled' : x.reason;
      if (this.rotating) {
        this.rotating = false;
        if (!this.stopping) {
          this.launch();
          return;
        }
      }
      this.emit('exit', { reason, error: x.error });
      const restart = !this.stopping && ((reason === 'host-died' && this.o.restartOnHostDeath) || (reason === 'error' && this.o.restartOnError === true));
      if (restart) {
        const delayMs = reason === 'host-died' ? 200 : this.errorBackoff.next();
        if (reason === 'host-died') this.log.warn('media host died; resuming the recording in a new file');
        else this.log.warn({ reason: x.error, delayMs }, 'pipeline failed; resuming the recording in a new file');
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          if (this.stopping) this.finish();
          else this.launch();
        }, delayMs);
        return;
      }
      this.finish();
    });
  }

  private onOpened(location: string, runningTimeNs: number): void {
    if (!isRunningTime(runningTimeNs)) {
      // no media reached the muxer (yet): a row is written only from a real time (the first keyframe)
      this.unborn = location;
      return;
    }
    const prev = this.open;
    if (prev) {
      // Ends where the next one starts; its file is finalized once the muxer has closed it (bounded wait).
      this.open = null;
      const timer = setTimeout(() => {
        this.log.warn({ location: prev.tmpPath }, 'no fragment-closed from the muxer in time; finalizing the fragment as it stands');
        this.finishClosing(prev.tmpPath);
      }, CLOSE_WAIT_MS);
      this.closing.set(prev.tmpPath, { f: prev, endEpochMs: this.baseEpochMs + runningTimeNs / 1e6, timer });
    }
    const index = ++this.fragmentCount;
    const startEpochMs = Math.round(this.baseEpochMs + runningTimeNs / 1e6);
    const codecs = this.o.stream.codecs();
    const fileName = this.nameFor(index, startEpochMs);
    this.lastFileName = fileName;
    const rowId = this.o.store.insert({
      fileName,
      path: location,
      tmpPath: location,
      streamName: this.o.stream.name,
      mediaSessionId: this.o.stream.mediaSessionId,
      sourceProtocol: this.o.stream.protocol,
      startMs: startEpochMs,
      // what the file holds (Opus and G.711 are transcoded to AAC for MP4/TS), not what the source sends
      audioCodec: recordedCodecs(codecs, this.container).audio,
      videoCodec: recordedCodecs(codecs, this.container).video,
      container: this.container,
      fragmentIndex: index,
      state: 'recording',
    });
    this.open = { rowId, index, tmpPath: location, startEpochMs };
    this.emit('fragment', { rowId, index, fileName });
  }

  private onClosed(location: string, runningTimeNs: number): void {
    if (location === this.unborn) {
      this.discardUnborn();
      return;
    }
    if (this.closing.has(location)) {
      this.finishClosing(location);
      return;
    }
    const f = this.open;
    if (!f || f.tmpPath !== location) {
      this.log.warn({ location }, 'close of a fragment that is not open');
      return;
    }
    // Not dropped when closed at its opening running time: on a short recording splitmuxsink reports the GOP
    // start at close although the fragment holds that GOP; the finalizer marks a truly empty one failed.
    this.closeFragment(f, this.baseEpochMs + runningTimeNs / 1e6);
  }

  /** The muxer's file of a fragment that never got media: removed, no row (a failing camera leaves nothing). */
  private discardUnborn(): void {
    const location = this.unborn;
    if (!location) return;
    this.unborn = null;
    try {
      rmSync(location, { force: true });
      this.log.debug({ file: basename(location) }, 'the muxer opened a file but no media reached it; removed, no row');
    } catch (err) {
      this.log.warn({ file: basename(location), err: errMessage(err) }, 'could not remove an empty tmp file');
    }
  }

  private finishClosing(location: string): void {
    const c = this.closing.get(location);
    if (!c) return;
    clearTimeout(c.timer);
    this.closing.delete(location);
    this.closeFragment(c.f, c.endEpochMs);
  }

  private closeFragment(f: OpenFragment, endEpochMs: number): void {
    if (this.open === f) this.open = null;
    const end = Math.max(f.startEpochMs, Math.round(endEpochMs));
    this.o.finalizer.submit({
      rowId: f.rowId,
      tmpPath: f.tmpPath,
      container: this.container,
      codecs: this.o.stream.codecs(),
      streamName: this.o.stream.name,
      name: (endMs) => this.nameFor(f.index, f.startEpochMs, endMs),
      startMs: f.startEpochMs,
      endMs: end,
    });
  }

  /** The file name for fragment `index` (null: not rotating) from start/end epoch ms (null: not known yet). */
  private nameFor(index: number | null, startEpochMs: number | null, endEpochMs?: number): string {
    const conf = this.o.conf();
    const rotating = this.o.settings.rotation.kind !== 'disabled';
    return expandTemplate(
      this.o.settings.template,
      templateVars(this.o.stream, this.container, startEpochMs, endEpochMs),
      {
        exclude: conf.exclude_record_name_characters,
        encoding: conf.encode_record_name,
        fragmentIndex: rotating && conf.record_rotation_index_enabled && index !== null ? index : null,
        extension: this.container,
      },
    );
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.resolveEnded();
    this.emit('closed');
  }
}
