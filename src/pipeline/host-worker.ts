/**
 * Media host worker: the child process (forked by MediaHost) that runs GStreamer pipelines. HostRequest in over
 * the byte channel on fd EDGEREC_HOST_CHANNEL (host-channel.ts; the IPC channel too, when a parent sends there),
 * HostEvent out over the IPC channel. A crash here loses only this host's pipelines, never the service.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import { mallocTrim, Pipeline, type AppSrc, type BusMessage } from 'gstreamer-superficial';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { RtspFeed } from './rtsp-feed';
import { ChannelError, FrameReader } from './host-channel';
import { AUDIO_GATE, FLV_AUDIO_SRC, FLV_VIDEO_SRC, KEY_PROBE } from './launch-source';
import { flvFrames } from './flv-frames';
import type { HostEvent, HostRequest, PushItem } from './types';
import { WAL_SINK_PREFIX } from '../mp4/write-ahead';

const POSITION_INTERVAL_MS = 1000;
const DEFAULT_EOS_TIMEOUT_MS = 8000;
/** after a bus error, how long an EOS may take before the pipeline is stopped */
const ERROR_EOS_TIMEOUT_MS = 3000;
/**
 * After an EOS request, once the muxer has closed every fragment it opened, how long the pipeline's own EOS may
 * still take. splitmuxsink with async-finalize sometimes never posts it although every file is closed (seen with
 * gst-launch-1.0 in about 1 run in 4 on a loaded box, never yet in a media host): waiting eosTimeoutMs for it only
 * delays the stop, since everything was written.
 */
const FINAL_CLOSE_GRACE_MS = 1000;
/** after pause() (which makes the bus speak so stop() can run in the bus callback), how long before stop() from outside */
const STOP_FALLBACK_MS = 2000;
/** appsrc has no back-pressure: above this many queued bytes, pushed data is dropped (and reported once) */
const MAX_APPSRC_BYTES = 64 * 1024 * 1024;
const PARENT_GONE_EXIT_MS = 4000;
/** free finished pipelines (scripts/patches adds dispose() to the binding); EDGEREC_DISPOSE=0 keeps them, as before */
const DISPOSE = process.env.EDGEREC_DISPOSE !== '0' && typeof (Pipeline.prototype as { dispose?: unknown }).dispose === 'function';

/**
 * How often the host tidies its memory: a full V8 collection, then glibc's malloc_trim (added to the binding by
 * scripts/patches). The host's JS heap hardly grows, so V8 rarely runs a full collection on its own, and the
 * Buffers that outlived a young-generation pass (IPC messages, small pooled Buffers) pile up until it does
 * (+0.3 MB/min per host in a soak, 7.7 -> 4.3 MB on a forced GC). Frames are malloc'd on this thread and freed on
 * GStreamer's streaming threads between longer-lived blocks, and glibc's free() returns only the heap's top, so
 * the holes stayed resident (a host crept up ~0.8 MB/min; malloc_trim took one from 91.9 to 85.8 MB). Both cost
 * a few ms on a host's small heap. EDGEREC_TIDY_MS=0 turns it off (for comparison).
 */
const TIDY_INTERVAL_MS = Number(process.env.EDGEREC_TIDY_MS ?? 60_000);
/** a tidy that takes longer than this is logged (malloc_trim holds malloc's locks while it walks the heap) */
const TIDY_SLOW_MS = 30;

const log = rootLog.child({ component: 'media-host-worker', pid: process.pid });

/** An appsrc and what is known of its queue. */
interface Src {
  readonly el: AppSrc;
  /** a byte stream (FLV): batched chunks go in as one buffer */
  readonly stream: boolean;
  /** its current-level-bytes when last read, and bytes pushed since: reading the property costs more than a push */
  level: number;
  checkedAt: number;
  sinceCheck: number;
}

/** how often (ms) or after how many pushed bytes an appsrc's queue level is read again */
const LEVEL_CHECK_MS = 200;
const LEVEL_CHECK_BYTES = 4 * 1024 * 1024;

/** An FLV pipeline without flvdemux: what the service pushes into "src" is split into frames here (flv-frames.ts). */
interface FlvSplit {
  readonly video: Src | null;
  readonly audio: Src | null;
  /** the caps last set on each appsrc (from the last sequence header), null before the first */
  videoCaps: string | null;
  audioCaps: string | null;
  /** frames dropped because their track's sequence header had not come yet */
  early: number;
}

