import type { Readable } from 'node:stream';
import { AppError, errMessage } from '../lib/errors';
import type { S3Store } from './s3-store';

/** Bytes fetched per ranged GET while an MP4's boxes are walked (the moov of a 10 s file fits, with the box headers). */
export const PARSE_BLOCK = 64 * 1024;
/** Bytes fetched per ranged GET while media is copied (the next block is fetched while this one is used). */
export const DATA_BLOCK = 4 * 1024 * 1024;

/** GETs and bytes fetched by every ObjectReader since start (for tests and measurements). */
export const objectReads = { gets: 0, bytes: 0 };

interface Block {
  readonly at: number;
  readonly len: number;
  readonly buf: Buffer;
}

/**
 * Positioned reads of one object of the archive bucket through ranged GETs, as a file handle gives them: each GET
 * fetches `block` bytes (or the read, when larger). A box walk (`readAhead` false) keeps its last two blocks (the
 * head of the file and the moov at its end cost one GET each); a copy (`readAhead` true) keeps one and fetches the
 * next while it is used, so the store's latency per GET is hidden behind the copy. Memory: two blocks.
 */
export class ObjectReader {
  private blocks: Block[] = [];
  /** the buffer of the block dropped last, reused by the next fetch (no new 4 MiB buffer per GET) */
  private spare: Buffer | null = null;
  private ahead: { at: number; len: number; done: Promise<Block | null> } | null = null;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;

  constructor(
    private readonly s3: S3Store,
    readonly key: string,
    /** the object's size (the archive row's bytes) */
    readonly size: number,
    /** what the request is about, for errors: a file name */
    private readonly name: string,
    signal?: AbortSignal,
    private readonly block = DATA_BLOCK,
    private readonly readAhead = block >= DATA_BLOCK,
  ) {
    this.signal = signal ? AbortSignal.any([signal, this.stop.signal]) : this.stop.signal;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position >= this.size || length <= 0) return { bytesRead: 0 };
    const n = Math.min(length, this.size - position);
    let b = this.blocks.find((x) => position >= x.at && position + n <= x.at + x.len);
    if (!b) {
      const ahead = this.ahead;
      this.ahead = null;
      if (ahead && position >= ahead.at && position + n <= ahead.at + ahead.len) b = (await ahead.done) ?? undefined;
      if (!b && n >= this.block) {
        await this.fetch(position, n, buffer, offset);
        this.prefetch(position + n);
        return { bytesRead: n };
      }
      if (!b) {
        const len = Math.min(this.block, this.size - position);
        const buf = this.buffer(len);
        await this.fetch(position, len, buf, 0);
        b = { at: position, len, buf };
      }
      this.blocks.push(b);
      if (this.blocks.length > (this.readAhead ? 1 : 2)) this.spare = this.blocks.shift()?.buf ?? null;
      this.prefetch(b.at + b.len);
    }
    const from = position - b.at;
    b.buf.copy(buffer, offset, from, from + n);
    return { bytesRead: n };
  }

  /** A buffer of at least `len` bytes that no block holds. */
  private buffer(len: number): Buffer {
    const b = this.spare && this.spare.length >= len ? this.spare : Buffer.allocUnsafe(len);
    this.spare = null;
    return b;
  }

  /** Drop the blocks and cancel a read-ahead. */
  async close(): Promise<void> {
    this.blocks = [];
    this.spare = null;
    this.ahead = null;
    this.stop.abort();
  }

  /** Start fetching the block at `at` (a copy reads on from there); its failure shows when it is read. */
  private prefetch(at: number): void {
    if (!this.readAhead || at >= this.size || this.signal.aborted) return;
    const len = Math.min(this.block, this.size - at);
    const buf = this.buffer(len);
    const done = this.fetch(at, len, buf, 0).then(
      () => ({ at, len, buf }),
      () => null, // read again (and its error answered) when it is needed
    );
    this.ahead = { at, len, done };
  }

  /** GET bytes [pos, pos + len) into `into` at `at`: exactly that many, else an error. */
  private async fetch(pos: number, len: number, into: Buffer, at: number): Promise<void> {
    let got = 0;
    try {
      const obj = await this.s3.get(this.key, `bytes=${pos}-${pos + len - 1}`, this.signal);
      const body = obj.Body as Readable | undefined;
      if (!body) throw new AppError('INTERNAL', 'the store sent no body');
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const room = Math.min(chunk.length, len - got);
        if (room > 0) chunk.copy(into, at + got, 0, room);
        got += chunk.length;
        if (got > len) break;
      }
    } catch (err) {
      if (this.signal?.aborted) throw new AppError('INTERNAL', `reading ${this.name} from the archive was cancelled`);
      throw new AppError('ARCHIVE_UNAVAILABLE', `${this.name} is only in the archive, and the archive store did not answer: ${errMessage(err).slice(0, 200)}`);
    }
    objectReads.gets++;
    objectReads.bytes += Math.min(got, len);
    if (got !== len) {
      throw new AppError('ARCHIVE_UNAVAILABLE', `${this.name} in the archive gave ${got} bytes at ${pos} where ${len} were asked (the index says ${this.size} bytes)`);
    }
  }
}
