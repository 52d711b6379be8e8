import type { FileHandle } from 'node:fs/promises';
import { readAt, type ByteReader } from './reader';

/** Gaps between ranges up to this size are read through rather than skipped (a moof between two mdats). */
const SPAN_GAP = 64 * 1024;

/**
 * Copy `ranges` (ascending, not overlapping) of `from` back to back into `to` from `pos`: reads of up to `block`
 * bytes that span small gaps (closed in place), each written while the next is read.
 */
export async function copyRanges(from: ByteReader, to: FileHandle, ranges: ReadonlyArray<{ readonly src: number; readonly len: number }>, pos: number, block = 1024 * 1024): Promise<number> {
  const bufs = [Buffer.allocUnsafe(block), Buffer.allocUnsafe(block)];
  let which = 0;
  let pending: Promise<unknown> = Promise.resolve();
  let r = 0;
  let done = 0; // bytes of ranges[r] already copied
  for (let guard = 0; r < ranges.length && guard < 100_000_000; guard++) {
    const start = (ranges[r]?.src ?? 0) + done;
    let end = start;
    const segs: Array<[number, number]> = [];
    while (r < ranges.length) {
      const cur = ranges[r] as { src: number; len: number };
      const s = cur.src + done;
      const room = start + block - s;
      if (segs.length > 0 && (s - end > SPAN_GAP || s < end || room <= 0)) break;
      const n = Math.min(cur.len - done, room);
      segs.push([s - start, n]);
      end = s + n;
      if (n < cur.len - done) {
        done += n;
        break;
      }
      r++;
      done = 0;
    }
    const data = await readAt(from, start, end - start, (bufs[which] as Buffer).subarray(0, end - start));
    which ^= 1;
    let len = 0;
    for (const [at, n] of segs) {
      if (at !== len) data.copyWithin(len, at, at + n);
      len += n;
    }
    await pending;
    pending = writeAll(to, data, len, pos);
    pos += len;
  }
  await pending;
  return pos;
}

/** Write buf[0, len) at `pos`, however many calls it takes. */
async function writeAll(to: FileHandle, buf: Buffer, len: number, pos: number): Promise<void> {
  for (let w = 0, i = 0; w < len && i < 1_000_000; i++) w += (await to.write(buf, w, len - w, pos + w)).bytesWritten;
}