interface Running {
  readonly id: string;
  /** FLV split into frames by the host (appsrcs FLV_VIDEO_SRC / FLV_AUDIO_SRC and no appsrc "src"), else null */
  readonly flv: FlvSplit | null;
  readonly pipeline: Pipeline;
  readonly stallMs: number;
  readonly eosTimeoutMs: number;
  /** appsrc elements by name (looked up once), null when there is none by that name */
  readonly srcs: Map<string, Src | null>;
  /** appsrc names currently dropping data, with the bytes dropped so far */
  readonly overflowing: Map<string, number>;
  /** the host's own RTSP client feeding the pipeline, if any */
  feed: RtspFeed | null;
  lastPosNs: number;
  lastAdvanceAt: number;
  eosRequested: boolean;
  /** splitmuxsink fragments opened and not yet closed (locations), and whether any was ever opened */
  readonly openFragments: Set<string>;
  anyFragment: boolean;
  stopRequested: boolean;
  errored: boolean;
  /** the write-ahead sidecar failed once (warned; the recording goes on) */
  walFailed: boolean;
  done: boolean;
  timer: NodeJS.Timeout | null;
}

const running = new Map<string, Running>();

function send(ev: HostEvent): void {
  if (!process.send || !process.connected) return;
  process.send(ev, (err: Error | null) => {
    if (err) log.debug({ err: errMessage(err) }, 'could not send an event to the parent');
  });
}

function start(req: Extract<HostRequest, { t: 'start' }>): void {
  if (running.has(req.id)) {
    log.error({ id: req.id }, 'a pipeline with this id is already running; start ignored');
    return;
  }
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline(req.launch);
  } catch (err) {
    send({ t: 'error', id: req.id, message: `invalid pipeline description: ${errMessage(err)}`, debug: '', element: 'parse' });
    send({ t: 'stopped', id: req.id });
    return;
  }
  const r: Running = {
    id: req.id,
    flv: flvSplit(pipeline),
    pipeline,
    stallMs: Math.max(0, req.stallMs),
    eosTimeoutMs: req.eosTimeoutMs ?? DEFAULT_EOS_TIMEOUT_MS,
    srcs: new Map(),
    overflowing: new Map(),
    feed: null,
    lastPosNs: -1,
    lastAdvanceAt: Date.now(),
    eosRequested: false,
    openFragments: new Set(),
    anyFragment: false,
    stopRequested: false,
    errored: false,
    walFailed: false,
    done: false,
    timer: null,
  };
  running.set(req.id, r);
  // pollBus and play() in the same tick: the poll loop ends if it sees state NULL after a callback.
  pipeline.pollBus((m) => onBus(r, m));
  pipeline.play();
  send({ t: 'started', id: r.id });
  if (req.feed) startFeed(r, req.feed);
  openAudioGate(r);
}

/** How often the audio gate of an rtspsrc pipeline looks for the first video keyframe (ms). */
const GATE_POLL_MS = 10;
/** a camera whose video never brings a keyframe still gets its audio recorded after this (ms) */
const GATE_MAX_MS = 10_000;

/**
 * rtspsrc pipelines hold audio in a closed valve until the first video keyframe (launch-source.ts): poll the
 * identity after the video depayloader (which drops everything before a keyframe) and open the valve at its first
 * buffer, so the file starts with both tracks within a poll of each other.
 */
function openAudioGate(r: Running): void {
  const gate = r.pipeline.findChild(AUDIO_GATE);
  const probe = r.pipeline.findChild(KEY_PROBE);
  if (!gate || !probe) return;
  const since = Date.now();
  const t = setInterval(() => {
    if (r.done || r.stopRequested) return clearInterval(t);
    // identity's last-message also reports events (stream-start, caps): only a buffer ("chain ...") opens the gate
    if (!/^chain/.test(String(probe['last-message'] ?? '')) && Date.now() - since < GATE_MAX_MS) return;
    clearInterval(t);
    gate.drop = false;
    probe.silent = true;
  }, GATE_POLL_MS);
}

