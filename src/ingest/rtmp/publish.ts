import type { Socket } from 'node:net';
import { decodeAmf0Data } from 'node-media-server/src/protocol/amf.js';
import type { Logger } from '../../lib/log';
import { errMessage } from '../../lib/errors';
import { fieldsOf } from '../../lib/fields';
import type { Publisher } from '../publish';
import type { Codecs } from '../../pipeline/types';
import { holdBytes, pinBytes, releaseBytes, SlabPool } from '../../lib/slab-pool';
import { isSequenceHeader } from '../../protocols/flv/codecs';
import { CodecTracker, flvHeader, flvTag, frameFlvTag, scriptPayload } from './codecs';
import { type FlvTag, tagOf } from './flv';

/**
 * Who publishes over RTMP, and where: `name` is the last path segment of the RTMP URL without the query, `login`
 * its `?login=` (else '').
 */
export interface RtmpPublisher extends Publisher {
  /** RTMP application, e.g. `live` */
  readonly app: string;
  /** the publish URL's query, without `token` */
  readonly query: Readonly<Record<string, string>>;
}

/** One accepted RTMP publisher, as the rest of edgerec sees it. */
export interface RtmpPublish extends RtmpPublisher {
  /** epoch ms when the publish was accepted */
  readonly startedAt: number;
  /**
   * Video/audio codecs (null for an absent track). The ingest announces a publish only once its first tags made
   * them known, so this is non-null from the `publish` event on.
   */
  codecs(): Codecs | null;
  /**
   * `cb` gets a complete FLV byte stream, one FLV header or whole tag per call, every chunk a fresh copy, safe to
   * keep. Subscribed during the `publish` event: the header, then every tag from the first (metadata, sequence
   * headers, the media that arrived while the codecs were worked out). Later: the header, metadata and sequence
   * headers, then live tags.
   */
  onData(cb: (chunk: Buffer) => void): void;
  /**
   * `cb` gets every tag as it arrives, as an FlvTag (no FLV header: see codecs.ts flvHeader), the same order and
   * start as onData. The first tag subscriber gets the tags themselves (it may rewrite a tag's timestamp bytes in
   * place, as the timestamp guard does); later ones get copies. This is the recording path: no bytes re-parsed.
   * A tag's bytes may be cut from a reused slab (lib/slab-pool): with `holds`, the subscriber keeps a tag past its
   * call only with holdBytes()/releaseBytes(); without, the tags it gets are never reused (safe to keep).
   */
  onTag(cb: (tag: FlvTag) => void, opts?: { readonly holds?: boolean }): void;
  /** `cb` once when the publish ends (publisher left, vanished, was kicked, or the ingest closed) */
  onEnd(cb: () => void): void;
  /**
   * Stop reading from the publisher's socket: TCP flow control then holds the publisher back, so a consumer slower
   * than the publisher (or a publisher faster than real time) costs no memory here. The idle timeout is off while paused.
   */
  pause(): void;
  /** Read again after pause(). */
  resume(): void;
  /** counters: FLV bytes and tags produced so far, whether reading is paused */
  stats(): { bytes: number; tags: number; paused: boolean };
  /** Kick the publisher (its socket is destroyed; `onEnd` and the ingest's `unpublish` follow). */
  close(): void;
}

/** What an RtmpSession needs to become a publish. */
export interface PublishInit extends RtmpPublisher {
  readonly socket: Socket;
  /** where media tags are cut from; default a pool of its own (tests share one) */
  readonly pool?: SlabPool;
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  /** called once when the codecs are known: the ingest announces the publish */
  readonly onReady: (pub: Publish) => void;
}


/**
 * Each publish cuts its tags from slabs of its own: a slab shared by several publishers would wait for the last of
 * their GOP caches to let go of it (up to two GOPs of every stream held, against one). A GOP at 4 Mbit/s and 2 s
 * is ~4 slabs; that many released ones wait to be cut again (more are left to the GC).
 */
