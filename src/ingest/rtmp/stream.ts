import type { Codecs, SourceSpec } from '../../pipeline/types';
import type { AttachOptions, PushFn } from '../../recorder/stream';
import { holdBytes, pinBytes, releaseBytes } from '../../lib/slab-pool';
import type { Repair } from '../../pipeline/timestamp-guard';
import { parseAacConfig } from '../../protocols/rtp/aac-depay';
import { flvHeader, flvTag } from './codecs';
import { type FlvTag, GopCache, rebaseTag } from './flv';
import { guardFlvTag } from './flv-guard';
import type { RtmpPublish } from './ingest';
import { PushStream } from '../push-stream';

/** Options of an RtmpStream. */
export interface RtmpStreamOptions {
  /** audio tags held while a consumer waits for its first video keyframe (record_audio_buffer_max_size) */
  readonly audioHold?: number;
  /** every timestamp repair (metrics) */
  readonly onRepair?: (repair: Repair) => void;
}

interface Consumer {
  readonly push: PushFn;
  /** holds what it keeps (AttachOptions.holds); else what it is pushed is pinned (its slab never reused) */
  readonly holds: boolean;
  /** timestamp of the first media tag sent, subtracted from every later one */
  base: number | null;
  /** a keyframe (or, audio-only, any audio) has been sent: media before it is skipped */
  started: boolean;
  /** audio that arrived before the first keyframe: what is not older than the keyframe goes in after it (held) */
  held: FlvTag[];
  /** an audio frame has been sent since the start */
  audioSent: boolean;
}

/** Audio that starts later than this after the first keyframe gets a silent frame at 0 (see send()). */
const LATE_AUDIO_MS = 50;

/**
 * Raw AAC-LC frames that decode to 1024 samples of silence, by channel count (the frame does not depend on the
 * sample rate); checked with ffmpeg: no error, every sample 0.
 */
const SILENT_AAC_LC: Readonly<Record<number, Buffer>> = {
  1: Buffer.from([0x00, 0xc8, 0x00, 0x80, 0x23, 0x80]),
  2: Buffer.from([0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80]),
};

/**
 * The audio tag put at a file's 0 when its audio starts `late`: GStreamer's fragmented mp4mux starts every track of a
 * file at 0 (its first tfdt), so audio that starts 3 s after the video would play 3 s early. A frame at 0 makes the
 * track start with the video; mp4mux gives it the duration up to the first real frame (a gap, as players take one).
 * AAC-LC mono/stereo: a silent frame; anything else (MP3, HE-AAC, more channels): the first frame itself.
 */
export function lateAudioFiller(first: FlvTag, config: FlvTag | null): Buffer {
  const payload = first.bytes.subarray(11, first.bytes.length - 4);
  let body: Buffer = payload;
  // legacy FLV AAC (sound format 10: AF 01 + a raw frame); the config tag is AF 00 + the AudioSpecificConfig
  if ((payload[0] ?? 0) >> 4 === 10 && config) {
    const asc = parseAacConfig(config.bytes.subarray(11 + 2, config.bytes.length - 4).toString('hex'));
    const silent = asc?.objectType === 2 ? SILENT_AAC_LC[asc.channels] : undefined;
    if (silent) body = Buffer.concat([payload.subarray(0, 2), silent]);
  }
  return flvTag(8, 0, body);
}

/**
 * An RTMP publish as a Stream: an FLV byte stream pushed into appsrc "src", each consumer starting at 0. The tags
 * come from the publish as FlvTag objects (their bytes written once, in publish.ts) and go out as they are: no
 * FLV bytes are parsed again here.
 */
export class RtmpStream extends PushStream {
  readonly protocol = 'rtmp' as const;
  private readonly cache = new GopCache();
  private readonly consumers = new Set<Consumer>();
  private bytesIn = 0;
  private lastDataAt = 0;

  constructor(
    private readonly pub: RtmpPublish,
    private readonly opts: RtmpStreamOptions = {},
  ) {
    // every tag's timestamps are repaired once, at arrival, before the GOP cache and the consumers see them
    super(pub, 'rtmp', opts.onRepair);
    // the GOP cache and held audio hold the tags they keep; consumers hold or pin theirs
    pub.onTag((tag) => this.onTag(tag), { holds: true });
  }

  /** The publish's codecs (codecs.ts, worked out once from its first tags and metadata). */
  codecs(): Codecs {
    return this.pub.codecs() ?? { video: null, audio: null };
  }

