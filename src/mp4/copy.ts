import type { FileHandle } from 'node:fs/promises';
import { readAt, type ByteReader } from './reader';

/** Gaps between ranges up to this size are read through rather than skipped (a moof between two mdats: one read costs more than 64 KiB of copy). */
export const SPAN_GAP = 64 * 1024;

/** One read that covers source ranges and the small gaps between them. */
export interface SpanRead {
  readonly file: number;
  readonly src: number;
  len: number;
}

/** Where one range (or a part of it) lies in the reads: [read index, offset in that read, length]. */
export type Segment = readonly [read: number, at: number, len: number];

/**
 * The reads that cover `ranges` (any order; `file` absent: one file): ranges of a file that lie within `gap`
 * bytes of each other share a read, a read holds at most `max` bytes (a longer range is split). Reads are in
 * file and offset order; `segments[i]` says where range i lies in them.
 */
export function spanReads(ranges: ReadonlyArray<{ readonly file?: number; readonly src: number; readonly len: number }>, gap: number, max = Infinity): { reads: SpanRead[]; segments: Segment[][] } {
  const order = ranges.map((_r, i) => i).sort((x, y) => (ranges[x]?.file ?? 0) - (ranges[y]?.file ?? 0) || (ranges[x]?.src ?? 0) - (ranges[y]?.src ?? 0));
  const reads: SpanRead[] = [];
  const segments: Segment[][] = ranges.map(() => []);
  for (const i of order) {
    const r = ranges[i] as { file?: number; src: number; len: number };
    const file = r.file ?? 0;
    const segs = segments[i] as Segment[];
    let src = r.src;
    let left = r.len;
    for (let guard = 0; guard < 100_000_000; guard++) {
      const b = reads[reads.length - 1];
      if (b && b.file === file && src >= b.src && src - (b.src + b.len) <= gap && src - b.src < max) {
        const end = Math.min(src + left, b.src + max);
        if (end > b.src + b.len) b.len = end - b.src;
        segs.push([reads.length - 1, src - b.src, end - src]);
        left -= end - src;
        src = end;
      } else {
        const take = Math.min(left, max);
        reads.push({ file, src, len: take });
        segs.push([reads.length - 1, 0, take]);
        left -= take;
        src += take;
      }
      if (left <= 0) break;
    }
  }
  return { reads, segments };
}

/**
 * Copy blocks kept for the next copy: a recording's finalization copies every fragment (the service remuxes each
 * stream's file at every rotation), and 2 MiB of fresh external memory per remux is what drives V8's full GCs once the
 * RTMP path allocates nothing per tag (bench/README.md, session 8).
 */
const spare: Buffer[] = [];
const MAX_SPARE = 2;

function takeBlock(size: number): Buffer {
  const i = spare.findIndex((b) => b.length === size);
  return i >= 0 ? (spare.splice(i, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(size);
}

function giveBlock(b: Buffer): void {
  if (spare.length < MAX_SPARE) spare.push(b);
}

/**
 * Copy `ranges` (ascending, not overlapping) of `from` back to back into `to` from `pos`: reads of up to `block`
 * bytes that span small gaps (closed in place), each written while the next is read. Returns the end position.
 */
export async function copyRanges(from: ByteReader, to: FileHandle, ranges: ReadonlyArray<{ readonly src: number; readonly len: number }>, pos: number, block = 1024 * 1024): Promise<number> {
  const { reads, segments } = spanReads(ranges, SPAN_GAP, block);
  const inRead: Array<Array<readonly [number, number]>> = reads.map(() => []);
  for (const segs of segments) for (const [k, at, len] of segs) inRead[k]?.push([at, len]);
  const bufs = [takeBlock(block), takeBlock(block)];
  let pending: Promise<unknown> = Promise.resolve();
  for (const [k, r] of reads.entries()) {
    const data = await readAt(from, r.src, r.len, (bufs[k % 2] as Buffer).subarray(0, r.len));
    let len = 0;
    for (const [at, n] of inRead[k] ?? []) {
      if (at !== len) data.copyWithin(len, at, at + n);
      len += n;
    }
    await pending;
    pending = writeAll(to, data, len, pos);
    pos += len;
  }
  await pending;
  // only after a clean copy: a failed one may leave a write in flight that still reads its block
  for (const b of bufs) giveBlock(b);
  return pos;
}

/** Write buf[0, len) at `pos`, however many calls it takes. */
async function writeAll(to: FileHandle, buf: Buffer, len: number, pos: number): Promise<void> {
  for (let w = 0, i = 0; w < len && i < 1_000_000; i++) w += (await to.write(buf, w, len - w, pos + w)).bytesWritten;
}
