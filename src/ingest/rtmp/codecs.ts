import type { AudioCodec, Codecs, VideoCodec } from '../../pipeline/types';
import { audioCodecOf, FLV_AUDIO, FLV_VIDEO, videoCodecOf } from '../../protocols/flv/codecs';

/** The 13-byte FLV file header (signature, version 1, track flags, PreviousTagSize0 = 0); unknown codecs flag both tracks. */
export function flvHeader(codecs: Codecs | null): Buffer {
  const flags = codecs && (codecs.audio || codecs.video) ? (codecs.audio ? 4 : 0) | (codecs.video ? 1 : 0) : 5;
  return Buffer.from([0x46, 0x4c, 0x56, 0x01, flags, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00]);
}

/** AMF0 string "@setDataFrame" as RTMP publishers prefix it to onMetaData; an FLV file starts with onMetaData. */
const SET_DATA_FRAME = Buffer.concat([Buffer.from([0x02, 0x00, 0x0d]), Buffer.from('@setDataFrame', 'latin1')]);

/** The payload of a data message without its "@setDataFrame" prefix (a view, not a copy). */
export function scriptPayload(payload: Buffer): Buffer {
  return payload.subarray(0, SET_DATA_FRAME.length).equals(SET_DATA_FRAME) ? payload.subarray(SET_DATA_FRAME.length) : payload;
}

/** One FLV tag (11-byte header, payload copied, PreviousTagSize) for a message of `type` 8/9/18 at `timestamp` ms. */
export function flvTag(type: number, timestamp: number, payload: Buffer, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const tag = alloc(11 + payload.length + 4);
  payload.copy(tag, 11);
  return frameFlvTag(type, timestamp, tag);
}

/** Writes the 11-byte tag header and the PreviousTagSize around the payload already at `tag[11 .. length - 4]`. */
export function frameFlvTag(type: number, timestamp: number, tag: Buffer): Buffer {
  const size = tag.length - 15;
  tag[0] = type;
  tag.writeUIntBE(size, 1, 3);
  tag.writeUIntBE(timestamp & 0xffffff, 4, 3);
  tag[7] = (timestamp >>> 24) & 0xff;
  tag.writeUIntBE(0, 8, 3);
  tag.writeUInt32BE(11 + size, 11 + size);
  return tag;
}

/** ms of media after which a track that has not appeared is taken as absent (no metadata / metadata announced it). */
const SETTLE_MS = 1000;
const SETTLE_MS_ANNOUNCED = 3000;

/**
 * Works out a publish's codecs from its tags (pure). Known when every track the metadata announces has sent a tag,
 * when both tracks have, or when enough media has passed that a missing track is taken as absent.
 */
export class CodecTracker {
  private video: VideoCodec | null | undefined;
  private audio: AudioCodec | null | undefined;
  private expectVideo: boolean | undefined;
  private expectAudio: boolean | undefined;
  private firstTs: number | null = null;
  private result: Codecs | null = null;

  /** An onMetaData object (videocodecid / audiocodecid announce the tracks). */
  metadata(obj: Record<string, unknown>): void {
    if (this.result) return;
    const present = (v: unknown) => v !== undefined && v !== null && v !== false && v !== 0 && v !== '';
    if (!('videocodecid' in obj) && !('audiocodecid' in obj)) return; // announces nothing (some encoders)
    this.expectVideo = present(obj.videocodecid);
    this.expectAudio = present(obj.audiocodecid);
  }

  /** An audio (8) or video (9) tag; returns the codecs when this tag made them known, else null. */
  tag(type: number, timestamp: number, payload: Buffer): Codecs | null {
    if (this.result) return null;
    if (type === FLV_VIDEO && this.video === undefined) this.video = videoCodecOf(payload);
    if (type === FLV_AUDIO && this.audio === undefined) this.audio = audioCodecOf(payload);
    this.firstTs ??= timestamp;
    const seenV = this.video !== undefined;
    const seenA = this.audio !== undefined;
    const announced = this.expectVideo !== undefined;
    const complete = (seenV && seenA) || (announced && (seenV || !this.expectVideo) && (seenA || !this.expectAudio) && (seenV || seenA));
    const settled = timestamp - this.firstTs >= (announced ? SETTLE_MS_ANNOUNCED : SETTLE_MS);
    if (!complete && !settled) return null;
    this.result = { video: this.video ?? null, audio: this.audio ?? null };
    return this.result;
  }

  /** Take what has been seen as final (too much media without a decision). */
  settle(): Codecs {
    this.result ??= { video: this.video ?? null, audio: this.audio ?? null };
    return this.result;
  }

  /** The codecs, or null while not known yet. */
  codecs(): Codecs | null {
    return this.result;
  }
}