  source(): SourceSpec {
    return { kind: 'flv' };
  }

  /** RTMP's own clock starts at 0 when the publish starts. */
  streamClock(epochMs: number): number {
    return Math.max(0, epochMs - this.startedAt);
  }

  details(): Record<string, unknown> {
    return { app: this.pub.app, ip: this.pub.ip, bytesIn: this.bytesIn, lastDataAt: this.lastDataAt, timestampRepairs: this.guard.counts() };
  }

  /** The FLV header, metadata and sequence headers at t=0, then the cached GOP and the live tags rebased to 0. */
  attach(push: PushFn, opts: AttachOptions = {}): () => void {
    const holds = opts.holds === true;
    const c: Consumer = {
      push: holds
        ? push
        : (src, b) => {
            pinBytes(b);
            push(src, b);
          },
      holds,
      base: null,
      started: false,
      held: [],
      audioSent: false,
    };
    this.sendStart(c);
    this.consumers.add(c);
    return () => {
      if (this.consumers.delete(c)) this.dropHeld(c);
    };
  }

  protected dropConsumers(): void {
    for (const c of this.consumers) this.dropHeld(c);
    this.consumers.clear();
    // the GOP cache stays (a recording whose pipeline starts just after the end still gets it): its slabs are
    // left to the GC with the stream
  }

  private dropHeld(c: Consumer): void {
    for (const t of c.held) releaseBytes(t.bytes);
    c.held = [];
  }

  private sendStart(c: Consumer): void {
    c.push('src', flvHeader(this.pub.codecs()));
    for (const t of this.cache.startTags()) this.send(c, t);
  }

  /**
   * `own`: a live tag and this the only consumer, so its bytes may be rebased in place (the GOP cache keeps the tag,
   * but what reads it later — a consumer attaching, held audio — rebases from `timestamp` and copies).
   */
  private send(c: Consumer, t: FlvTag, own = false): void {
    if (t.type === 18 || t.sequenceHeader) {
      c.push('src', rebaseTag(t, t.timestamp, own));
      return;
    }
    if (!c.started) {
      const audioOnly = this.cache.configs().video === null && t.type === 8;
      if (t.type === 8 && !audioOnly) {
        // held, bounded: the tags that belong after the keyframe (interleaving puts some before it) are kept
        holdBytes(t.bytes);
        c.held.push(t);
        if (c.held.length > (this.opts.audioHold ?? 100)) {
          const old = c.held.shift();
          if (old) releaseBytes(old.bytes);
        }
        return;
      }
      if (!(t.type === 9 && t.keyframe) && !audioOnly) return;
      c.started = true;
      c.base = t.timestamp;
      c.push('src', rebaseTag(t, c.base, own));
      for (const a of c.held) {
        if (a.timestamp < c.base) continue;
        this.sendAudio(c, a, false);
      }
      this.dropHeld(c);
      return;
    }
    // older than the file's first keyframe: the file starts with both tracks at the keyframe
    if (c.base !== null && t.timestamp < c.base) return;
    c.base ??= t.timestamp;
    if (t.type === 8) this.sendAudio(c, t, own);
    else c.push('src', rebaseTag(t, c.base, own));
  }

  /** An audio frame after the start; the first one, if it comes LATE_AUDIO_MS after a video start, after a filler at 0. */
  private sendAudio(c: Consumer, t: FlvTag, own: boolean): void {
    const base = c.base ?? t.timestamp;
    if (!c.audioSent) {
      c.audioSent = true;
      const late = t.timestamp - base;
      const configs = this.cache.configs();
      if (late > LATE_AUDIO_MS && configs.video !== null) {
        this.log.warn({ lateMs: late }, 'audio starts after the video: a frame of silence is put at the start of the file so that the audio keeps its place');
        c.push('src', lateAudioFiller(t, configs.audio));
      }
    }
    c.push('src', rebaseTag(t, base, own));
  }

  private onTag(tag: FlvTag): void {
    this.bytesIn += tag.bytes.length;
    this.lastDataAt = Date.now();
    const t = guardFlvTag(this.guard, tag, this.lastDataAt);
    this.cache.remember(t);
    this.logRepairs(this.lastDataAt);
    const own = this.consumers.size === 1;
    for (const c of this.consumers) this.send(c, t, own);
  }
}
