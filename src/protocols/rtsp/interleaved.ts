import { parseHeaderLines } from './target';
import { AppError } from '../../lib/errors';

/** One RTSP answer read from a TCP connection. */
export interface RtspAnswer {
  readonly kind: 'answer';
  readonly status: number;
  readonly reason: string;
  /** header values by lower-cased name */
  readonly headers: ReadonlyMap<string, string[]>;
  readonly body: string;
}

/** One `$`-framed binary packet (RFC 2326 §10.12): RTP or RTCP on an interleaved channel. */
export interface InterleavedFrame {
  readonly kind: 'frame';
  readonly channel: number;
  /** a view into the received bytes: copy it to keep it past the next push() */
  readonly payload: Buffer;
}

/** A request the server sent to us (GET_PARAMETER, ANNOUNCE...): read and skipped. */
export interface RtspServerRequest {
  readonly kind: 'request';
  readonly method: string;
}

/** What an RTSP-over-TCP byte stream carries once a session plays. */
export type RtspTcpItem = RtspAnswer | InterleavedFrame | RtspServerRequest;

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 1024 * 1024;

/**
 * Splits an RTSP connection's bytes into RTSP messages and interleaved frames, whatever the TCP chunking.
 * Throws an Error naming the problem on bytes that are neither (the connection is then unusable).
 */
export class RtspTcpSplitter {
  private buf: Buffer = Buffer.alloc(0);

  /**
   * Feed received bytes; returns every item completed by them, in order. `chunk` may be a reused read buffer:
   * frame payloads are views valid until the next push(), and the splitter copies only the incomplete tail it keeps.
   */
  push(chunk: Buffer): RtspTcpItem[] {
    const out: RtspTcpItem[] = [];
    this.buf = this.completePending(chunk, out);
    let pos = 0;
    // Each pass consumes at least 4 bytes or stops, so the loop is bounded by the buffer length.
    while (pos < this.buf.length) {
      if (this.buf[pos] === 0x24) {
        if (this.buf.length - pos < 4) break;
        const size = this.buf.readUInt16BE(pos + 2);
        if (this.buf.length - pos < 4 + size) break;
        out.push({ kind: 'frame', channel: this.buf[pos + 1] ?? 0, payload: this.buf.subarray(pos + 4, pos + 4 + size) });
        pos += 4 + size;
        continue;
      }
      const msg = this.message(pos);
      if (!msg) break;
      out.push(msg.item);
      pos = msg.next;
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
    return out;
  }

  /**
   * With a frame cut by the previous read: complete it from the head of `chunk` (copying one frame, not the whole
   * read) and return the rest of `chunk` to parse in place. Anything else pending (a frame header cut in its first
   * 4 bytes, an RTSP message) is joined with the whole chunk, as it is rare.
   */
  private completePending(chunk: Buffer, out: RtspTcpItem[]): Buffer {
    const b = this.buf;
    if (b.length === 0) return chunk;
    if (b[0] !== 0x24 || b.length < 4) return Buffer.concat([b, chunk]);
    const need = 4 + b.readUInt16BE(2) - b.length;
    if (need > chunk.length) return Buffer.concat([b, chunk]);
    const whole = Buffer.concat([b, chunk.subarray(0, need)]);
    out.push({ kind: 'frame', channel: whole[1] ?? 0, payload: whole.subarray(4) });
    return chunk.subarray(need);
  }

  /** Bytes received but not yet part of a complete item. */
  pending(): number {
    return this.buf.length;
  }

  private message(pos: number): { item: RtspTcpItem; next: number } | null {
    const end = this.buf.indexOf('\r\n\r\n', pos);
    if (end < 0) {
      if (this.buf.length - pos > MAX_HEAD) throw new AppError('PEER_FAILED', `RTSP header larger than ${MAX_HEAD} bytes`);
      // Checking the first bytes early rejects a non-RTSP peer without waiting for 64 KB.
      if (this.buf.length - pos >= 8 && !looksLikeRtsp(this.buf.toString('latin1', pos, pos + 8))) throw new AppError('PEER_FAILED', `not RTSP: "${printable(this.buf, pos)}"`);
      return null;
    }
    const head = this.buf.toString('latin1', pos, end).split('\r\n');
    const first = head[0] ?? '';
    const answer = /^RTSP\/\d\.\d\s+(\d{3})\s*(.*)$/.exec(first);
    const request = /^([A-Z_]+)\s+\S+\s+RTSP\/\d\.\d$/.exec(first);
    if (!answer && !request) throw new AppError('PEER_FAILED', `not RTSP: "${printable(this.buf, pos)}"`);
    const headers = parseHeaderLines(head.slice(1));
    const len = Number(headers.get('content-length')?.[0] ?? 0);
    if (!Number.isInteger(len) || len < 0 || len > MAX_BODY) throw new AppError('PEER_FAILED', `bad Content-Length (${headers.get('content-length')?.[0] ?? ''})`);
    if (this.buf.length < end + 4 + len) return null;
    const body = this.buf.toString('utf8', end + 4, end + 4 + len);
    const next = end + 4 + len;
    if (answer) return { item: { kind: 'answer', status: Number(answer[1]), reason: answer[2] ?? '', headers, body }, next };
    return { item: { kind: 'request', method: request?.[1] ?? '' }, next };
  }
}

function looksLikeRtsp(start: string): boolean {
  return start.startsWith('RTSP/') || /^[A-Z_]{3,8}( |$)/.test(start);
}

function printable(buf: Buffer, pos: number): string {
  return buf.toString('latin1', pos, Math.min(buf.length, pos + 40)).replace(/[^\x20-\x7e]/g, '.');
}