/** Pull the camera with our RTSP client: frames into appsrc vsrc/asrc, PTS = running time since play(). */
function startFeed(r: Running, spec: NonNullable<Extract<HostRequest, { t: 'start' }>['feed']>): void {
  const playedAt = process.hrtime.bigint();
  const capsSet = new Set<string>();
  const feed = new RtspFeed(spec, {
    nowNs: () => Number(process.hrtime.bigint() - playedAt),
    push: (name, data, ptsNs, caps) => {
      if (r.done || r.eosRequested || r.stopRequested) return;
      const src = appsrc(r, name);
      if (!src) return;
      if (!capsSet.has(name)) {
        capsSet.add(name);
        src.el.caps = caps;
      }
      if (overflowing(r, name, src, data.length)) return;
      const pts = Buffer.alloc(8);
      pts.writeBigUInt64BE(BigInt(ptsNs));
      src.el.push(data, pts);
    },
    clock: (offsetMs) => send({ t: 'clock', id: r.id, offsetMs }),
    repairs: (counts) => send({ t: 'repairs', id: r.id, counts }),
    error: (message) => {
      if (r.done) return;
      send({ t: 'error', id: r.id, message, debug: '', element: 'src' });
      if (!r.errored) {
        r.errored = true;
        if (!r.eosRequested) requestEos(r, ERROR_EOS_TIMEOUT_MS);
      }
    },
  });
  r.feed = feed;
  feed.start();
}

function onBus(r: Running, m: BusMessage): void {
  if (r.done) return;
  if (r.stopRequested) {
    finish(r, true);
    return;
  }
  switch (m.type) {
    case 'element':
      if (m.name === 'splitmuxsink-fragment-opened' || m.name === 'splitmuxsink-fragment-closed') {
        const t = m.name === 'splitmuxsink-fragment-opened' ? 'fragment-opened' : 'fragment-closed';
        const location = String(m.location ?? '');
        // running-time is a guint64: the binding hands it over as a decimal string
        send({ t, id: r.id, location, runningTimeNs: Number(m['running-time'] ?? 0) });
        if (t === 'fragment-opened') {
          r.openFragments.add(location);
          r.anyFragment = true;
        } else {
          r.openFragments.delete(location);
          if (r.eosRequested && r.openFragments.size === 0) armFinalClose(r);
        }
      }
      return;
    case 'warning':
      send({ t: 'warning', id: r.id, message: lastLine(m.debug) || 'warning', element: m._src_element_name });
      return;
    case 'error':
      if (String(m._src_element_name ?? '').startsWith(WAL_SINK_PREFIX)) {
        // the write-ahead sidecar could not be written (a full disk): the recording goes on; said once per pipeline
        if (!r.walFailed) send({ t: 'warning', id: r.id, message: `write-ahead sidecar not written: ${m.message ?? 'error'}`, element: m._src_element_name });
        r.walFailed = true;
        return;
      }
      send({ t: 'error', id: r.id, message: m.message ?? 'error', debug: m.debug ?? '', element: m._src_element_name });
      if (!r.errored) {
        r.errored = true;
        // an EOS lets the muxer finish what it has; if the error stopped the flow, the fallback stops it
        if (!r.eosRequested) requestEos(r, ERROR_EOS_TIMEOUT_MS);
        // EOS asked before any media reached the muxer (flvdemux: "EOS before any data"): no fragment to finish,
        // so waiting for an EOS that follows no error only delayed the stop (a start then a stop took 3 s)
        else if (!r.anyFragment) requestStop(r);
        else armFallback(r, ERROR_EOS_TIMEOUT_MS);
      }
      return;
    case 'eos':
      send({ t: 'eos', id: r.id });
      finish(r, true);
      return;
    default:
      return;
  }
}

/**
 * Stop and report; from within the bus callback (`fromBus`), so the binding's bus poll ends and frees its pool
 * thread, and the pipeline is then freed (dispose: its bus fds and memory; without it every pipeline a host ever
 * ran stayed, 2 fds each). Stopped from elsewhere, its poll may still be blocked on the bus: it is left as it is.
 */
