import { RTCPeerConnection, RtcpSrPacket, type PeerConfig, type RTCRtpTransceiver, type RtpPacket } from 'werift';
import type { Logger } from '../../lib/log';
import type { Codecs, RtpTrack } from '../../pipeline/types';
import { audioCodecOf, videoCodecOf } from '../../protocols/codecs';
import { ntpToEpochMs, rtpToWallClock, type SenderReport } from '../../protocols/rtcp/clock';
import { seqDelta } from '../../protocols/rtp/packet';
import { AppError } from '../../lib/errors';
import { fieldsOf } from '../../lib/fields';
import type { Publisher } from '../publish';

/** Who publishes over WHIP: the session id, the stream name, the publisher and its own record flag. */
export interface WhipPublisher extends Publisher {
  /** the publisher's own record flag; undefined = the config decides */
  readonly record?: boolean;
}

/** A WebRTC publish whose media is flowing: its tracks, its RTP and keyframe requests. */
export interface WhipPublish extends WhipPublisher {
  /** epoch ms of the first RTP packet */
  readonly startedAt: number;
  readonly video: RtpTrack | null;
  readonly audio: RtpTrack | null;
  codecs(): Codecs;
  /** every RTP packet (whole, serialized, a copy of its own); returns an unsubscribe function */
  onRtp(cb: (kind: 'video' | 'audio', packet: Buffer) => void): () => void;
  /** sends a PLI to the publisher (rate-limited) */
  requestKeyframe(): void;
  /** epoch ms of an RTP timestamp of that track through the latest RTCP sender report; null before one arrived */
  wallClockOf(kind: 'video' | 'audio', rtpTs: number): number | null;
  /** the offer's m-lines that are not recorded, each with why */
  readonly rejectedMedia: readonly string[];
  /** ends the publish (unpublish with reason 'closed') */
  close(): void;
}

/** What a WhipSession needs from its owner. */
export interface WhipSessionOptions extends WhipPublisher {
  /** the offer's m-lines that are not recorded (filled while the offer is answered) */
  readonly rejectedMedia: readonly string[];
  readonly peerConfig: Partial<PeerConfig>;
  readonly log: Logger;
  /** no RTP for this long after publish = the publisher is gone */
  readonly idleTimeoutMs: number;
  /** no RTP this long after the answer = the publisher never came */
  readonly connectTimeoutMs: number;
  readonly onPublish: (s: WhipSession) => void;
  readonly onEnd: (s: WhipSession, reason: string, published: boolean) => void;
}

type Kind = 'video' | 'audio';

/** The session's timings, ms. */
const TIMING = {
  /** between two keyframe requests (PLI) */
  keyframeMinInterval: 500,
  /** between two keyframe requests caused by loss */
  lossPliInterval: 2000,
  /** time NACK gets to repair a gap before a keyframe is asked for */
  lossGrace: 300,
  /** after the first packet of one track, how long the other track gets before publishing without it */
  trackWait: 2000,
} as const;

interface KindState {
  transceiver: RTCRtpTransceiver | null;
  ssrc: number | null;
  track: RtpTrack | null;
  lastSeq: number | null;
  sr: SenderReport | null;
}