const SLAB_BYTES = 256 * 1024;
const MAX_FREE_SLABS = 4;
/** payloads lent to NMS at once (it uses at most 64 chunk streams, limits.ts) */
const MAX_LENT = 64;

/** bytes of tags held while the codecs are worked out (normally well under 1 s of media); past it they count as known */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** onMetaData as an AMF0 string: the only data message forwarded into the FLV stream. */
const ON_METADATA = Buffer.concat([Buffer.from([0x02, 0x00, 0x0a]), Buffer.from('onMetaData', 'latin1')]);

/** An accepted publish: turns RTMP media messages into FLV tags for its consumers. */
export class Publish extends fieldsOf<RtmpPublisher>()('id', 'app', 'name', 'query', 'ip', 'login') implements RtmpPublish {
  readonly startedAt = Date.now();
  private readonly socket: Socket;
  private readonly idleTimeoutMs: number;
  private readonly log: Logger;
  private readonly onReady: (pub: Publish) => void;
  private readonly tracker = new CodecTracker();
  private dataCbs: ((chunk: Buffer) => void)[] = [];
  private tagCbs: ((tag: FlvTag) => void)[] = [];
  /** whether the first tag subscriber holds what it keeps (onTag `holds`): then its tags' slabs may be reused */
  private firstHolds = false;
  /**
   * Media tag bytes are cut from slabs (256 KiB, reused once no tag of theirs is held: lib/slab-pool) and NMS reads
   * each media message straight into its tag (payloadFor): the one write of the media in the service.
   */
  private readonly pool: SlabPool;
  private readonly alloc = (size: number) => this.pool.alloc(size);
  /**
   * payloads lent to NMS (payloadFor) and the whole tag around each (same index), held until its message is
   * delivered: one or two at a time (a message per chunk stream), so arrays, not a Map that allocates as it shrinks
   */
  private readonly lentPayloads: Buffer[] = [];
  private readonly lentTags: Buffer[] = [];
  private endCbs: (() => void)[] = [];
  /** tags from the first until the publish is announced; null after */
  private pending: FlvTag[] | null = [];
  private pendingBytes = 0;
  private wasAnnounced = false;
  /** kept so a late subscriber still gets a decodable start */
  private metadataTag: FlvTag | null = null;
  private audioConfigTag: FlvTag | null = null;
  private videoConfigTag: FlvTag | null = null;
  private ended = false;
  private paused = false;
  private bytes = 0;
  private tags = 0;

  constructor(init: PublishInit) {
    super({ ...init, query: Object.freeze({ ...init.query }) });
    this.socket = init.socket;
    this.pool = init.pool ?? new SlabPool(SLAB_BYTES, MAX_FREE_SLABS);
    this.idleTimeoutMs = init.idleTimeoutMs;
    this.log = init.log;
    this.onReady = init.onReady;
  }

  /** The codecs are known and `publish` was emitted. */
  get announced(): boolean {
    return this.wasAnnounced;
  }

  codecs(): Codecs | null {
    return this.tracker.codecs();
  }

  onData(cb: (chunk: Buffer) => void): void {
    if (this.ended) return;
    this.dataCbs.push(cb);
    this.callSafely('onData', cb, flvHeader(this.tracker.codecs()));
    const first = this.dataCbs.length === 1 && this.tagCbs.length === 0;
    for (const t of this.startTags()) {
      if (first && this.pending) pinBytes(t.bytes);
      this.callSafely('onData', cb, first && this.pending ? t.bytes : Buffer.from(t.bytes));
    }
  }

  onTag(cb: (tag: FlvTag) => void, opts: { readonly holds?: boolean } = {}): void {
    if (this.ended) return;
    this.tagCbs.push(cb);
    const first = this.tagCbs.length === 1 && this.dataCbs.length === 0;
    if (first) this.firstHolds = opts.holds === true;
    for (const t of this.startTags()) {
      if (first && this.pending && !this.firstHolds) pinBytes(t.bytes);
      this.callSafely('onTag', cb, first && this.pending ? t : copyTag(t));
    }
  }

