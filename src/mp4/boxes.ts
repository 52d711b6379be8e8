import { AppError } from '../lib/errors';

/** What positioned reads need of a file: a FileHandle, or a reader of an object in the archive bucket. */
export interface ByteReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** A box found in a buffer or file: its type, where it starts, its header length and total size. */
export interface BoxRef {
  type: string;
  /** offset of the box header (in the file, or in the buffer it was parsed from) */
  start: number;
  headerLen: number;
  size: number;
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
  if (done < len) throw badMp4(`truncated: the file ends at byte ${pos + done}, ${len} bytes were expected at ${pos}`);
  return len === buf.length ? buf : buf.subarray(0, len);
}

/** Error for a file we cannot cut (422: the file is damaged, truncated or of a kind we do not cut). */
export function badMp4(reason: string): AppError {
  return new AppError('BAD_MEDIA', `the file cannot be cut: damaged or unsupported MP4 [reason: ${reason}]`);
}

/** Top-level boxes of a file, reading only their headers. */
export async function readTopBoxes(fh: ByteReader, fileSize: number): Promise<BoxRef[]> {
  const boxes: BoxRef[] = [];
  const hdr = Buffer.alloc(16);
  let off = 0;
  for (let i = 0; off + 8 <= fileSize; i++) {
    if (i >= 100_000) throw badMp4('more than 100000 top-level boxes');
    await readAt(fh, off, Math.min(16, fileSize - off), hdr);
    let ref = parseHeader(hdr, 0, fileSize - off);
    if (!ref) {
      // a file cut short (copy interrupted, disk full): its last box, mdat, claims more than is left; samples
      // that lie past the end are refused later, the ones before it can still be cut
      const big = parseHeader(hdr, 0, Number.MAX_SAFE_INTEGER);
      if (big?.type === 'mdat') ref = { ...big, size: fileSize - off };
      else if (big) throw badMp4(`truncated: the ${printable(big.type)} box at byte ${off} declares ${big.size} bytes, the file has ${fileSize - off} left`);
      else throw badMp4(`bad box header at byte ${off}`);
    }
    boxes.push({ ...ref, start: off });
    off += ref.size;
  }
  return boxes;
}

function printable(type: string): string {
  return type.replace(/[^\x20-\x7e]/g, '?');
}

/** Parse a box header at `at` in `buf`; `room` is how many bytes are left in the enclosing space. */
function parseHeader(buf: Buffer, at: number, room: number): BoxRef | null {
  if (room < 8 || at + 8 > buf.length) return null;
  let size = buf.readUInt32BE(at);
  const type = buf.toString('latin1', at + 4, at + 8);
  let headerLen = 8;
  if (size === 1) {
    if (room < 16 || at + 16 > buf.length) return null;
    size = Number(buf.readBigUInt64BE(at + 8));
    headerLen = 16;
  } else if (size === 0) {
    size = room;
  }
  if (size < headerLen || size > room) return null;
  return { type, start: at, headerLen, size };
}

/** The child boxes of the box body `buf[from, to)`. */
export function childBoxes(buf: Buffer, from = 0, to = buf.length): BoxRef[] {
  const out: BoxRef[] = [];
  let off = from;
  while (off + 8 <= to) {
    const ref = parseHeader(buf, off, to - off);
    if (!ref) throw badMp4(`bad box header inside ${buf.toString('latin1', Math.max(0, from - 4), from)} at ${off}`);
    out.push(ref);
    off += ref.size;
  }
  return out;
}

/** A parsed box in memory: its type, the whole box bytes, and its body. */
export interface Box {
  type: string;
  raw: Buffer;
  body: Buffer;
}

/** The children of a container box (or of a whole buffer). */
export function children(parent: Buffer): Box[] {
  return childBoxes(parent).map((r) => {
    const raw = parent.subarray(r.start, r.start + r.size);
    return { type: r.type, raw, body: raw.subarray(r.headerLen) };
  });
}

/** The first child of `parent` with this type, following a path such as ['mdia', 'minf', 'stbl']. */
export function findBox(parent: Buffer, path: readonly string[]): Box | null {
  let cur: Box | null = null;
  let buf = parent;
  for (const type of path) {
    cur = children(buf).find((b) => b.type === type) ?? null;
    if (!cur) return null;
    buf = cur.body;
  }
  return cur;
}

/** Serialise a box from its type and body parts (a 64-bit size when needed). */
export function makeBox(type: string, ...parts: Buffer[]): Buffer {
  const bodyLen = parts.reduce((n, p) => n + p.length, 0);
  const large = bodyLen + 8 > 0xffffffff;
  const hdr = Buffer.alloc(large ? 16 : 8);
  if (large) {
    hdr.writeUInt32BE(1, 0);
    hdr.writeBigUInt64BE(BigInt(bodyLen + 16), 8);
  } else {
    hdr.writeUInt32BE(bodyLen + 8, 0);
  }
  hdr.write(type, 4, 4, 'latin1');
  return Buffer.concat([hdr, ...parts]);
}

/** Serialise a full box (version and flags, then the body). */
export function makeFullBox(type: string, version: number, flags: number, body: Buffer): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE((((version & 0xff) << 24) | (flags & 0xffffff)) >>> 0, 0);
  return makeBox(type, vf, body);
}