function finish(r: Running, fromBus: boolean): void {
  if (r.done) return;
  r.done = true;
  if (r.timer) clearTimeout(r.timer);
  r.timer = null;
  running.delete(r.id);
  r.feed?.close();
  r.pipeline.stop();
  send({ t: 'stopped', id: r.id });
  // after the callback returns: the binding reads the pipeline's state once more to end its poll
  if (fromBus && DISPOSE) setImmediate(() => r.pipeline.dispose());
}

function requestEos(r: Running, timeoutMs: number): void {
  if (r.done || r.stopRequested) return;
  if (!r.eosRequested) {
    r.eosRequested = true;
    r.pipeline.sendEOS();
  }
  armFallback(r, timeoutMs);
  // the muxer may have closed everything already (sources that ended by themselves) and the EOS got lost
  if (r.anyFragment && r.openFragments.size === 0) armFinalClose(r);
}

/**
 * Every fragment is closed after an EOS request: the recording is complete. If the pipeline's EOS does not follow
 * within FINAL_CLOSE_GRACE_MS, report the end as EOS (nothing is missing) and stop the pipeline.
 */
function armFinalClose(r: Running): void {
  if (r.done || r.stopRequested || !r.anyFragment) return;
  if (r.timer) clearTimeout(r.timer);
  r.timer = setTimeout(() => {
    if (r.done || r.stopRequested) return;
    log.warn({ id: r.id, graceMs: FINAL_CLOSE_GRACE_MS }, 'every fragment is closed but the pipeline posted no EOS; ending it as finished');
    send({ t: 'eos', id: r.id });
    requestStop(r);
  }, FINAL_CLOSE_GRACE_MS);
}

function armFallback(r: Running, timeoutMs: number): void {
  if (r.timer) clearTimeout(r.timer);
  r.timer = setTimeout(() => {
    log.warn({ id: r.id, timeoutMs }, 'no EOS in time; stopping the pipeline');
    requestStop(r);
  }, timeoutMs);
}

function requestStop(r: Running): void {
  if (r.done || r.stopRequested) return;
  r.stopRequested = true;
  if (r.timer) clearTimeout(r.timer);
  // pause() posts state-changed messages: onBus then calls stop() from the bus callback (NOTES: stop() elsewhere can hang exit)
  r.pipeline.pause();
  r.timer = setTimeout(() => {
    log.warn({ id: r.id }, 'no bus message after pause; stopping from outside the bus callback (one pool thread stays blocked)');
    finish(r, false);
  }, STOP_FALLBACK_MS);
}

/**
 * Push one batch of chunks into an appsrc. A byte stream's chunks go in as one buffer (fewer appsrc/demuxer
 * wake-ups); packet caps (RTP: one packet per buffer) get one buffer per chunk.
 */
function push(item: PushItem): void {
  const r = running.get(item.id);
  if (!r || r.done || r.eosRequested || r.stopRequested) return;
  if (r.flv && item.src === 'src') return pushFlv(r, r.flv, item.chunks);
  const src = appsrc(r, item.src);
  if (!src) return;
  let bytes = 0;
  for (const c of item.chunks) bytes += c.byteLength;
  if (overflowing(r, item.src, src, bytes)) return;
  // the binding copies the bytes; never pass a number as PTS (aborts the process)
  if (src.stream && item.chunks.length > 1) {
    src.el.push(Buffer.concat(item.chunks));
    return;
  }
  for (const d of item.chunks) src.el.push(Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength));
}

/** The appsrc of that name (looked up once); null, with one warning, when the pipeline has none. */
function appsrc(r: Running, name: string): Src | null {
  let src = r.srcs.get(name);
  if (src === undefined) {
    const el = r.pipeline.findChild(name);
    src = el && typeof el.push === 'function' ? { el: el as AppSrc, stream: /^video\/x-flv\b/.test(String(el.caps ?? '')), level: 0, checkedAt: 0, sinceCheck: 0 } : null;
    r.srcs.set(name, src);
    if (!src) send({ t: 'warning', id: r.id, message: `no appsrc named "${name}" in the pipeline; its data is dropped`, element: name });
  }
  return src;
}

