import type { Rotation } from '../conf/types';
import type { Codecs, SourceProtocol, SourceSpec } from '../pipeline/types';

/** Where a stream stands, as shown by /stream/find_all. */
export type StreamStatus = 'connecting' | 'connected' | 'publishing' | 'reconnecting' | 'stopped';

/** Per-recording settings; unset ones come from the config. */
export interface RecordingOverrides {
  readonly template?: string;
  readonly rotation?: Rotation;
}

/** Pushes media into a pipeline's appsrc (`src` for FLV, `vrtp`/`artp` for RTP). */
export type PushFn = (appsrc: string, data: Buffer) => void;

/** How a consumer treats what it is pushed. */
export interface AttachOptions {
  /**
   * It keeps pushed bytes past the call only with holdBytes()/releaseBytes() (lib/slab-pool), so the stream may
   * reuse their memory once released (the recorder: MediaHost holds a push until its write completed). Without it,
   * pushed bytes are the consumer's to keep.
   */
  readonly holds?: boolean;
}

/** A live stream, whatever its source: an RTSP camera, an RTMP or a WebRTC publisher. */
export interface Stream {
  /** UUID of this media session */
  readonly mediaSessionId: string;
  readonly name: string;
  readonly protocol: SourceProtocol;
  /** connection / session id (base64) */
  readonly sessionId: string;
  /** publisher login, '' when anonymous */
  readonly login: string;
  /** epoch ms */
  readonly startedAt: number;
  codecs(): Codecs;
  status(): StreamStatus;
  /** how a pipeline gets the media */
  source(): SourceSpec;
  /**
   * Push sources: start feeding `push` with media from a clean start (FLV header and sequence headers,
   * or RTP from the next keyframe); returns the function that stops it. Pull sources: never called.
   */
  attach?(push: PushFn, opts?: AttachOptions): () => void;
  /** ask the source for a keyframe (WebRTC PLI) */
  requestKeyframe?(): void;
  /** epoch ms of a stream-clock time in ms, for {startTime}; RTMP: ms since publish start */
  streamClock(epochMs: number): number;
  /** extra fields for /stream/find_all (camera state, attempts, last error...) */
  details?(): Record<string, unknown>;
}
