import { basename } from 'node:path';
import type { Conf, Rotation } from '../conf/types';
import { AppError } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { TypedEmitter } from '../lib/typed-emitter';
import { Recorder, type RecordingContext, recordingContext, type RecordingSettings } from './recorder';
import type { RecordingOverrides, Stream } from './stream';

/** A stream that runs its own pipeline (an RTSP camera): the manager asks it to record or not. */
export interface PullController {
  /** record with these settings, or stop recording (null) */
  setRecording(settings: RecordingSettings | null): Promise<void>;
  recorder(): Recorder | null;
  /** ids of the pipelines the stream runs now (recording or only monitoring) */
  pipelineIds?(): string[];
}

interface Entry {
  /** once ended, only what /stream/find answers (endedStream): not the session behind it */
  stream: Stream;
  readonly controller: PullController | null;
  recorder: Recorder | null;
  lastFileName: string | null;
  /** index row of the latest fragment: its finalized name becomes lastFileName */
  lastRowId: number | null;
  endedAt: number | null;
  /** start/stop operations of this session run one after another, in call order */
  ops: Promise<void>;
}

/** A stream as answered by /stream/find_all and /stream/find. */
export interface StreamView {
  readonly mediaSessionId: string;
  readonly name: string;
  readonly published: string;
  readonly status: string;
  readonly recording: boolean;
  readonly audioCodec: string | null;
  readonly videoCodec: string | null;
  readonly fileName: string | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly [k: string]: unknown;
}

/** The recording context (conf, hosts, index, finalizer, tmp dir). */
export type RecordingManagerOptions = RecordingContext;

/** How long an ended stream stays answerable by /stream/find (ms). */
const ENDED_KEEP_MS = 10 * 60_000;

export type RecordingManagerEvents = { recording: [Stream, Recorder]; stopped: [Stream] };