/** The FLV split of a pipeline that has appsrcs FLV_VIDEO_SRC / FLV_AUDIO_SRC and no appsrc "src"; else null. */
function flvSplit(pipeline: Pipeline): FlvSplit | null {
  if (pipeline.findChild('src')) return null;
  const src = (name: string): Src | null => {
    const el = pipeline.findChild(name);
    return el && typeof el.push === 'function' ? { el: el as AppSrc, stream: false, level: 0, checkedAt: 0, sinceCheck: 0 } : null;
  };
  const video = src(FLV_VIDEO_SRC);
  const audio = src(FLV_AUDIO_SRC);
  return video || audio ? { video, audio, videoCaps: null, audioCaps: null, early: 0 } : null;
}

/** the PTS handed to the binding with each push (8 bytes, big-endian ns): read during the call, so one will do */
const ptsBytes = Buffer.alloc(8);

/**
 * FLV chunks pushed for "src" (the header, then whole tags) into the track appsrcs: caps set at each sequence
 * header, each frame pushed with its PTS. A tag that cannot be read is an error of the pipeline (reported once;
 * the recording ends with what it has, as after any pipeline error), never of the host.
 */
function pushFlv(r: Running, flv: FlvSplit, chunks: readonly Uint8Array[]): void {
  for (const c of chunks) {
    let frames;
    try {
      frames = flvFrames(Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    } catch (err) {
      send({ t: 'error', id: r.id, message: `FLV tag refused: ${errMessage(err)}`, debug: '', element: 'src' });
      if (!r.errored) {
        r.errored = true;
        requestEos(r, ERROR_EOS_TIMEOUT_MS);
      }
      return;
    }
    for (const f of frames) {
      const video = f.track === 'video';
      const src = video ? flv.video : flv.audio;
      if (!src) continue;
      const name = video ? FLV_VIDEO_SRC : FLV_AUDIO_SRC;
      if (f.kind === 'caps') {
        if ((video ? flv.videoCaps : flv.audioCaps) === f.caps) continue;
        src.el.caps = f.caps;
        if (video) flv.videoCaps = f.caps;
        else flv.audioCaps = f.caps;
        continue;
      }
      if ((video ? flv.videoCaps : flv.audioCaps) === null) {
        if (flv.early++ === 0) send({ t: 'warning', id: r.id, message: `${f.track} frame before its sequence header: dropped (so are any more)`, element: name });
        continue;
      }
      if (overflowing(r, name, src, f.data.length)) continue;
      ptsBytes.writeBigUInt64BE(BigInt(f.ptsNs));
      src.el.push(f.data, ptsBytes);
    }
  }
}

/** appsrc has no back-pressure: true (drop these bytes) while it holds more than MAX_APPSRC_BYTES; reported once per episode. */
function overflowing(r: Running, name: string, src: Src, bytes: number): boolean {
  const now = Date.now();
  src.sinceCheck += bytes;
  if (now - src.checkedAt >= LEVEL_CHECK_MS || src.sinceCheck >= LEVEL_CHECK_BYTES || r.overflowing.has(name)) {
    src.level = Number(src.el['current-level-bytes'] ?? 0);
    src.checkedAt = now;
    src.sinceCheck = 0;
  }
  const level = src.level + src.sinceCheck;
  const dropped = r.overflowing.get(name);
  if (level > MAX_APPSRC_BYTES) {
    if (dropped === undefined) {
      const message = `appsrc holds ${level} bytes (limit ${MAX_APPSRC_BYTES}): the pipeline is slower than its input; dropping pushed data`;
      send({ t: 'warning', id: r.id, message, element: name });
    }
    r.overflowing.set(name, (dropped ?? 0) + bytes);
    return true;
  }
  if (dropped !== undefined && level < MAX_APPSRC_BYTES / 2) {
    r.overflowing.delete(name);
    send({ t: 'warning', id: r.id, message: `appsrc drained; ${dropped} bytes were dropped`, element: name });
  }
  return false;
}

function watch(): void {
  const now = Date.now();
  for (const r of running.values()) {
    if (r.done || r.stopRequested) continue;
    const s = r.pipeline.queryPosition();
    if (s >= 0) {
      const ns = Math.round(s * 1e9);
      send({ t: 'position', id: r.id, positionNs: ns });
      if (ns > r.lastPosNs) {
        r.lastPosNs = ns;
        r.lastAdvanceAt = now;
      }
    }
    const silentMs = now - r.lastAdvanceAt;
    if (r.stallMs > 0 && !r.eosRequested && silentMs >= r.stallMs) {
      log.warn({ id: r.id, silentMs }, 'pipeline position stopped advancing; sending EOS');
      send({ t: 'stalled', id: r.id, silentMs });
      requestEos(r, r.eosTimeoutMs);
    }
  }
}

/** A push frame from the channel: a byte stream (FLV) goes in as the one buffer it arrived as, packets one by one. */
function pushFrame(id: string, name: string, data: Buffer, lengths: readonly number[]): void {
  const r = running.get(id);
  // FLV split by the host: the tags one by one (the binding copies each frame; no concatenation)
  if (r?.flv && name === 'src') return push({ id, src: name, chunks: splitChunks(data, lengths) });
  const src = r && !r.done ? appsrc(r, name) : null;
  if (!src) return;
  if (src.stream || lengths.length === 1) return push({ id, src: name, chunks: [data] });
  push({ id, src: name, chunks: splitChunks(data, lengths) });
}

/** The chunks of a push frame, as views of `data`. */
function splitChunks(data: Buffer, lengths: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let o = 0;
  for (const l of lengths) {
    chunks.push(data.subarray(o, o + l));
    o += l;
  }
  return chunks;
}

/** Bytes per read of the request channel: one buffer, reused by every read (a pipe holds 64 KiB by default). */
const CHANNEL_READ_BYTES = 64 * 1024;

/**
 * Read requests from the service's byte channel (host-channel.ts) on fd `fd`; a malformed frame is fatal.
 * Every read lands in one reused buffer (Node's `onread`), not in a fresh Buffer per read: at 8 RTMP streams
 * those were ~100 64 KiB allocations a second, freed only when V8 collected them, between the smaller blocks
 * appsrc copies into, which left the host's malloc heap fragmented (bench/README.md, "the media host (session 8)").
 * Each frame is used before the next read: pushes are copied by appsrc, requests parsed.
 */
function readChannel(fd: number): void {
  const reader = new FrameReader();
  const buf = Buffer.allocUnsafe(CHANNEL_READ_BYTES);
  const onBytes = (d: Buffer): void => {
    let frames;
    try {
      frames = reader.push(d, true);
    } catch (err) {
      // the byte stream lost its framing: nothing after this can be trusted; the service restarts the host
      throw new ChannelError(`request channel broken: ${errMessage(err)}`);
    }
    for (const f of frames) {
      try {
        if (f.kind === 'push') pushFrame(f.id, f.src, f.data, f.lengths);
        else onRequest(f.req);
      } catch (err) {
        log.error({ err: errMessage(err), t: f.kind === 'request' ? f.req.t : 'push' }, 'request failed');
      }
    }
  };
  const opts = {
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: buf,
      callback: (n: number) => {
        onBytes(buf.subarray(0, n));
        return true;
      },
    },
  };
  const channel = new Socket(opts as SocketConstructorOpts);
  channel.on('error', (err) => log.debug({ err: errMessage(err) }, 'request channel error'));
}

