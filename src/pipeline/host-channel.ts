import { AppError } from '../lib/errors';
import type { HostRequest } from './types';

/**
 * The service → media host byte channel (an extra stdio pipe, fd 4 in the host): length-prefixed frames, so media
 * crosses the process boundary without a serializer. Every request goes through it once it is up, so a push and
 * the `eos` after it keep their order. Pure: encoding and an incremental reader, no I/O.
 *
 * Frame: u32 BE length of what follows, u8 kind, then
 *   kind 0 (request): the HostRequest as UTF-8 JSON (rare: start, eos, stop, ping, ...);
 *   kind 1 (push): u8 id length, id (latin1), u8 src length, src (latin1), u16 BE chunk count, u32 BE length of each
 *   chunk, then the chunks' bytes back to back.
 */
export const CHANNEL_FD = 4;

const KIND_REQUEST = 0;
const KIND_PUSH = 1;
/** a frame larger than this is a broken channel, not data */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** chunks one push frame can carry (u16 count): a longer batch item goes out as several frames */
export const MAX_FRAME_CHUNKS = 0xffff;

/** A frame as read by the host. */
export type ChannelFrame =
  | { readonly kind: 'request'; readonly req: HostRequest }
  /** `data`: the chunks back to back (a view of what was read when it arrived in one piece); `lengths` splits it */
  | { readonly kind: 'push'; readonly id: string; readonly src: string; readonly data: Buffer; readonly lengths: readonly number[] };

/** The channel carried something that is not a frame (a bug or a broken pipe): coded INTERNAL; fatal in the host. */
export class ChannelError extends AppError {
  constructor(message: string) {
    super('INTERNAL', message);
  }
}

/** A request frame. */
export function encodeRequestFrame(req: HostRequest): Buffer {
  const json = Buffer.from(JSON.stringify(req), 'utf8');
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(json.length + 1, 0);
  head[4] = KIND_REQUEST;
  return Buffer.concat([head, json]);
}

/**
 * A push frame as the buffers to write (header, then the chunks themselves: no copy of the media). More than
 * MAX_FRAME_CHUNKS chunks are refused: the caller splits them into several frames.
 */
export function encodePushFrame(id: string, src: string, chunks: readonly Uint8Array[]): Uint8Array[] {
  return [encodePushHead(id, src, chunks, 0, chunks.length), ...chunks];
}

/**
 * The header of the push frame that carries `chunks[from .. to)` (written next, as they are): what encodePushFrame
 * puts before them, without building the array of buffers.
 */
export function encodePushHead(id: string, src: string, chunks: readonly Uint8Array[], from: number, to: number): Buffer {
  const count = to - from;
  if (count > MAX_FRAME_CHUNKS) throw new ChannelError(`push frame with ${count} chunks (allowed: at most ${MAX_FRAME_CHUNKS})`);
  const idLen = Buffer.byteLength(id, 'latin1');
  const srcLen = Buffer.byteLength(src, 'latin1');
  if (idLen > 255 || srcLen > 255) throw new ChannelError(`push frame id/src longer than 255 bytes (${idLen}/${srcLen})`);
  const headLen = 4 + 1 + 1 + idLen + 1 + srcLen + 2 + 4 * count;
  const head = Buffer.allocUnsafe(headLen);
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += (chunks[i] as Uint8Array).byteLength;
  head.writeUInt32BE(headLen - 4 + bytes, 0);
  let o = 4;
  head[o++] = KIND_PUSH;
  head[o++] = idLen;
  o += head.write(id, o, 'latin1');
  head[o++] = srcLen;
  o += head.write(src, o, 'latin1');
  head.writeUInt16BE(count, o);
  o += 2;
  for (let i = from; i < to; i++) {
    head.writeUInt32BE((chunks[i] as Uint8Array).byteLength, o);
    o += 4;
  }
  return head;
}

/** Reads frames from the channel's byte stream (pure, incremental). */
export class FrameReader {
  private bufs: Buffer[] = [];
  private len = 0;

  /**
   * Feed what was read; returns the frames completed. Throws ChannelError on a malformed frame.
   * `transient`: `chunk` is a reused read buffer that the next read overwrites. The bytes of an unfinished frame
   * are then copied (only they: at most one frame's tail per read), and the frames returned may be views of
   * `chunk`, valid until the next read: use them before then (the media host pushes them at once; appsrc copies).
   */
  push(chunk: Buffer, transient = false): ChannelFrame[] {
    if (chunk.length) {
      this.bufs.push(chunk);
      this.len += chunk.length;
    }
    const out: ChannelFrame[] = [];
    while (this.len >= 4) {
      const size = this.peekU32();
      if (size < 1 || size > MAX_FRAME_BYTES) throw new ChannelError(`channel frame of ${size} bytes (allowed: 1–${MAX_FRAME_BYTES})`);
      if (this.len < 4 + size) break;
      this.take(4);
      out.push(parseFrame(this.take(size)));
    }
    // what is left of `chunk` is the last buffer kept (the ones before it are earlier copies): copy it out
    const last = this.bufs.length - 1;
    if (transient && chunk.length && last >= 0) this.bufs[last] = Buffer.from(this.bufs[last] as Buffer);
    return out;
  }

  /** bytes read and not yet part of a whole frame */
  get buffered(): number {
    return this.len;
  }

  private peekU32(): number {
    const first = this.bufs[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    const b = Buffer.allocUnsafe(4);
    let o = 0;
    for (const x of this.bufs) {
      o += x.copy(b, o, 0, Math.min(x.length, 4 - o));
      if (o === 4) break;
    }
    return b.readUInt32BE(0);
  }

  /** The next `n` bytes: a view when they are in one read, else one copy. */
  private take(n: number): Buffer {
    this.len -= n;
    const first = this.bufs[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.bufs.shift();
      else this.bufs[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const b = this.bufs[0] as Buffer;
      const k = Math.min(b.length, n - o);
      b.copy(out, o, 0, k);
      o += k;
      if (k === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(k);
    }
    return out;
  }
}

function parseFrame(f: Buffer): ChannelFrame {
  const kind = f[0];
  if (kind === KIND_REQUEST) {
    try {
      return { kind: 'request', req: JSON.parse(f.toString('utf8', 1)) as HostRequest };
    } catch (err) {
      throw new ChannelError(`channel request frame is not JSON: ${(err as Error).message}`);
    }
  }
  if (kind !== KIND_PUSH) throw new ChannelError(`channel frame of kind ${String(kind)} (allowed: 0 request, 1 push)`);
  let o = 1;
  const idLen = f[o++] ?? 0;
  const id = f.toString('latin1', o, o + idLen);
  o += idLen;
  const srcLen = f[o++] ?? 0;
  const src = f.toString('latin1', o, o + srcLen);
  o += srcLen;
  if (o + 2 > f.length) throw new ChannelError('channel push frame truncated in its header');
  const count = f.readUInt16BE(o);
  o += 2;
  if (o + 4 * count > f.length) throw new ChannelError('channel push frame truncated in its chunk lengths');
  const lengths: number[] = [];
  let total = 0;
  for (let i = 0; i < count; i++, o += 4) {
    const l = f.readUInt32BE(o);
    lengths.push(l);
    total += l;
  }
  if (o + total !== f.length) throw new ChannelError(`channel push frame holds ${f.length - o} media bytes, its chunk lengths say ${total}`);
  return { kind: 'push', id, src, data: f.subarray(o), lengths };
}
