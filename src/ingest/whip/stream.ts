import type { Codecs, SourceSpec } from '../../pipeline/types';
import type { PushFn } from '../../recorder/stream';
import type { Repair } from '../../pipeline/timestamp-guard';
import { PushStream } from '../push-stream';
import { RtpTimestampGuard } from '../../pipeline/rtp-timestamp-guard';
import { isKeyframeStart } from '../../protocols/rtp/keyframe';
import type { WhipPublish } from './whip-ingest';

/**
 * While a recording waits for its first keyframe, ask again this often (ms): the PLI sent at publish is often
 * answered before the pipeline is up, and the session's PLI rate limit may swallow the one sent at attach.
 */
const KEYFRAME_RETRY_MS = 250;

/** A WHIP publish as a Stream: RTP packets pushed into appsrc "vrtp" / "artp". */
export class WhipStream extends PushStream {
  readonly protocol = 'webrtc' as const;
  private readonly consumers = new Set<PushFn>();
  private packets = 0;

  constructor(
    private readonly pub: WhipPublish,
    opts: { readonly onRepair?: (repair: Repair) => void } = {},
  ) {
    // RTP timestamps repaired once, at arrival (a publisher restarting its clock, a jump after a pause)
    super(pub, 'whip', opts.onRepair);
    const guards = {
      video: pub.video ? new RtpTimestampGuard(this.guard, 'video', pub.video.clockRate) : null,
      audio: pub.audio ? new RtpTimestampGuard(this.guard, 'audio', pub.audio.clockRate) : null,
    };
    pub.onRtp((kind, packet) => {
      this.packets++;
      const now = Date.now();
      guards[kind]?.apply(packet, now);
      this.logRepairs(now);
      const src = kind === 'video' ? 'vrtp' : 'artp';
      for (const c of this.consumers) c(src, packet);
    });
  }

  codecs(): Codecs {
    return this.pub.codecs();
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

  protected dropConsumers(): void {
    this.consumers.clear();
  }
}