function onRequest(req: HostRequest): void {
  switch (req.t) {
    case 'start':
      return start(req);
    case 'push':
      return push({ id: req.id, src: req.src, chunks: [req.data] });
    case 'push-many':
      for (const item of req.items) push(item);
      return;
    case 'eos': {
      const r = running.get(req.id);
      if (r) requestEos(r, r.eosTimeoutMs);
      return;
    }
    case 'stop': {
      const r = running.get(req.id);
      if (r) requestStop(r);
      return;
    }
    case 'ping': {
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      send({ t: 'pong', seq: req.seq, pipelines: running.size, memory: { rss, heapUsed, heapTotal, external } });
      return;
    }
  }
}

/** The parent is gone: finish what can be finished (bounded), then exit so no orphan stays behind. */
function parentGone(): void {
  for (const r of running.values()) requestEos(r, PARENT_GONE_EXIT_MS / 2);
  const deadline = Date.now() + PARENT_GONE_EXIT_MS;
  const t = setInterval(() => {
    if (running.size === 0 || Date.now() > deadline) process.exit(0);
  }, 50);
  t.unref();
  setTimeout(() => process.exit(0), PARENT_GONE_EXIT_MS + 200);
}

/** the full collection MediaHost's --expose-gc makes available */
const fullGc = (globalThis as { gc?: () => void }).gc;

