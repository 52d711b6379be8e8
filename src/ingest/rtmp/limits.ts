import type Rtmp from 'node-media-server/src/protocol/rtmp.js';

/** Bounds on what one RTMP connection may make the server hold (the rtmp_* keys). */
export interface RtmpLimits {
  /** rtmp_max_pending_connections */
  readonly maxPending: number;
  /** rtmp_max_pending_per_ip */
  readonly maxPendingPerIp: number;
  /** rtmp_handshake_timeout, ms: from connecting to an accepted publish */
  readonly handshakeTimeoutMs: number;
  /** rtmp_max_message_size, bytes */
  readonly maxMessageSize: number;
  /** rtmp_max_chunk_size, bytes */
  readonly maxChunkSize: number;
  /** rtmp_max_pending_bytes: message bytes buffered before the publish is accepted */
  readonly maxPendingBytes: number;
}

/** The schema defaults (src/conf/schema.ts), for an ingest built without a config. */
export const DEFAULT_RTMP_LIMITS: RtmpLimits = {
  maxPending: 64,
  maxPendingPerIp: 8,
  handshakeTimeoutMs: 10_000,
  maxMessageSize: 8 * 1024 * 1024,
  maxChunkSize: 1024 * 1024,
  maxPendingBytes: 64 * 1024,
};

/** Chunk streams one connection may use (a publisher uses 3–6). */
const MAX_CHUNK_STREAMS = 64;

/** A parser limit was crossed: the connection is dropped with this message. */
export class RtmpLimitError extends Error {}

/** NMS allocates each message buffer this much larger than the message. */
const NMS_SLACK = 1024;

/**
 * Whether the parser may take the message whose header was just read: `length` bytes, with the connection then
 * holding `held` bytes of message buffers over all its chunk streams. Returns why not, or null.
 */
export function messageRefusal(length: number, held: number, streams: number, publishing: boolean, l: RtmpLimits): string | null {
  if (length > l.maxMessageSize) return `RTMP message of ${length} bytes; allowed: up to ${l.maxMessageSize} (rtmp_max_message_size)`;
  if (!publishing && held > l.maxPendingBytes) {
    return `RTMP connection would buffer ${held} bytes before publishing; allowed: up to ${l.maxPendingBytes} (rtmp_max_pending_bytes)`;
  }
  if (held > 2 * l.maxMessageSize) return `RTMP connection would buffer ${held} bytes; allowed: two messages of rtmp_max_message_size`;
  if (streams > MAX_CHUNK_STREAMS) return `RTMP connection uses ${streams} chunk streams; allowed: up to ${MAX_CHUNK_STREAMS}`;
  return null;
}

/**
 * Where a message of `type` and `length` bytes is read to, instead of node-media-server's own buffer for its chunk
 * stream (null: there). The buffer is then the caller's: NMS fills it and hands it over once, in onPacketCallback.
 */
export type PayloadFor = (type: number, length: number) => Buffer | null;

/** Whether a chunk size set by the peer is allowed; returns why not, or null. */
export function chunkSizeRefusal(size: number, l: RtmpLimits): string | null {
  if (!Number.isInteger(size) || size < 1 || size > l.maxChunkSize) return `RTMP chunk size ${size}; allowed: 1–${l.maxChunkSize} (rtmp_max_chunk_size)`;
  return null;
}

/**
 * Bound node-media-server's parser on one connection: every message length is checked before its buffer is
 * allocated (NMS allocates a message's full length up front), and a chunk size set by the peer is checked when it
 * arrives. A crossing throws RtmpLimitError out of parserData(). `publishing()` lifts the pending bound.
 * `payloadFor` may give a message its own buffer to be read into (the publish's tag slabs).
 */
export function guardParser(rtmp: Rtmp, limits: () => RtmpLimits, publishing: () => boolean, payloadFor?: PayloadFor): void {
  const alloc = rtmp.packetAlloc.bind(rtmp);
  /** packets whose payload came from payloadFor: the bytes are the consumer's once the message is complete */
  const lent = new WeakSet<object>();
  rtmp.packetAlloc = () => {
    const pp = rtmp.parserPacket;
    // every chunk stream keeps its buffer (NMS never shrinks it): this one then holds the larger of the two
    let held = Math.max(pp.header.length, pp.capacity - NMS_SLACK);
    for (const p of rtmp.inPackets.values()) if (p !== pp) held += Math.max(0, p.capacity - NMS_SLACK);
    const why = messageRefusal(pp.header.length, held, rtmp.inPackets.size, publishing(), limits());
    if (why) throw new RtmpLimitError(why);
    const own = payloadFor?.(pp.header.type, pp.header.length) ?? null;
    if (own) {
      // NMS writes the message's chunks straight into it (counted as held like NMS's own buffer, slack included)
      pp.payload = own;
      pp.capacity = pp.header.length + NMS_SLACK;
      lent.add(pp);
      return;
    }
    if (lent.has(pp)) {
      // the last payload was lent: never write another message over it
      lent.delete(pp);
      pp.payload = Buffer.alloc(0);
      pp.capacity = 0;
    }
    alloc();
  };
  const control = rtmp.controlHandler.bind(rtmp);
  rtmp.controlHandler = () => {
    control();
    if (rtmp.parserPacket.header.type !== 1) return; // Set Chunk Size
    const why = chunkSizeRefusal(rtmp.inChunkSize, limits());
    if (why) throw new RtmpLimitError(why);
  };
}
