import { type FileHandle, open } from 'node:fs/promises';
import { type BoxRef, parseHeader } from './boxes';
import { fail, printable } from './format-error';

/** What positioned reads need of a file: a FileHandle, or a reader of an object in the archive bucket. */
export interface ByteReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** Source bytes read through `readAt` since the last `resetBytesRead()` (for tests: a cut reads only what it needs). */
let bytesReadTotal = 0;

/** Bytes read through `readAt` since the last reset. */
export function bytesRead(): number {
  return bytesReadTotal;
}

/** Reset the `bytesRead()` counter. */
export function resetBytesRead(): void {
  bytesReadTotal = 0;
}

/** Positioned read of exactly `len` bytes at `pos` into `buf` (a new buffer when not given); counted by `bytesRead()`. */
export async function readAt(fh: ByteReader, pos: number, len: number, buf: Buffer = Buffer.allocUnsafe(len)): Promise<Buffer> {
  let done = 0;
  for (let i = 0; done < len && i < 1_000_000; i++) {
    const { bytesRead: n } = await fh.read(buf, done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  bytesReadTotal += done;
  if (done < len) fail(`truncated: the file ends at byte ${pos + done}, ${len} bytes were expected at ${pos}`);
  return len === buf.length ? buf : buf.subarray(0, len);
}

/**
 * An MP4 file of `size` bytes read through a window of `window` bytes: by default only what is asked (a box
 * header: 16 bytes, as a reader that fetches blocks itself wants); with 64 KiB, a box header and the small boxes
 * after it (a moof, the next mdat header) cost one read (each fs call costs ~60 µs of CPU).
 */
export class BoxFile {
  private buf: Buffer;
  private winStart = 0;
  private winLen = 0;
  constructor(readonly fh: ByteReader, readonly size: number, private readonly window = 16) {
    this.buf = Buffer.alloc(window);
  }

  /** Bytes [off, off + n) of the file: a view, valid until the next call. */
  async bytes(off: number, n: number): Promise<Buffer> {
    if (off < this.winStart || off + n > this.winStart + this.winLen) {
      const want = Math.max(n, Math.min(this.window, this.size - off));
      if (want > this.buf.length) this.buf = Buffer.alloc(want);
      await readAt(this.fh, off, want, this.buf.subarray(0, want));
      this.winStart = off;
      this.winLen = want;
    }
    return this.buf.subarray(off - this.winStart, off - this.winStart + n);
  }

  /**
   * The top-level boxes in file order, read by their headers. The last one may run past the end of the file
   * (end > size: a file cut short, or still being written); a header that cannot be a box throws.
   */
  async *boxes(limit = 1_000_000): AsyncGenerator<BoxRef> {
    let off = 0;
    for (let i = 0; off + 8 <= this.size; i++) {
      if (i >= limit) fail(`more than ${limit} top-level boxes`);
      const hdr = await this.bytes(off, Math.min(16, this.size - off));
      const ref = parseHeader(hdr, 0, this.size - off);
      if (!ref) {
        // a 64-bit size whose header the end of the file cuts
        yield { type: hdr.toString('latin1', 4, 8), start: off, body: off + 16, end: off + 16, size: 16 };
        return;
      }
      if (ref.end < ref.body) fail(`bad box header at byte ${off}: a ${printable(ref.type)} of ${ref.size} bytes`);
      yield { type: ref.type, start: off, body: off + ref.body, end: off + ref.end, size: ref.size };
      if (off + ref.end > this.size) return;
      off += ref.end;
    }
  }
}

/** Open `path` for reading, run `fn` with the handle and the file's size, close it. */
export async function withFile<T>(path: string, fn: (fh: FileHandle, size: number) => Promise<T>): Promise<T> {
  const fh = await open(path, 'r');
  try {
    return await fn(fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}
