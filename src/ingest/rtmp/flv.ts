import type { AudioCodec, VideoCodec } from '../../pipeline/types';
import { holdBytes, releaseBytes } from '../../lib/slab-pool';
import { audioCodecOf, isKeyframe, isSequenceHeader, videoCodecOf } from '../../protocols/flv/codecs';

/** One FLV tag with its 11-byte header and trailing PreviousTagSize, as bytes ready to re-send. */
export interface FlvTag {
  /** 8 audio, 9 video, 18 script */
  readonly type: number;
  /** ms */
  readonly timestamp: number;
  readonly bytes: Buffer;
  /** video keyframe (not a sequence header) */
  readonly keyframe: boolean;
  /** AVC/HEVC/AAC sequence header (decoder configuration) */
  readonly sequenceHeader: boolean;
}

const HEADER_LEN = 9 + 4;

/** The tag whose bytes (11-byte header, payload, PreviousTagSize) are `bytes`, flags read by codecs.ts (from `payload`: the same bytes as the tag's, given when at hand). */
export function tagOf(type: number, timestamp: number, bytes: Buffer, payload: Buffer = bytes.subarray(11, bytes.length - 4)): FlvTag {
  return { type, timestamp, bytes, keyframe: isKeyframe(type, payload), sequenceHeader: (type === 8 || type === 9) && isSequenceHeader(type, payload) };
}

/**
 * What a consumer joining a running stream needs to start cleanly: the last metadata tag, the sequence headers and
 * the tags since the last keyframe (audio-only: a short tail), bounded in bytes. It holds the GOP's tag bytes
 * (lib/slab-pool holdBytes) while it keeps them.
 */
export class GopCache {
  private metadata: FlvTag | null = null;
  private videoConfig: FlvTag | null = null;
  private audioConfig: FlvTag | null = null;
  private gop: FlvTag[] = [];
  private gopBytes = 0;
  constructor(
    /** bytes the GOP cache may hold; past that it is dropped until the next keyframe */
    private readonly maxGopBytes = 16 * 1024 * 1024,
  ) {}

  /** Metadata, sequence headers, then the current GOP. */
  startTags(): FlvTag[] {
    const out: FlvTag[] = [];
    for (const t of [this.metadata, this.videoConfig, this.audioConfig]) if (t) out.push(t);
    return out.concat(this.gop);
  }

  /** The sequence-header tags seen (codec ids are in their first byte). */
  configs(): { video: FlvTag | null; audio: FlvTag | null } {
    return { video: this.videoConfig, audio: this.audioConfig };
  }

  remember(tag: FlvTag): void {
    if (tag.type === 18) {
      this.metadata = tag;
      return;
    }
    if (tag.sequenceHeader) {
      if (tag.type === 9) this.videoConfig = tag;
      else this.audioConfig = tag;
      return;
    }
    if (tag.keyframe) this.dropGop();
    // Audio-only streams have no keyframes: keep a short tail instead.
    if (!this.videoConfig && tag.type === 8 && this.gop.length > 50) {
      const dropped = this.gop.shift();
      if (dropped) releaseBytes(dropped.bytes);
      this.gopBytes -= dropped?.bytes.length ?? 0;
    }
    if (this.videoConfig && this.gop.length === 0 && !tag.keyframe) return; // wait for a keyframe
    if (this.gopBytes + tag.bytes.length > this.maxGopBytes) {
      this.dropGop();
      return;
    }
    holdBytes(tag.bytes);
    this.gop.push(tag);
    this.gopBytes += tag.bytes.length;
  }

  private dropGop(): void {
    for (const t of this.gop) releaseBytes(t.bytes);
    this.gop = [];
    this.gopBytes = 0;
  }
}

/**
 * Splits an FLV byte stream (a file; the live RTMP path gets tags from publish.ts and never goes through bytes)
 * into its header and tags (pure, incremental). Keeps what a new consumer needs to start cleanly (GopCache).
 */
