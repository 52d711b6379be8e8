import { randomUUID } from 'node:crypto';
import type { Codecs, SourceSpec } from '../../pipeline/types';
import type { PushFn, Stream, StreamStatus } from '../../recorder/stream';
import { type Logger, log as rootLog } from '../../lib/log';
import { type Repair, TimestampGuard } from '../../pipeline/timestamp-guard';
import { logRepairs } from '../repair-log';
import { RtpTimestampGuard } from '../../pipeline/rtp-timestamp-guard';
import { isKeyframeStart } from '../../protocols/rtp/keyframe';
import type { WhipPublish } from './whip-ingest';

/**
 * While a recording waits for its first keyframe, ask again this often (ms): the PLI sent at publish is often
 * answered before the pipeline is up, and the session's PLI rate limit may swallow the one sent at attach.
 */
const KEYFRAME_RETRY_MS = 250;

/** A WHIP publish as a Stream: RTP packets pushed into appsrc "vrtp" / "artp". */
export class WhipStream implements Stream {
  readonly mediaSessionId = randomUUID();
  readonly protocol = 'webrtc' as const;
  readonly name: string;
  readonly sessionId: string;
  readonly login: string;
  readonly startedAt: number;
  private readonly consumers = new Set<PushFn>();
  private ended = false;
  private packets = 0;
  /** RTP timestamps repaired once, at arrival (a publisher restarting its clock, a jump after a pause) */
  private readonly guard: TimestampGuard;
  private readonly log: Logger;

  constructor(
    private readonly pub: WhipPublish,
    opts: { readonly onRepair?: (repair: Repair) => void } = {},
  ) {
    this.name = pub.name;
    this.log = rootLog.child({ component: 'whip', stream: pub.name });
    this.guard = new TimestampGuard({ onRepair: (r) => opts.onRepair?.(r) });
    this.sessionId = Buffer.from(pub.id).toString('base64').slice(0, 60);
    this.login = pub.login;
    this.startedAt = pub.startedAt;
    const guards = {
      video: pub.video ? new RtpTimestampGuard(this.guard, 'video', pub.video.clockRate) : null,
      audio: pub.audio ? new RtpTimestampGuard(this.guard, 'audio', pub.audio.clockRate) : null,
    };
    pub.onRtp((kind, packet) => {
      this.packets++;
      const now = Date.now();
      guards[kind]?.apply(packet, now);
      logRepairs(this.log, this.guard, now);
      const src = kind === 'video' ? 'vrtp' : 'artp';
      for (const c of this.consumers) c(src, packet);
    });
  }

  codecs(): Codecs {
    return this.pub.codecs();
  }

  status(): StreamStatus {
    return this.ended ? 'stopped' : 'publishing';
  }

  source(): SourceSpec {
    return { kind: 'rtp', video: this.pub.video, audio: this.pub.audio };
  }

  streamClock(epochMs: number): number {
    return epochMs;
  }

  details(): Record<string, unknown> {
    return { ip: this.pub.ip, rtpPackets: this.packets, rejectedMedia: this.pub.rejectedMedia, timestampRepairs: this.guard.counts() };
  }

  attach(push: PushFn): () => void {
    // Start at a keyframe, and drop audio until then: the muxer starts each track at 0, so audio kept from
    // before a late first keyframe would play ahead of the video by that much.
    const video = this.pub.video;
    const gated = video !== null && /^(VP8|H264)$/i.test(video.encodingName);
    let started = !gated;
    let askedAt = Date.now();
    const gate: PushFn = (src, packet) => {
      if (!started) {
        if (src !== 'vrtp' || !video || !isKeyframeStart(video.encodingName, packet)) {
          if (Date.now() - askedAt > KEYFRAME_RETRY_MS) {
            askedAt = Date.now();
            this.pub.requestKeyframe();
          }
          return;
        }
        started = true;
      }
      push(src, packet);
    };
    this.consumers.add(gate);
    this.pub.requestKeyframe();
    return () => this.consumers.delete(gate);
  }

  requestKeyframe(): void {
    this.pub.requestKeyframe();
  }

  end(): void {
    logRepairs(this.log, this.guard, Number.MAX_SAFE_INTEGER);
    this.ended = true;
    this.consumers.clear();
  }
}
