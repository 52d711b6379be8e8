/** The stream model and the media-host protocol shared by ingest, pipeline and recorder. */

import type { AudioCodec, Codecs, VideoCodec } from '../protocols/codecs';

export type { AudioCodec, Codecs, VideoCodec } from '../protocols/codecs';
export type Container = 'mp4' | 'webm' | 'ts';
export type SourceProtocol = 'rtsp' | 'rtmp' | 'webrtc';

/** One RTP track pushed by an ingest (WebRTC). */
export interface RtpTrack {
  readonly payloadType: number;
  readonly clockRate: number;
  /** SDP encoding name, e.g. VP8, H264, opus */
  readonly encodingName: string;
  readonly channels?: number;
}

/** Who pulls an RTSP camera: edgerec's own client (TCP interleaved) or GStreamer's rtspsrc. */
export type RtspClient = 'edgerec' | 'gstreamer';

/** What the media host's own RTSP client pulls for a pipeline: the first track of each codec given. */
export interface RtspFeedSpec {
  readonly url: string;
  readonly video: VideoCodec | null;
  readonly audio: AudioCodec | null;
  /** audio frames held until the first video keyframe (record_audio_buffer_max_size); default 100 */
  readonly audioHold?: number;
}

/** Where media enters a pipeline. */
export type SourceSpec =
  /**
   * An RTSP camera: pulled by rtspsrc in the pipeline (client 'gstreamer'), or by edgerec's own client in the
   * media host, which pushes frames into appsrc "vsrc" / "asrc" (client 'edgerec': TCP only, see rtsp-feed.ts).
   */
  | { readonly kind: 'rtsp'; readonly url: string; readonly transport: 'tcp' | 'udp'; readonly client?: RtspClient }
  /** an FLV byte stream pushed into appsrc "src" */
  | { readonly kind: 'flv' }
  /** RTP packets pushed into appsrc "vrtp" (video) and "artp" (audio) */
  | { readonly kind: 'rtp'; readonly video: RtpTrack | null; readonly audio: RtpTrack | null }
  /** tests and benches only: GStreamer test sources encoded live to the given codecs */
  | { readonly kind: 'test'; readonly fps?: number; readonly width?: number; readonly height?: number };

/** What a recording pipeline writes. */
export interface OutputSpec {
  readonly container: Container;
  /** absolute tmp path with one %05d for the fragment number (splitmuxsink location) */
  readonly location: string;
  /** 0 = no time rotation */
  readonly maxSizeTimeNs: number;
  /** 0 = no size rotation */
  readonly maxSizeBytes: number;
  readonly aac: { readonly sampleRate: number; readonly channels: number; readonly bitrateMode: number };
  readonly webm: { readonly clusterMs: number; readonly clusterBytes: number };
  /** MP4 only: sidecar locations (multifilesink, one %05d) of each track's write-ahead, and how many 1 s files to keep */
  readonly writeAhead?: { readonly video: string; readonly audio: string; readonly maxFiles: number } | null;
}

/** Everything the pure pipeline description needs. */
export interface PipelineInput {
  readonly source: SourceSpec;
  readonly codecs: Codecs;
  /** null: pull and discard (keeps a camera connected and monitored without recording) */
  readonly output: OutputSpec | null;
}

// ---- media host protocol (main process <-> host worker process, over fork() IPC, serialization 'advanced')

/** Consecutive chunks for one appsrc of one pipeline: each chunk is one appsrc buffer (RTP) or part of a byte stream (FLV). */
export interface PushItem {
  readonly id: string;
  readonly src: string;
  readonly chunks: readonly Uint8Array[];
}

export type HostRequest =
  /** stallMs 0 = no stall watchdog; eosTimeoutMs: how long to wait for EOS after asking for it (default 8000) */
  /** feed: the host pulls this camera itself into the pipeline's appsrcs "vsrc" / "asrc" */
  | { readonly t: 'start'; readonly id: string; readonly launch: string; readonly stallMs: number; readonly eosTimeoutMs?: number; readonly feed?: RtspFeedSpec }
  | { readonly t: 'push'; readonly id: string; readonly src: string; readonly data: Uint8Array }
  /** pushes coalesced by MediaHost (one IPC message per few ms instead of one per FLV tag / RTP packet), in order */
  | { readonly t: 'push-many'; readonly items: readonly PushItem[] }
  | { readonly t: 'eos'; readonly id: string }
  | { readonly t: 'stop'; readonly id: string }
  | { readonly t: 'ping'; readonly seq: number };

/**
 * A media host's memory in bytes (its answer to a ping): rss, and what of it is V8's heap (in use, reserved) and
 * Buffers (`external`); the rest is native (GStreamer). A growing rss with a flat heap is native memory.
 */
export interface HostMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
}

export type HostEvent =
  | { readonly t: 'started'; readonly id: string }
  | { readonly t: 'fragment-opened'; readonly id: string; readonly location: string; readonly runningTimeNs: number }
  | { readonly t: 'fragment-closed'; readonly id: string; readonly location: string; readonly runningTimeNs: number }
  | { readonly t: 'position'; readonly id: string; readonly positionNs: number }
  | { readonly t: 'stalled'; readonly id: string; readonly silentMs: number }
  /** the host's RTSP client saw the camera's first RTCP sender report: camera wall clock minus ours, ms */
  | { readonly t: 'clock'; readonly id: string; readonly offsetMs: number }
  /** the host's RTSP client repaired timestamps (timestamp-guard.ts): the counts so far, by kind */
  | { readonly t: 'repairs'; readonly id: string; readonly counts: Readonly<Record<string, number>> }
  | { readonly t: 'warning'; readonly id: string; readonly message: string; readonly element: string }
  | { readonly t: 'error'; readonly id: string; readonly message: string; readonly debug: string; readonly element: string }
  | { readonly t: 'eos'; readonly id: string }
  | { readonly t: 'stopped'; readonly id: string }
  | { readonly t: 'pong'; readonly seq: number; readonly pipelines: number; readonly memory: HostMemory }
  /** the host is about to exit on an uncaught exception */
  | { readonly t: 'fatal'; readonly message: string };