/** The registry of live streams and their recordings (REST control calls land here). */
export class RecordingManager extends TypedEmitter<RecordingManagerEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly log = rootLog.child({ component: 'recordings' });
  private closing = false;
  /** rows still to be finalized → their entry */
  private readonly rowEntries = new Map<number, Entry>();

  constructor(private readonly o: RecordingManagerOptions) {
    super();
    // The finalizer may place a file under another name (`(1)` when taken): the last file name is the placed one.
    o.finalizer.on('finalized', (f) => {
      const e = this.rowEntries.get(f.rowId);
      this.rowEntries.delete(f.rowId);
      if (e && e.lastRowId === f.rowId && !this.recorderOf(e)?.active) e.lastFileName = basename(f.path);
    });
    o.finalizer.on('failed', (f) => this.rowEntries.delete(f.rowId));
    o.finalizer.on('dropped', (f) => this.rowEntries.delete(f.rowId));
  }

  /** Settings for a stream from the config, the camera group and the request. */
  settingsFor(stream: Stream, overrides: RecordingOverrides = {}): RecordingSettings {
    const conf = this.o.conf();
    const cam = stream.protocol === 'rtsp' ? conf.cameras[stream.name] : undefined;
    const rotation: Rotation = overrides.rotation ?? cam?.rotation ?? conf.record_rotation;
    return { template: overrides.template ?? cam?.template ?? conf.stream_record_policy_template, rotation };
  }

  /** A stream went live; `record` is its resolved default (source switch and publisher flag). */
  addStream(stream: Stream, opts: { record: boolean; controller?: PullController }): void {
    this.prune();
    const entry: Entry = { stream, controller: opts.controller ?? null, recorder: null, lastFileName: null, lastRowId: null, endedAt: null, ops: Promise.resolve() };
    this.entries.set(stream.mediaSessionId, entry);
    if (opts.record && this.o.conf().record_streams && !this.closing) {
      void this.serial(entry, async () => {
        if (entry.endedAt === null && !this.closing) await this.startEntry(entry, {});
      }).catch((err: unknown) => this.log.error({ err, stream: stream.name }, 'could not start recording'));
    }
  }

  /** A stream ended: its recording stops and finalizes; it stays answerable for a while. */
  async removeStream(mediaSessionId: string): Promise<void> {
    const e = this.entries.get(mediaSessionId);
    if (!e || e.endedAt !== null) return;
    e.endedAt = Date.now();
    await this.serial(e, () => this.stopEntry(e));
    e.stream = endedStream(e.stream);
  }

  /**
   * REST startRecording: a running recording of that session is stopped first. Calls on one session (start,
   * stop, the stream's end) run one after another in call order, so concurrent starts leave one recording.
   */
  async startRecording(mediaSessionId: string, overrides: RecordingOverrides): Promise<{ fileName: string }> {
    const e = this.live(mediaSessionId);
    if (!this.o.conf().record_streams) throw new AppError('RECORDING_DISABLED');
    return this.serial(e, async () => {
      this.stillLive(e);
      if (!this.o.conf().record_streams) throw new AppError('RECORDING_DISABLED');
      await this.stopEntry(e);
      this.stillLive(e);
      const rec = await this.startEntry(e, overrides);
      return { fileName: rec?.fileName() ?? '' };
    });
  }

  /** REST stopRecording (in order with the session's other calls). */
  async stopRecording(mediaSessionId: string): Promise<{ fileName: string | null }> {
    const e = this.live(mediaSessionId);
    return this.serial(e, async () => {
      this.stillLive(e);
      const name = e.recorder?.fileName() ?? null;
      if (!e.recorder && !e.controller?.recorder()) throw new AppError('NOT_FOUND', `stream ${e.stream.name} is not recording`);
      await this.stopEntry(e);
      return { fileName: name };
    });
  }

  /** Running recordings: `[{fileName, mediaSessionId}]`. */
  running(): { fileName: string; mediaSessionId: string; streamName: string }[] {
    const out: { fileName: string; mediaSessionId: string; streamName: string }[] = [];
    for (const e of this.entries.values()) {
      const r = this.recorderOf(e);
      if (r?.active) out.push({ fileName: r.fileName(), mediaSessionId: e.stream.mediaSessionId, streamName: e.stream.name });
    }
    return out;
  }

  /** Live streams. */
  findAll(): StreamView[] {
    this.prune();
    return [...this.entries.values()].filter((e) => e.endedAt === null).map((e) => this.view(e));
  }

  /** Streams by name or media session id, live first, then recently ended. */
  find(q: { name?: string; mediaSessionId?: string }): StreamView[] {
    this.prune();
    return [...this.entries.values()]
      .filter((e) => (q.name === undefined || e.stream.name === q.name) && (q.mediaSessionId === undefined || e.stream.mediaSessionId === q.mediaSessionId))
      .sort((a, b) => (a.endedAt === null ? 0 : 1) - (b.endedAt === null ? 0 : 1) || b.stream.startedAt - a.stream.startedAt)
      .map((e) => this.view(e));
  }

  /** The live stream of a media session, if any. */
  get(mediaSessionId: string): Stream | null {
    const e = this.entries.get(mediaSessionId);
    return e && e.endedAt === null ? e.stream : null;
  }

  /** record_streams=false stops every recording. */
  async applyConf(conf: Conf): Promise<void> {
    if (!conf.record_streams) {
      await Promise.all([...this.entries.values()].map((e) => this.serial(e, () => this.stopEntry(e))));
    }
  }

  /** Counts for health and metrics. */
  counts(): { streams: Record<string, number>; recordingsActive: number } {
    const streams: Record<string, number> = { rtsp: 0, rtmp: 0, webrtc: 0 };
    let active = 0;
    for (const e of this.entries.values()) {
      if (e.endedAt !== null) continue;
      streams[e.stream.protocol] = (streams[e.stream.protocol] ?? 0) + 1;
      if (this.recorderOf(e)?.active) active++;
    }
    return { streams, recordingsActive: active };
  }

  /** Stop every recording (shutdown); resolves when all have ended and their files are finalized. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.entries.values()].map((e) => this.serial(e, () => this.stopEntry(e))));
    await this.o.finalizer.idle();
  }

  /**
   * Ids of every pipeline that belongs to a stream the manager knows (its recording's, or a camera's monitoring
   * pipeline): anything else a media host runs is an orphan (see PipelineReconciler).
   */
  knownPipelineIds(): Set<string> {
    const ids = new Set<string>();
    for (const e of this.entries.values()) {
      const id = e.recorder?.pipelineId;
      if (id) ids.add(id);
      for (const x of e.controller?.pipelineIds?.() ?? []) ids.add(x);
    }
    return ids;
  }

  /** Run `fn` after every earlier start/stop of this session has settled (whatever their outcome). */
  private serial<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const run = e.ops.then(fn, fn);
    e.ops = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Inside a queued call: the stream may have ended, or the service begun closing, while it waited. */
  private stillLive(e: Entry): void {
    if (this.closing) throw new AppError('UNAVAILABLE');
    if (e.endedAt !== null) throw new AppError('NO_SUCH_STREAM', `the stream with mediaSessionId ${e.stream.mediaSessionId} has ended`);
  }

  private live(mediaSessionId: unknown): Entry {
    if (typeof mediaSessionId !== 'string' || !mediaSessionId) throw new AppError('BAD_REQUEST', 'mediaSessionId: a non-empty string is required');
    const e = this.entries.get(mediaSessionId);
    if (!e || e.endedAt !== null) throw new AppError('NO_SUCH_STREAM', `no publishing stream has mediaSessionId ${mediaSessionId}`);
    return e;
  }

  /** Rotate now every running recording whose fragments are written to `dir`; returns how many. */
  rotateIn(dir: string, why: string): number {
    let n = 0;
    for (const e of this.entries.values()) {
      const r = this.recorderOf(e);
      if (r?.active && r.tmpDirInUse === dir && r.rotateNow(why)) n++;
    }
    return n;
  }

  private recorderOf(e: Entry): Recorder | null {
    return e.controller ? e.controller.recorder() : e.recorder;
  }

  private async startEntry(e: Entry, overrides: RecordingOverrides): Promise<Recorder | null> {
    const settings = this.settingsFor(e.stream, overrides);
    if (e.controller) {
      await e.controller.setRecording(settings);
      const r = e.controller.recorder();
      if (r) this.emit('recording', e.stream, r);
      return r;
    }
    const rec = new Recorder({
      ...recordingContext(this.o),
      stream: e.stream,
      settings,
      restartOnHostDeath: true,
      restartOnError: true,
      stallMs: 0,
    });
    e.recorder = rec;
    rec.on('fragment', (f) => {
      e.lastFileName = f.fileName;
      e.lastRowId = f.rowId;
      this.rowEntries.set(f.rowId, e);
    });
    rec.on('closed', () => {
      e.lastFileName = rec.fileName();
      if (e.recorder === rec) e.recorder = null;
    });
    rec.start();
    this.emit('recording', e.stream, rec);
    return rec;
  }

  private async stopEntry(e: Entry): Promise<void> {
    if (e.controller) {
      const r = e.controller.recorder();
      if (r) e.lastFileName = r.fileName();
      await e.controller.setRecording(null);
    } else if (e.recorder) {
      const r = e.recorder;
      e.lastFileName = r.fileName();
      await r.stop();
    } else return;
    this.emit('stopped', e.stream);
  }

  private view(e: Entry): StreamView {
    const c = e.stream.codecs();
    const r = this.recorderOf(e);
    return {
      mediaSessionId: e.stream.mediaSessionId,
      name: e.stream.name,
      published: e.stream.protocol,
      status: e.endedAt === null ? e.stream.status() : 'stopped',
      recording: Boolean(r?.active),
      audioCodec: c.audio,
      videoCodec: c.video,
      fileName: r?.active ? r.fileName() : e.lastFileName,
      startedAt: e.stream.startedAt,
      endedAt: e.endedAt,
      ...(e.stream.details?.() ?? {}),
    };
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, e] of this.entries) if (e.endedAt !== null && now - e.endedAt > ENDED_KEEP_MS && !this.recorderOf(e)?.active) this.entries.delete(id);
  }
}

/**
 * What an ended stream keeps while it stays answerable (ENDED_KEEP_MS): its identity and last answers, not the
 * session behind it (a WebRTC peer connection, ~300 KB of heap each, was kept for 10 minutes per ended publish).
 */
function endedStream(s: Stream): Stream {
  const codecs = s.codecs();
  const details = s.details?.();
  const source = s.source();
  return {
    mediaSessionId: s.mediaSessionId,
    name: s.name,
    protocol: s.protocol,
    sessionId: s.sessionId,
    login: s.login,
    startedAt: s.startedAt,
    codecs: () => codecs,
    status: () => 'stopped',
    source: () => source,
    streamClock: (epochMs) => epochMs,
    ...(details ? { details: () => details } : {}),
  };
}
