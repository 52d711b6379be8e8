/**
 * edgerec's own RTSP client for a recording pipeline, run inside the media host next to it: one RtspSession
 * (TCP interleaved), depayloaded in Node, each frame pushed into appsrc "vsrc" / "asrc" with its PTS. Replaces
 * rtspsrc, whose reader thread hands every RTP packet to a jitterbuffer thread (two wake-ups per packet, most
 * of a camera's CPU, bench/README.md); here a TCP read wakes one thread and a frame goes to the pipeline whole.
 */
import { errMessage } from '../lib/errors';
import { TimestampGuard } from './timestamp-guard';
import type { RtspFeedSpec } from './types';
import { clockOffsetMs, findSenderReport } from '../protocols/rtcp/sender-report';
import { RtspError } from '../protocols/rtsp/target';
import { depayloaderFor, unsupportedTrack } from '../protocols/rtp/depay';
import type { Depayloader } from '../protocols/rtp/depayloader';
import { parseRtp } from '../protocols/rtp/packet';
import { RtpTimeline } from '../protocols/rtp/timeline';
import { RtspSession } from '../protocols/rtsp/session';
import { sdpCodecs, type SdpMedia } from '../protocols/sdp/sdp';

/** Where the feed's frames and problems go. */
export interface FeedSink {
  /** one frame for appsrc `src`, PTS in ns on the pipeline's running time; `caps`: what the frames are. `data` is
   * valid during the call only (a view into the depayloader's frame buffer): copy what is kept */
  push(src: 'vsrc' | 'asrc', data: Buffer, ptsNs: number, caps: string): void;
  /** the pipeline's running time now, ns */
  nowNs(): number;
  /** the feed failed or ended (once): the pipeline should finish what it has */
  error(message: string): void;
  /** the camera's wall clock minus ours (ms), from its first RTCP sender report with a wall clock */
  clock(offsetMs: number): void;
  /** timestamp repairs so far by kind (at most once a second, when they changed) */
  repairs?(counts: Readonly<Record<string, number>>): void;
}

/**
 * How often the camera's socket is read once playing (RtspSession.readBatchMs). Measured with 8 cameras of the
 * bench (1080p25 4 Mbit/s + AAC): the media host's CPU is 154 / 148 / 109 / 77 ticks per 20 s reading at once /
 * every 20 / 50 / 100 ms.
 */
const READ_BATCH_MS = 100;

/** DESCRIBE + SETUP + PLAY must be done within this */
export const FEED_HANDSHAKE_MS = 10_000;

interface Track {
  readonly src: 'vsrc' | 'asrc';
  readonly depay: Depayloader;
  readonly timeline: RtpTimeline;
  readonly payloadType: number;
}

export class RtspFeed {
  private readonly session: RtspSession;
  /** audio PTS repaired here (equal or backward ones nudged); RtpTimeline already rebases jumps */
  private readonly guard = new TimestampGuard();
  private repairsSent = 0;
  private repairsAt = 0;
  private closed = false;
  private failed = false;

  constructor(
    private readonly spec: RtspFeedSpec,
    private readonly sink: FeedSink,
  ) {
    this.session = new RtspSession(spec.url);
  }