/** One WHIP publisher: a werift peer connection that receives, watches and forwards its RTP. */
export class WhipSession extends fieldsOf<WhipSessionOptions>()('id', 'name', 'login', 'ip', 'record', 'rejectedMedia') implements WhipPublish {
  startedAt = 0;
  private readonly pc: RTCPeerConnection;
  private readonly kinds: Record<Kind, KindState> = {
    video: { transceiver: null, ssrc: null, track: null, lastSeq: null, sr: null },
    audio: { transceiver: null, ssrc: null, track: null, lastSeq: null, sr: null },
  };
  private readonly listeners = new Set<(kind: Kind, packet: Buffer) => void>();
  private readonly createdAt = Date.now();
  private published = false;
  private ended = false;
  /** resolves when the peer connection has closed its sockets */
  closing: Promise<void> = Promise.resolve();
  private firstRtpAt = 0;
  private lastRtpAt = 0;
  private lastPliAt = 0;
  private lastLossPliAt = 0;
  private missing = new Set<number>();
  private lossTimer: NodeJS.Timeout | null = null;
  private readonly tick: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(private readonly o: WhipSessionOptions) {
    super(o);
    this.log = o.log.child({ stream: o.name, session: o.id });
    this.pc = new RTCPeerConnection(o.peerConfig);
    this.pc.connectionStateChange.subscribe((state) => {
      this.log.debug({ state }, 'whip connection state');
      if (state === 'failed' || state === 'closed') this.end(`connection ${state}`);
    });
    // tracks are announced while the offer is applied: subscribe before
    this.pc.onTrack.subscribe((track) => {
      const kind = track.kind;
      if (kind === 'video' || kind === 'audio') track.onReceiveRtp.subscribe((rtp) => this.onRtpPacket(kind, rtp));
    });
    this.tick = setInterval(() => this.watch(), 500);
    this.tick.unref();
  }

  get video(): RtpTrack | null {
    return this.kinds.video.track;
  }

  get audio(): RtpTrack | null {
    return this.kinds.audio.track;
  }