  /**
   * Where NMS reads an audio or video message of `length` bytes (RtmpIngest, via limits.ts guardParser): a view of
   * a tag cut for it, so that the payload is written once, in place. Null when not publishing.
   */
  payloadFor(type: number, length: number): Buffer | null {
    if (this.ended || (type !== 8 && type !== 9)) return null;
    // one message per chunk stream is in progress; older entries are messages NMS dropped (a clock past 32 bits)
    if (this.lentTags.length >= MAX_LENT) {
      releaseBytes(this.lentTags.shift() as Buffer);
      this.lentPayloads.shift();
    }
    const tag = this.pool.alloc(11 + length + 4);
    holdBytes(tag);
    const payload = tag.subarray(11, 11 + length);
    this.lentPayloads.push(payload);
    this.lentTags.push(tag);
    return payload;
  }

  /** Held tags before the announcement; metadata and sequence headers after it. */
  private startTags(): FlvTag[] {
    return (this.pending ?? [this.metadataTag, this.audioConfigTag, this.videoConfigTag]).filter((t): t is FlvTag => t !== null);
  }

  onEnd(cb: () => void): void {
    if (this.ended) cb();
    else this.endCbs.push(cb);
  }

  pause(): void {
    if (this.paused || this.ended) return;
    this.paused = true;
    this.socket.setTimeout(0);
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || this.ended) return;
    this.paused = false;
    this.socket.setTimeout(this.idleTimeoutMs);
    this.socket.resume();
  }

  stats(): { bytes: number; tags: number; paused: boolean } {
    return { bytes: this.bytes, tags: this.tags, paused: this.paused };
  }

  close(): void {
    this.socket.destroy();
  }

  /** A media or data message from the RTMP parser; `data` is NMS's reused buffer, valid for `size` bytes. */
  packet(type: number, timestamp: number, data: Buffer, size: number): void {
    const i = this.lentPayloads.indexOf(data);
    if (i < 0) return this.message(type, timestamp, data, size, null);
    const lent = this.lentTags[i] as Buffer;
    const last = this.lentPayloads.length - 1;
    this.lentPayloads[i] = this.lentPayloads[last] as Buffer;
    this.lentTags[i] = this.lentTags[last] as Buffer;
    this.lentPayloads.pop();
    this.lentTags.pop();
    try {
      this.message(type, timestamp, data, size, lent);
    } finally {
      releaseBytes(lent);
    }
  }

  /** A message; `lent`: the tag whose payload `data` is (read there by NMS), held during the call. */
  private message(type: number, timestamp: number, data: Buffer, size: number, lent: Buffer | null): void {
    if (this.ended) return;
    let payload = data.length === size ? data : data.subarray(0, size);
    if (type === 18) {
      payload = scriptPayload(payload);
      if (!payload.subarray(0, ON_METADATA.length).equals(ON_METADATA)) return; // onFI, |RtmpSampleAccess, ...
      // only the first goes out: some publishers (librtmp/GStreamer) repeat it every few frames, and a script
      // tag past t=0 is read as a subtitle track by ffmpeg
      if (this.metadataTag) return;
      this.readMetadata(payload);
      this.metadataTag = tagOf(18, timestamp, flvTag(18, timestamp, payload));
      this.deliver(this.metadataTag);
      return;
    }
    if (type !== 8 && type !== 9) return; // AMF3 data (15) and anything else has no place in FLV
    if (payload.length === 0) return;
    // the one write of the media in the service: NMS read it into `lent` (else it reuses `data`: one copy); the
    // sequence headers, kept for the whole publish, get buffers of their own (a slab is not held by them)
    const seq = isSequenceHeader(type, payload);
    const bytes = lent && !seq ? frameFlvTag(type, timestamp, lent) : flvTag(type, timestamp, payload, seq ? Buffer.allocUnsafe : this.alloc);
    const tag = tagOf(type, timestamp, bytes, payload);
    if (tag.sequenceHeader) {
      if (type === 8) this.audioConfigTag = tag;
      else this.videoConfigTag = tag;
    }
    const known = this.tracker.tag(type, timestamp, payload) ?? (this.pendingBytes > MAX_PENDING_BYTES ? this.tracker.settle() : null);
    this.deliver(tag);
    if (known) this.announce(known);
  }

  /** The publisher is gone: tell the end callbacks once, drop every consumer. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const cbs = this.endCbs;
    this.dataCbs = [];
    this.tagCbs = [];
    this.endCbs = [];
    for (const t of this.pending ?? []) releaseBytes(t.bytes);
    this.pending = null;
    for (const tag of this.lentTags) releaseBytes(tag);
    this.lentTags.length = 0;
    this.lentPayloads.length = 0;
    for (const cb of cbs) this.callSafely('onEnd', cb, undefined);
  }

  private readMetadata(payload: Buffer): void {
    try {
      const m = decodeAmf0Data(payload);
      if (m.dataObj && typeof m.dataObj === 'object') this.tracker.metadata(m.dataObj as Record<string, unknown>);
    } catch (err) {
      this.log.debug({ stream: this.name, reason: errMessage(err) }, 'unreadable RTMP metadata');
    }
  }

  /** Codecs known: subscribers added by the `publish` listeners get the held tags, then live ones. */
  private announce(c: Codecs): void {
    if (c.video === null && c.audio === null) {
      this.log.warn({ stream: this.name }, 'RTMP publish carries no codec we can record (video H264/H265/VP9, audio AAC/MP3/Opus/G.711)');
    }
    this.wasAnnounced = true;
    try {
      this.onReady(this);
    } finally {
      for (const t of this.pending ?? []) releaseBytes(t.bytes);
      this.pending = null;
      this.pendingBytes = 0;
    }
  }

  private deliver(tag: FlvTag): void {
    this.bytes += tag.bytes.length;
    this.tags++;
    if (this.pending) {
      holdBytes(tag.bytes);
      this.pending.push(tag);
      this.pendingBytes += tag.bytes.length;
      return;
    }
    // one consumer (the usual case) gets the tag itself; more get their own copies, made before the first consumer
    // may rewrite the tag in place
    const tcbs = this.tagCbs;
    const cbs = this.dataCbs;
    // the original goes to the first subscriber: its slab may be reused only if that one holds what it keeps
    if (cbs.length + tcbs.length > 0 && !(tcbs.length > 0 && this.firstHolds)) pinBytes(tag.bytes);
    if (tcbs.length + cbs.length === 1) {
      if (tcbs[0]) this.callSafely('onTag', tcbs[0], tag);
      else if (cbs[0]) this.callSafely('onData', cbs[0], tag.bytes);
      return;
    }
    const tagCopies = tcbs.map((_, i) => (i === 0 ? tag : copyTag(tag)));
    const dataCopies = cbs.map((_, i) => (i === 0 && tcbs.length === 0 ? tag.bytes : Buffer.from(tag.bytes)));
    tcbs.forEach((cb, i) => this.callSafely('onTag', cb, tagCopies[i] ?? tag));
    cbs.forEach((cb, i) => this.callSafely('onData', cb, dataCopies[i] ?? tag.bytes));
  }

  /** Hands `x` to a subscriber; one that throws is logged, and breaks neither the publish nor the others. */
  private callSafely<T>(what: 'onTag' | 'onData' | 'onEnd', cb: (x: T) => void, x: T): void {
    try {
      cb(x);
    } catch (err) {
      this.log.error({ err, stream: this.name }, `RTMP ${what} callback threw`);
    }
  }
}

/** A tag with its own copy of the bytes (for a second consumer, which must not see the first one's rewrites). */
function copyTag(t: FlvTag): FlvTag {
  return { ...t, bytes: Buffer.from(t.bytes) };
}