  /** Connect and play; every failure, now or later, goes to sink.error once. */
  start(): void {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RtspError('timeout', `${this.session.phase} within ${FEED_HANDSHAKE_MS} ms`)), FEED_HANDSHAKE_MS);
    });
    Promise.race([this.open(), timeout])
      .catch((err: unknown) => this.fail(errMessage(err)))
      .finally(() => clearTimeout(timer));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.session.close();
  }

  private async open(): Promise<void> {
    const s = this.session;
    const d = await s.describe();
    const video = this.spec.video ? pick(d.media, 'video', this.spec.video) : null;
    const audio = this.spec.audio ? pick(d.media, 'audio', this.spec.audio) : null;
    const chosen = [video, audio].filter((m): m is SdpMedia => m !== null);
    const want = `${this.spec.video ?? 'no video'} + ${this.spec.audio ?? 'no audio'}`;
    const now = sdpCodecs(d.media);
    if ((this.spec.video && !video) || (this.spec.audio && !audio)) {
      throw new RtspError('bad-answer', `${s.where} now offers ${now.video ?? 'no video'} + ${now.audio ?? 'no audio'}, not ${want}`);
    }
    for (const m of chosen) {
      const why = unsupportedTrack(m);
      if (why) throw new RtspError('bad-answer', `${s.where}: ${why} is not supported by edgerec's RTSP client (set rtsp_client=gstreamer)`);
    }
    const tracks = await s.setup(d, chosen);
    const byChannel = new Map<number, Track>();
    for (const t of tracks) {
      byChannel.set(t.rtpChannel, {
        src: t.media.media === 'video' ? 'vsrc' : 'asrc',
        // frames lent, not copied: sink.push copies them into a GstBuffer before the next packet
        depay: depayloaderFor(t.media, { lend: true }),
        timeline: new RtpTimeline(t.media.clockRate),
        payloadType: t.media.payloadType,
      });
    }
    const rtcp = new Set(tracks.map((t) => t.rtcpChannel));
    // the depayloader hands out nothing before the first keyframe: the first video unit is one
    let videoPending = tracks.some((t) => t.media.media === 'video') && tracks.some((t) => t.media.media === 'audio');
    let held: { data: Buffer; pts: number; caps: string }[] = [];
    let clockSeen = false;
    s.onEnd = (err) => this.fail(err.message);
    s.onFrame = (channel, payload, arrivedAt) => {
      const t = byChannel.get(channel);
      if (!t) {
        if (!clockSeen && rtcp.has(channel)) {
          const sr = findSenderReport(payload);
          // RFC 3550: NTP 0 is a sender without a wall clock
          if (sr && sr.ntp !== 0n) {
            clockSeen = true;
            this.sink.clock(clockOffsetMs(sr, arrivedAt));
          }
        }
        return;
      }
      if (this.closed) return;
      const p = parseRtp(payload);
      if (!p || p.payloadType !== t.payloadType) return;
      const units = t.depay.push(p);
      if (units.length === 0) return;
      const now = this.sink.nowNs();
      for (const u of units) {
        let pts = t.timeline.ptsNs(u.rtpTime, now);
        if (t.src === 'asrc') {
          // audio has no reordering: its PTS must increase (video PTS do not, with B-frames: h264timestamper orders them)
          pts = Math.round(this.guard.place('audio', pts / 1e6, pts / 1e6, Date.now()).dtsMs * 1e6);
          this.reportRepairs();
        }
        if (videoPending && t.src === 'asrc') {
          // the file starts at the first video keyframe: audio waits (bounded), and what is older than it is dropped
          held.push({ data: Buffer.from(u.data), pts, caps: t.depay.caps });
          if (held.length > (this.spec.audioHold ?? 100)) held.shift();
          continue;
        }
        this.sink.push(t.src, u.data, pts, t.depay.caps);
        if (videoPending && t.src === 'vsrc') {
          videoPending = false;
          for (const a of held) if (a.pts >= pts) this.sink.push('asrc', a.data, a.pts, a.caps);
          held = [];
        }
      }
    };
    s.readBatchMs = READ_BATCH_MS;
    await s.play();
    s.startKeepalive();
  }

  private reportRepairs(): void {
    const counts = this.guard.counts();
    const total = counts.nudged + counts.clipped + counts.rebased + counts.dropped;
    const now = Date.now();
    if (total === this.repairsSent || now - this.repairsAt < 1000) return;
    this.repairsSent = total;
    this.repairsAt = now;
    this.sink.repairs?.(counts);
  }

  private fail(message: string): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.sink.error(message);
    this.close();
  }
}

/** The first section of `kind` whose codec is `codec` (as sdpCodecs names it). */
function pick(media: readonly SdpMedia[], kind: 'video' | 'audio', codec: string): SdpMedia | null {
  return media.find((m) => m.media === kind && (kind === 'video' ? sdpCodecs([m]).video : sdpCodecs([m]).audio) === codec) ?? null;
}