function tidyMemory(): void {
  const t0 = process.hrtime.bigint();
  const before = process.memoryUsage.rss();
  fullGc?.();
  if (typeof mallocTrim === 'function') mallocTrim();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (ms > TIDY_SLOW_MS) log.info({ ms: Math.round(ms), rssBefore: before, rssAfter: process.memoryUsage.rss() }, 'slow memory tidy (GC + malloc_trim)');
}

function lastLine(text: string | undefined): string {
  const lines = (text ?? '').trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim();
}

/**
 * SCHED_BATCH for every thread of this process (threads started later inherit it). rtspsrc hands each RTP
 * packet from its reader thread to the jitterbuffer thread; under SCHED_OTHER each hand-off preempts the reader,
 * ~550 context switches/s per 1080p camera. Batch threads do not preempt on wake-up: ~170/s, ~10 % less CPU.
 * Needs no privilege; where chrt is missing the host runs as before. EDGEREC_SCHED_BATCH=0 turns it off.
 */
function useBatchScheduling(): void {
  if (process.env.EDGEREC_SCHED_BATCH === '0' || process.platform !== 'linux') return;
  try {
    execFileSync('chrt', ['--all-tasks', '--batch', '--pid', '0', String(process.pid)], { stdio: 'ignore', timeout: 2000 });
  } catch (err) {
    log.debug({ err: errMessage(err) }, 'chrt --batch failed; media threads keep the default scheduling');
  }
}

/**
 * A watchdog outside this process's event loop: when the parent dies, this host gets PARENT_GONE_EXIT_MS to end
 * its pipelines and exit by itself; if it is still there (a GStreamer call blocking the loop, an exit hung in
 * the binding's threads), a SIGKILL so that no orphan stays behind. Ends with the host; checks the PID is still
 * a media host before killing (PID reuse).
 */
function startOrphanWatchdog(): void {
  const graceS = Math.ceil(PARENT_GONE_EXIT_MS / 1000) + 1;
  // field 22 of /proc/<pid>/stat: the start time, which a reused PID would not have (comm is "node": no spaces)
  let started = '';
  try {
    started = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(' ')[21] ?? '';
  } catch {
    return;
  }
  const script =
    `while kill -0 ${process.ppid} 2>/dev/null && kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `kill -0 ${process.pid} 2>/dev/null || exit 0; sleep ${graceS}; ` +
    `[ "$(cut -d' ' -f22 /proc/${process.pid}/stat 2>/dev/null)" = "${started}" ] && kill -9 ${process.pid}`;
  try {
    const dog = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
    dog.unref();
    // a clean exit takes its watchdog along (its own process group: the shell and its sleep), leaving nothing behind
    process.once('exit', () => {
      try {
        if (dog.pid) process.kill(-dog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    });
  } catch (err) {
    log.warn({ err: errMessage(err) }, 'no orphan watchdog for this media host');
  }
}

function main(): void {
  if (!process.send) {
    log.error('host-worker must be started by MediaHost (child_process.fork with an IPC channel)');
    process.exit(2);
  }
  process.on('uncaughtException', (err) => {
    log.fatal({ err: errMessage(err), stack: err.stack }, 'uncaught exception in the media host');
    setTimeout(() => process.exit(1), 500);
    if (process.send && process.connected) process.send({ t: 'fatal', message: errMessage(err) } satisfies HostEvent, () => process.exit(1));
    else process.exit(1);
  });
  process.on('message', (m) => {
    try {
      onRequest(m as HostRequest);
    } catch (err) {
      log.error({ err: errMessage(err), t: (m as { t?: unknown }).t }, 'request failed');
    }
  });
  process.on('disconnect', parentGone);
  const channelFd = Number(process.env.EDGEREC_HOST_CHANNEL ?? '');
  if (Number.isInteger(channelFd) && channelFd > 2) readChannel(channelFd);
  startOrphanWatchdog();
  useBatchScheduling();
  setInterval(watch, POSITION_INTERVAL_MS);
  if (TIDY_INTERVAL_MS > 0) setInterval(tidyMemory, TIDY_INTERVAL_MS).unref();
  log.debug({ threads: process.env.UV_THREADPOOL_SIZE }, 'media host ready');
}

main();
