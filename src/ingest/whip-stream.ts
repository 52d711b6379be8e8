import { randomUUID } from 'node:crypto';
import type { Codecs, SourceSpec } from '../pipeline/types';
import type { PushFn, Stream, StreamStatus } from '../recorder/stream';
import type { WhipPublish } from './whip';

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

  constructor(private readonly pub: WhipPublish) {
    this.name = pub.name;
    this.sessionId = Buffer.from(pub.id).toString('base64').slice(0, 60);
    this.login = pub.login;
    this.startedAt = pub.startedAt;
    pub.onRtp((kind, packet) => {
      this.packets++;
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
    return { ip: this.pub.ip, rtpPackets: this.packets };
  }

  attach(push: PushFn): () => void {
    this.consumers.add(push);
    this.pub.requestKeyframe();
    return () => this.consumers.delete(push);
  }

  requestKeyframe(): void {
    this.pub.requestKeyframe();
  }

  end(): void {
    this.ended = true;
    this.consumers.clear();
  }
}
