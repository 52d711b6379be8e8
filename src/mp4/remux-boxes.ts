/** One ISO-BMFF box inside a buffer: type, [start, end) of the whole box, payload from `body`. */
export interface BoxRef {
  readonly type: string;
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

/** The remux cannot go on: what is wrong and where (file offset), so the caller can log it and fall back. */
export class Mp4FormatError extends Error {
  override readonly name = 'Mp4FormatError';
}

/** Throw an Mp4FormatError naming the box and its file offset. */
export function fail(what: string, box: string, fileOffset: number): never {
  throw new Mp4FormatError(`${what} [box:${box}, offset:${fileOffset}]`);
}

/**
 * The child boxes of `buf` [from, to), all of them complete: a length that overruns the parent throws.
 * `base` is the file offset of buf[0], for the error message.
 */
export function boxesIn(buf: Buffer, from: number, to: number, base: number, parent: string): BoxRef[] {
  const out: BoxRef[] = [];
  let off = from;
  for (let i = 0; off < to; i++) {
    if (i >= 1_000_000) fail('too many child boxes', parent, base + from);
    if (off + 8 > to) fail(`${to - off} stray bytes at the end`, parent, base + off);
    let len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    let head = 8;
    if (len === 1) {
      if (off + 16 > to) fail('64-bit box size cut', type, base + off);
      len = Number(buf.readBigUInt64BE(off + 8));
      head = 16;
    } else if (len === 0) len = to - off;
    if (len < head || off + len > to) fail(`box size ${len} overruns its parent ${parent} (${to - off} bytes left)`, type, base + off);
    out.push({ type, start: off, body: off + head, end: off + len });
    off += len;
  }
  return out;
}

/** The one child of a given type (null when absent; more than one throws). */
export function only(kids: readonly BoxRef[], type: string, base: number): BoxRef | null {
  const found = kids.filter((k) => k.type === type);
  if (found.length > 1) fail(`${found.length} ${type} boxes where one is allowed`, type, base + (found[1]?.start ?? 0));
  return found[0] ?? null;
}

/** Like only(), but absence throws. */
export function must(kids: readonly BoxRef[], type: string, parent: string, base: number, parentAt: number): BoxRef {
  const b = only(kids, type, base);
  if (!b) fail(`${parent} has no ${type}`, parent, base + parentAt);
  return b;
}

/** A box of `type` holding `parts` (a 64-bit size when it needs one). */
export function box(type: string, ...parts: Buffer[]): Buffer {
  const size = parts.reduce((n, p) => n + p.length, 8);
  if (size > 0xffffffff) fail(`a ${size}-byte box needs a 64-bit size, only mdat gets one`, type, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, ...parts]);
}

/** A full box: version, flags, then 32-bit big-endian `words`. */
export function fullBox(type: string, version: number, flags: number, words: readonly number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * words.length);
  b.writeUInt32BE(((version & 0xff) << 24 | (flags & 0xffffff)) >>> 0, 0);
  words.forEach((w, i) => {
    if (w < 0) b.writeInt32BE(w, 4 + 4 * i);
    else b.writeUInt32BE(w, 4 + 4 * i);
  });
  return box(type, b);
}

/** Read an unsigned 32- or 64-bit field; a 64-bit value past 2^53 throws. */
export function readUint(buf: Buffer, at: number, bytes: 4 | 8, box: string, base: number): number {
  if (at + bytes > buf.length) fail('box too short for its fields', box, base + at);
  if (bytes === 4) return buf.readUInt32BE(at);
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit value ${v} too large`, box, base + at);
  return Number(v);
}