  /** Apply the offer, answer it and wait for ICE gathering to complete; resolves to the full answer SDP. */
  async answer(offerSdp: string, gatherTimeoutMs: number): Promise<string> {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    for (const t of this.pc.getTransceivers()) {
      t.setDirection('recvonly');
      const kind = t.kind;
      if ((kind !== 'video' && kind !== 'audio') || this.kinds[kind].transceiver || t.codecs.length === 0) continue;
      this.kinds[kind].transceiver = t;
      t.receiver.onRtcp.subscribe((p) => {
        if (p instanceof RtcpSrPacket) this.onSenderReport(kind, p);
      });
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, gatherTimeoutMs);
        const { unSubscribe } = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s !== 'complete') return;
          clearTimeout(timer);
          unSubscribe();
          resolve();
        });
      });
    }
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new AppError('INTERNAL', 'werift produced no local description');
    return sdp;
  }

  /** Kinds the answer accepted (a transceiver with a negotiated codec). */
  acceptedKinds(): Kind[] {
    return (['video', 'audio'] as const).filter((k) => this.kinds[k].transceiver !== null);
  }

  codecs(): Codecs {
    const v = videoCodecOf(this.kinds.video.track?.encodingName ?? '');
    const a = audioCodecOf(this.kinds.audio.track?.encodingName ?? '');
    return { video: v === 'VP8' || v === 'H264' ? v : null, audio: a === 'OPUS' ? a : null };
  }

  onRtp(cb: (kind: Kind, packet: Buffer) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  requestKeyframe(): void {
    const { transceiver, ssrc } = this.kinds.video;
    if (this.ended || !transceiver || ssrc === null) return;
    const now = Date.now();
    if (now - this.lastPliAt < TIMING.keyframeMinInterval) return;
    this.lastPliAt = now;
    transceiver.receiver.sendRtcpPLI(ssrc).catch((err: unknown) => this.log.debug({ err }, 'PLI not sent'));
  }

  wallClockOf(kind: Kind, rtpTs: number): number | null {
    const { sr, track } = this.kinds[kind];
    if (!sr || !track) return null;
    return rtpToWallClock(sr, rtpTs, track.clockRate);
  }

  close(): void {
    this.end('closed');
  }

  /** Stop: close the peer connection and report once. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.tick);
    if (this.lossTimer) clearTimeout(this.lossTimer);
    this.listeners.clear();
    this.closing = this.pc.close().catch((err: unknown) => this.log.debug({ err }, 'peer connection close failed'));
    this.log.info({ reason, published: this.published }, 'whip session ended');
    this.o.onEnd(this, reason, this.published);
  }

  private onRtpPacket(kind: Kind, rtp: RtpPacket): void {
    if (this.ended) return;
    const now = Date.now();
    this.lastRtpAt = now;
    const st = this.kinds[kind];
    const h = rtp.header;
    if (st.ssrc !== null && h.ssrc !== st.ssrc) return;
    if (st.ssrc === null) {
      st.ssrc = h.ssrc;
      st.track = this.trackOf(st.transceiver, h.payloadType);
      if (this.firstRtpAt === 0) this.firstRtpAt = now;
      this.log.debug({ kind, track: st.track }, 'first RTP packet');
      if (kind === 'video') this.requestKeyframe();
      this.maybePublish(false);
    }
    if (kind === 'video') this.watchLoss(h.sequenceNumber);
    if (!this.published || !st.track || this.listeners.size === 0) return;
    const buf = rtp.serialize();
    for (const cb of this.listeners) {
      try {
        cb(kind, buf);
      } catch (err) {
        this.log.error({ err }, 'RTP listener threw');
      }
    }
  }

  private trackOf(t: RTCRtpTransceiver | null, pt: number): RtpTrack | null {
    const codec = t?.codecs.find((c) => c.payloadType === pt) ?? t?.codecs[0];
    if (!codec) return null;
    const encodingName = codec.mimeType.split('/')[1] ?? codec.mimeType;
    return { payloadType: pt, clockRate: codec.clockRate, encodingName, ...(codec.channels ? { channels: codec.channels } : {}) };
  }

  private maybePublish(timeUp: boolean): void {
    if (this.published || this.ended || this.firstRtpAt === 0) return;
    const waiting = this.acceptedKinds().filter((k) => this.kinds[k].ssrc === null);
    if (waiting.length > 0 && !timeUp) return;
    this.published = true;
    this.startedAt = this.firstRtpAt;
    this.log.info({ codecs: this.codecs(), missing: waiting }, 'whip publish started');
    this.o.onPublish(this);
    // listeners attach in onPublish; ask for a keyframe they can start from
    this.lastPliAt = 0;
    this.requestKeyframe();
  }

  /** Gaps that NACK has not filled within TIMING.lossGrace get a (rate-limited) keyframe request. */
  private watchLoss(seq: number): void {
    const st = this.kinds.video;
    if (st.lastSeq === null) {
      st.lastSeq = seq;
      return;
    }
    const d = seqDelta(seq, st.lastSeq);
    if (d <= 0) {
      this.missing.delete(seq);
      return;
    }
    if (d > 1 && d < 1000) for (let i = 1; i < d && this.missing.size < 1000; i++) this.missing.add((st.lastSeq + i) & 0xffff);
    st.lastSeq = seq;
    if (this.missing.size > 0 && !this.lossTimer) {
      this.lossTimer = setTimeout(() => {
        this.lossTimer = null;
        if (this.missing.size === 0) return;
        this.missing.clear();
        const now = Date.now();
        if (now - this.lastLossPliAt < TIMING.lossPliInterval) return;
        this.lastLossPliAt = now;
        this.log.debug('video packets lost: asking for a keyframe');
        this.requestKeyframe();
      }, TIMING.lossGrace);
    }
  }

  private onSenderReport(kind: Kind, sr: RtcpSrPacket): void {
    const st = this.kinds[kind];
    if (st.ssrc !== null && sr.ssrc !== st.ssrc) return;
    st.sr = { ntpMs: ntpToEpochMs(sr.senderInfo.ntpTimestamp), rtpTs: sr.senderInfo.rtpTimestamp, receivedAt: Date.now() };
  }

  private watch(): void {
    if (this.ended) return;
    const now = Date.now();
    if (this.firstRtpAt === 0) {
      if (now - this.createdAt > this.o.connectTimeoutMs) this.end(`no media within ${this.o.connectTimeoutMs} ms`);
      return;
    }
    if (!this.published && now - this.firstRtpAt > TIMING.trackWait) this.maybePublish(true);
    if (now - this.lastRtpAt > this.o.idleTimeoutMs) this.end(`no RTP for ${this.o.idleTimeoutMs} ms`);
  }
}
