import { fail, printable } from './format-error';

/** A box inside a buffer or a file: its type and offsets (of the header, the body, the end); size = end - start. */
export interface BoxRef {
  readonly type: string;
  readonly start: number;
  readonly body: number;
  readonly end: number;
  readonly size: number;
}

/**
 * The box header at `buf[at]` (32- or 64-bit size; 0 = up to `room`), offsets relative to buf; `room` is what is
 * left of the enclosing space. Null when the header itself does not fit. The box may claim more than `room` or
 * less than its header: the caller decides what that means.
 */
export function parseHeader(buf: Buffer, at: number, room: number): BoxRef | null {
  if (room < 8 || at + 8 > buf.length) return null;
  let size = buf.readUInt32BE(at);
  let head = 8;
  if (size === 1) {
    if (room < 16 || at + 16 > buf.length) return null;
    const big = buf.readBigUInt64BE(at + 8);
    size = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    head = 16;
  } else if (size === 0) size = room;
  return { type: buf.toString('latin1', at + 4, at + 8), start: at, body: at + head, end: at + size, size };
}

/**
 * The child boxes of `buf[from, to)`, all complete: a box that overruns its parent throws (less than a header
 * left at the end is padding, as QuickTime leaves). `base` is the file offset of buf[0], for the message.
 */
export function childBoxes(buf: Buffer, from = 0, to = buf.length, base = 0, parent = 'box'): BoxRef[] {
  const out: BoxRef[] = [];
  let off = from;
  for (let i = 0; off + 8 <= to; i++) {
    if (i >= 1_000_000) fail('too many child boxes', parent, base + from);
    const ref = parseHeader(buf, off, to - off);
    if (!ref || ref.end < ref.body || ref.end > to) {
      const what = ref ? `a ${printable(ref.type)} of ${ref.size} bytes` : 'a 64-bit size cut';
      fail(`bad box header inside ${printable(parent)}: ${what} overruns it (${to - off} bytes left)`, parent, base + off);
    }
    out.push(ref);
    off = ref.end;
  }
  return out;
}

/** The body of a whole box held in `box` (after its 8- or 16-byte header). */
export function bodyOf(box: Buffer): Buffer {
  const ref = parseHeader(box, 0, box.length);
  if (!ref || ref.end < ref.body || ref.end > box.length) fail('bad box header');
  return box.subarray(ref.body, ref.end);
}

/** The one child of a given type (null when absent; more than one throws). */
export function only(kids: readonly BoxRef[], type: string, base = 0): BoxRef | null {
  const found = kids.filter((k) => k.type === type);
  if (found.length > 1) fail(`${found.length} ${type} boxes where one is allowed`, type, base + (found[1]?.start ?? 0));
  return found[0] ?? null;
}

/** Like only(), but absence throws. */
export function must(kids: readonly BoxRef[], type: string, parent: string, base = 0, parentAt = 0): BoxRef {
  const b = only(kids, type, base);
  if (!b) fail(`${parent} has no ${type}`, parent, base + parentAt);
  return b;
}

/** A parsed box in memory: its type, the whole box bytes, and its body. */
export interface Box {
  readonly type: string;
  readonly raw: Buffer;
  readonly body: Buffer;
}

/** The children of a container box body (or of a whole buffer). */
export function children(parent: Buffer, name = 'box'): Box[] {
  return childBoxes(parent, 0, parent.length, 0, name).map((r) => {
    const raw = parent.subarray(r.start, r.end);
    return { type: r.type, raw, body: raw.subarray(r.body - r.start) };
  });
}

/** The first child of `parent` with this type, following a path such as ['mdia', 'minf', 'stbl']. */
export function findBox(parent: Buffer, path: readonly string[]): Box | null {
  let cur: Box | null = null;
  let buf = parent;
  let name = 'box';
  for (const type of path) {
    cur = children(buf, name).find((b) => b.type === type) ?? null;
    if (!cur) return null;
    buf = cur.body;
    name = type;
  }
  return cur;
}

/** The header of a box of `type` with `bodyLen` bytes of body (a 64-bit size when needed). */
export function boxHeader(type: string, bodyLen: number): Buffer {
  const large = bodyLen + 8 > 0xffffffff;
  const hdr = Buffer.alloc(large ? 16 : 8);
  if (large) {
    hdr.writeUInt32BE(1, 0);
    hdr.writeBigUInt64BE(BigInt(bodyLen + 16), 8);
  } else hdr.writeUInt32BE(bodyLen + 8, 0);
  hdr.write(type, 4, 4, 'latin1');
  return hdr;
}

/** Serialise a box from its type and body parts. */
export function makeBox(type: string, ...parts: Buffer[]): Buffer {
  return Buffer.concat([boxHeader(type, parts.reduce((n, p) => n + p.length, 0)), ...parts]);
}

/** Serialise a full box (version and flags, then the body parts). */
export function makeFullBox(type: string, version: number, flags: number, ...body: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE((((version & 0xff) << 24) | (flags & 0xffffff)) >>> 0, 0);
  return makeBox(type, vf, ...body);
}

/** Read an unsigned 32- or 64-bit field; past the buffer, or a 64-bit value past 2^53, throws. */
export function readUint(buf: Buffer, at: number, bytes: 4 | 8, box: string, base = 0): number {
  if (at + bytes > buf.length) fail('box too short for its fields', box, base + at);
  if (bytes === 4) return buf.readUInt32BE(at);
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit value ${v} too large`, box, base + at);
  return Number(v);
}
