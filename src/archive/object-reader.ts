import type { Readable } from 'node:stream';
import { AppError, errMessage } from '../lib/errors';
import type { S3Store } from './s3-store';

/** Bytes fetched per ranged GET while an MP4's boxes are walked (the moov of a 10 s file fits, with the box headers). */
export const PARSE_BLOCK = 64 * 1024;
/** Bytes fetched per ranged GET while media is copied (a few fragments of a recording per request). */
export const DATA_BLOCK = 2 * 1024 * 1024;

/** GETs and bytes fetched by every ObjectReader since start (for tests and measurements). */
export const objectReads = { gets: 0, bytes: 0 };

/**
 * Positioned reads of one object of the archive bucket through ranged GETs, as a file handle gives them: each GET
 * fetches `block` bytes (or the read, when larger) and the last block is kept, so the small reads of a box walk and
 * the sequential reads of a copy cost one request per block. Memory: one block.
 */
export class ObjectReader {
  private buf: Buffer | null = null;
  private at = 0;
  private len = 0;

  constructor(
    private readonly s3: S3Store,
    readonly key: string,
    /** the object's size (the archive row's bytes) */
    readonly size: number,
    /** what the request is about, for errors: a file name */
    private readonly name: string,
    private readonly signal?: AbortSignal,
    private readonly block = DATA_BLOCK,
  ) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position >= this.size || length <= 0) return { bytesRead: 0 };
    const n = Math.min(length, this.size - position);
    if (!(this.buf && position >= this.at && position + n <= this.at + this.len)) {
      if (n >= this.block) {
        await this.fetch(position, n, buffer, offset);
        return { bytesRead: n };
      }
      const len = Math.min(this.block, this.size - position);
      if (!this.buf || this.buf.length < len) this.buf = Buffer.allocUnsafe(Math.max(len, Math.min(this.block, this.size)));
      this.at = position;
      this.len = 0;
      await this.fetch(position, len, this.buf, 0);
      this.len = len;
    }
    const from = position - this.at;
    (this.buf as Buffer).copy(buffer, offset, from, from + n);
    return { bytesRead: n };
  }

  /** Drop the block. */
  async close(): Promise<void> {
    this.buf = null;
    this.len = 0;
  }

  /** GET bytes [pos, pos + len) into `into` at `at`: exactly that many, else an error. */
  private async fetch(pos: number, len: number, into: Buffer, at: number): Promise<void> {
    let got = 0;
    try {
      const obj = await this.s3.get(this.key, `bytes=${pos}-${pos + len - 1}`, this.signal);
      const body = obj.Body as Readable | undefined;
      if (!body) throw new Error('the store sent no body');
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const room = Math.min(chunk.length, len - got);
        if (room > 0) chunk.copy(into, at + got, 0, room);
        got += chunk.length;
        if (got > len) break;
      }
    } catch (err) {
      if (this.signal?.aborted) throw new Error(`reading ${this.name} from the archive was cancelled`);
      throw new AppError('ARCHIVE_UNAVAILABLE', `${this.name} is only in the archive, and the archive store did not answer: ${errMessage(err).slice(0, 200)}`);
    }
    objectReads.gets++;
    objectReads.bytes += Math.min(got, len);
    if (got !== len) {
      throw new AppError('ARCHIVE_UNAVAILABLE', `${this.name} in the archive gave ${got} bytes at ${pos} where ${len} were asked (the index says ${this.size} bytes)`);
    }
  }
}