export class FlvParser {
  private buf: Buffer = Buffer.alloc(0);
  private header: Buffer | null = null;
  private readonly cache: GopCache;
  constructor(
    /** bytes the GOP cache may hold; past that it is dropped until the next keyframe */
    maxGopBytes = 16 * 1024 * 1024,
    /** applied to every tag before it is kept or returned (the timestamp guard); may rewrite the tag's bytes */
    private readonly fix: (tag: FlvTag) => FlvTag = (t) => t,
  ) {
    this.cache = new GopCache(maxGopBytes);
  }

  /**
   * Feed bytes; returns the complete tags found (the FLV header is kept, not returned). Tags are views of the
   * chunks (no copy per tag): the caller must not modify a chunk after pushing it.
   */
  push(chunk: Buffer): FlvTag[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: FlvTag[] = [];
    if (!this.header) {
      if (this.buf.length < HEADER_LEN) return out;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV stream (no FLV signature)');
      const dataOffset = this.buf.readUInt32BE(5);
      if (this.buf.length < dataOffset + 4) return out;
      this.header = Buffer.from(this.buf.subarray(0, dataOffset + 4));
      this.buf = this.buf.subarray(dataOffset + 4);
    }
    for (let i = 0; i < 100_000 && this.buf.length >= 11; i++) {
      const size = this.buf.readUIntBE(1, 3);
      const total = 11 + size + 4;
      if (this.buf.length < total) break;
      const bytes = this.buf.subarray(0, total);
      this.buf = this.buf.subarray(total);
      const timestamp = writtenTimestamp(bytes);
      const tag = this.fix(tagOf(bytes[0] ?? 0, timestamp, bytes));
      this.cache.remember(tag);
      out.push(tag);
    }
    return out;
  }

  /** The FLV file header (13 bytes), once it arrived. */
  headerBytes(): Buffer | null {
    return this.header;
  }

  /** What a consumer joining now must get after the header: metadata, sequence headers, the current GOP. */
  startTags(): FlvTag[] {
    return this.cache.startTags();
  }

  /** FLV header flags: has video / has audio, once the header arrived. */
  flags(): { video: boolean; audio: boolean } | null {
    if (!this.header) return null;
    const f = this.header[4] ?? 0;
    return { video: (f & 1) !== 0, audio: (f & 4) !== 0 };
  }

  /** The sequence-header tags seen (codec ids are in their first byte). */
  configs(): { video: FlvTag | null; audio: FlvTag | null } {
    return this.cache.configs();
  }
}

/** The timestamp written in a tag's header (ms, with the extended byte): the tag's own, or what a rebase wrote. */
export function writtenTimestamp(bytes: Buffer): number {
  return (bytes.readUIntBE(4, 3) | ((bytes[7] ?? 0) << 24)) >>> 0;
}

/**
 * The tag's bytes with its timestamp moved back by `base` ms (never below 0): the bytes themselves when they carry
 * that timestamp already (base 0; or rewritten by an earlier rebase), else a copy, or with `inPlace` the bytes
 * rewritten — only for a caller that is the bytes' one reader (a copy costs an allocation per tag, which the GC pays
 * for: ffmpeg publishers start video at 20–40 ms, so a recording attached at the start rebases every tag).
 */
export function rebaseTag(tag: FlvTag, base: number, inPlace = false): Buffer {
  const ts = Math.max(0, tag.timestamp - base);
  if (ts === writtenTimestamp(tag.bytes)) return tag.bytes;
  const b = inPlace ? tag.bytes : Buffer.from(tag.bytes);
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b[7] = (ts >>> 24) & 0xff;
  return b;
}

/** Codecs from the FLV sequence headers / first tags, read by codecs.ts (the one codec table of the RTMP path). */
export function flvCodecs(video: FlvTag | null, audio: FlvTag | null): { video: VideoCodec | null; audio: AudioCodec | null } {
  return { video: video ? videoCodecOf(video.bytes.subarray(11)) : null, audio: audio ? audioCodecOf(audio.bytes.subarray(11)) : null };
}
