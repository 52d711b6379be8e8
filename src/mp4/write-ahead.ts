/**
 * Write-ahead of a recording's samples, and the recovery that uses it.
 *
 * The muxer (splitmuxsink + mp4mux) holds a GOP until the next keyframe and a fragment until its second is full,
 * so a SIGKILL of the media host loses both. The pipeline also tees every sample, as it enters the muxer, through
 * `gdppay` into `multifilesink` (one sidecar per track, 1 s files, the oldest deleted: a bounded window). A process
 * kill keeps what was written (the page cache survives; only multifilesink's 4 KiB stdio buffer is lost).
 * At recovery the samples after the fMP4's last complete fragment are found in the sidecar (by the bytes of the
 * file's last sample) and appended to the file as one more fragment, so the file ends where the sidecar ends.
 * What the fMP4 already holds is never changed: a damaged or unmatched sidecar appends nothing.
 */
import { open, readdir, readFile, stat, truncate, utimes } from 'node:fs/promises';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Container, OutputSpec } from '../pipeline/types';
import { readFmp4 } from './scan';
import { readFragments, type FragTrack } from './fragments';

/** Track letters in sidecar names: `<prefix>.wal-v-00012`, `<prefix>.wal-a-00003`. */
export type WalTrack = 'v' | 'a';

/** Sidecar file name pattern (multifilesink location) of a pipeline's track; `prefix` is `rec-<uuid>-g<gen>`. */
export function walLocation(dir: string, prefix: string, track: WalTrack): string {
  return join(dir, `${prefix}.wal-${track}-%05d`);
}

const WAL_NAME = /^(rec-[0-9a-f-]{36}-g\d+)\.wal-([va])-(\d{5,})$/;

/** The pipeline prefix (`rec-<uuid>-g<gen>`) of a tmp fragment `rec-<uuid>-g<gen>-00001.mp4`, or null. */
export function walPrefixOf(tmpName: string): string | null {
  const m = /^(rec-[0-9a-f-]{36}-g\d+)-\d{5}\.mp4$/.exec(tmpName);
  return m ? (m[1] ?? null) : null;
}

/** The write-ahead of a pipeline (`OutputSpec.writeAhead`): MP4 with record_write_ahead_seconds > 0, else null. */
export function walSpec(dir: string, prefix: string, container: Container, seconds: number): OutputSpec['writeAhead'] {
  if (container !== 'mp4' || seconds <= 0) return null;
  return { video: walLocation(dir, prefix, 'v'), audio: walLocation(dir, prefix, 'a'), maxFiles: Math.ceil(seconds) };
}

/**
 * The gst-launch branch that writes the sidecar of one track: placed after a `tee`, in the tee's thread (no queue:
 * a write per sample, no extra thread hand-off). `maxFiles` files of 1 s are kept (multifilesink deletes the oldest).
 * `next-file=max-duration` never splits here (the first buffer of a file, gdppay's stream header, has no PTS);
 * `key-frame` does: gdppay's packets carry no delta flag, so each one may start a file, and
 * `min-keyframe-distance` makes that one a second (GStreamer 1.22).
 */
export function walBranch(location: string, maxFiles: number, track: WalTrack): string {
  const q = `"${location.replace(/(["\\])/g, '\\$1')}"`;
  // errorignore: a failed write (a full disk) must not stop the recording's flow; the media host reports the
  // sink's error as a warning (WAL_SINK_PREFIX) instead of ending the pipeline
  return `errorignore convert-to=ok ! gdppay crc-header=true crc-payload=false ! multifilesink name=${WAL_SINK_PREFIX}${track} location=${q} next-file=key-frame min-keyframe-distance=1000000000 max-files=${maxFiles} sync=false async=false`;
}

/** Name prefix of the sidecar sinks: their errors (a full disk) are warnings, the recording goes on without them. */
export const WAL_SINK_PREFIX = 'walsink';

/** One buffer of a sidecar: GStreamer's PTS / DTS in ns (null when unset) and whether it is a keyframe. */
export interface WalRecord {
  readonly pts: bigint | null;
  readonly dts: bigint | null;
  readonly duration: bigint | null;
  readonly sync: boolean;
  readonly data: Buffer;
}

const GDP_HEADER = 62;
const GDP_BUFFER = 1;
const NONE = 0xffffffffffffffffn;
const DELTA_UNIT = 0x2000;
const MAX_PAYLOAD = 64 * 1024 * 1024;

const CRC_TABLE = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** GDP's header CRC (CRC-16/CCITT, init 0xffff, result xor 0xffff) over `buf`. */
export function gdpCrc(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) crc = ((crc << 8) ^ (CRC_TABLE[((crc >> 8) ^ b) & 0xff] ?? 0)) & 0xffff;
  return crc ^ 0xffff;
}

/**
 * The buffers of one GDP sidecar file (caps and events skipped). Reading stops at the first packet that is cut
 * (the kill came mid-write) or damaged (a version, length or header CRC that does not hold): `damaged` says which.
 */
export function readWal(buf: Buffer): { records: WalRecord[]; cut: boolean; damaged: boolean } {
  const records: WalRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + GDP_HEADER > buf.length) return { records, cut: true, damaged: false };
    const major = buf[off];
    const minor = buf[off + 1];
    const flags = buf[off + 2] ?? 0;
    const len = buf.readUInt32BE(off + 6);
    if (major !== 1 || minor !== 0 || len > MAX_PAYLOAD) return { records, cut: false, damaged: true };
    if (flags & 1 && gdpCrc(buf.subarray(off, off + 58)) !== buf.readUInt16BE(off + 58)) return { records, cut: false, damaged: true };
    if (off + GDP_HEADER + len > buf.length) return { records, cut: true, damaged: false };
    if (buf.readUInt16BE(off + 4) === GDP_BUFFER) {
      const t = (at: number): bigint | null => {
        const x = buf.readBigUInt64BE(off + at);
        return x === NONE ? null : x;
      };
      records.push({
        pts: t(10),
        duration: t(18),
        dts: t(44),
        sync: (buf.readUInt16BE(off + 42) & DELTA_UNIT) === 0,
        data: buf.subarray(off + GDP_HEADER, off + GDP_HEADER + len),
      });
    }
    off += GDP_HEADER + len;
  }
  return { records, cut: false, damaged: false };
}

/** A sample to append: decode time and duration in the track's timescale, composition offset, keyframe. */
export interface PlannedSample {
  readonly dts: number;
  readonly dur: number;
  readonly cto: number;
  readonly sync: boolean;
  readonly data: Buffer;
}

/** What the fMP4 holds of one track, as far as the planner needs it. */
export interface TrackTail {
  readonly timescale: number;
  /** decode time after its last sample (media timescale) */
  readonly nextDts: number;
  /** its last samples' bytes, oldest first (at least the very last one) */
  readonly last: readonly Buffer[];
  /** decode time of the last sample in ns of the file's timeline (for choosing among equal-looking matches) */
  readonly lastDtsNs: number;
}

const decodeNs = (r: WalRecord): bigint | null => r.dts ?? r.pts;

/**
 * Where in `records` the file's last sample is: the index of the record equal (bytes) to `tail.last`'s last
 * buffer, with the records before it equal to the buffers before it. Several matches (silence repeats the same
 * audio frame): the one whose sidecar time minus file time is nearest `offsetNs` (the video track's), else the last.
 */
export function findTail(records: readonly WalRecord[], tail: TrackTail, offsetNs: number | null): number {
  const n = tail.last.length;
  let best = -1;
  let bestErr = Infinity;
  for (let i = n - 1; i < records.length; i++) {
    let ok = true;
    for (let k = 0; k < n && ok; k++) ok = records[i - k]?.data.equals(tail.last[n - 1 - k] ?? Buffer.alloc(0)) === true;
    if (!ok) continue;
    const d = decodeNs(records[i] as WalRecord);
    const err = offsetNs === null || d === null ? 0 : Math.abs(Number(d) - tail.lastDtsNs - offsetNs);
    if (err <= bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/**
 * The samples to append after the file's last one (`records[at]`): every later record with a decode time,
 * placed at `tail.nextDts` + its distance from the first of them. The last one lasts its own duration (GStreamer's),
 * else as long as the one before it. Stops at a decode time that goes back (a new segment: not this file's continuation).
 */
export function planAppend(records: readonly WalRecord[], at: number, tail: TrackTail): PlannedSample[] {
  const rest: { r: WalRecord; d: bigint }[] = [];
  let prev = decodeNs(records[at] as WalRecord) ?? -1n;
  for (let i = at + 1; i < records.length; i++) {
    const r = records[i] as WalRecord;
    const d = decodeNs(r);
    if (d === null) continue;
    if (d <= prev) break;
    rest.push({ r, d });
    prev = d;
  }
  if (rest.length === 0) return [];
  const ts = tail.timescale;
  const base = (rest[0] as { d: bigint }).d;
  const toTs = (ns: bigint): number => Math.round((Number(ns) * ts) / 1e9);
  const dts = rest.map(({ d }) => tail.nextDts + toTs(d - base));
  const out: PlannedSample[] = [];
  for (let i = 0; i < rest.length; i++) {
    const { r } = rest[i] as { r: WalRecord };
    const here = dts[i] as number;
    let dur = i + 1 < dts.length ? (dts[i + 1] as number) - here : r.duration !== null ? toTs(r.duration) : out.length ? (out[out.length - 1] as PlannedSample).dur : 0;
    if (dur <= 0) dur = out.length ? (out[out.length - 1] as PlannedSample).dur : 1;
    const cto = r.pts !== null && r.dts !== null ? toTs(r.pts - r.dts) : 0;
    out.push({ dts: here, dur, cto, sync: r.sync, data: r.data });
  }
  return out;
}

function box(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

function u32(...xs: number[]): Buffer {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}

/**
 * One fragment (moof + mdat) holding `tracks`' samples, each track's data contiguous in the mdat.
 * tfhd default-base-is-moof, tfdt version 1, trun version 1 (signed composition offsets) with every field.
 */
export function buildFragment(sequence: number, tracks: readonly { id: number; samples: readonly PlannedSample[] }[]): Buffer {
  const used = tracks.filter((t) => t.samples.length > 0);
  const trunBody = (t: { samples: readonly PlannedSample[] }, dataOffset: number): Buffer => {
    const head = Buffer.alloc(12);
    head.writeUInt32BE((1 << 24) | 0x1 | 0x100 | 0x200 | 0x400 | 0x800, 0);
    head.writeUInt32BE(t.samples.length, 4);
    head.writeInt32BE(dataOffset, 8);
    const per = Buffer.alloc(16 * t.samples.length);
    t.samples.forEach((s, i) => {
      per.writeUInt32BE(s.dur, 16 * i);
      per.writeUInt32BE(s.data.length, 16 * i + 4);
      per.writeUInt32BE(s.sync ? 0x02000000 : 0x01010000, 16 * i + 8);
      per.writeInt32BE(s.cto, 16 * i + 12);
    });
    return Buffer.concat([head, per]);
  };
  const build = (offsets: number[]): Buffer =>
    box(
      'moof',
      box('mfhd', u32(0, sequence)),
      ...used.map((t, k) => {
        const tfdt = Buffer.alloc(12);
        tfdt.writeUInt32BE(0x01000000, 0);
        tfdt.writeBigUInt64BE(BigInt((t.samples[0] as PlannedSample).dts), 4);
        return box('traf', box('tfhd', u32(0x020000, t.id)), box('tfdt', tfdt), box('trun', trunBody(t, offsets[k] ?? 0)));
      }),
    );
  // the moof's size does not depend on the offsets: build once to learn it, then with the real offsets
  const moofLen = build(used.map(() => 0)).length;
  const offsets: number[] = [];
  let at = moofLen + 8;
  for (const t of used) {
    offsets.push(at);
    for (const s of t.samples) at += s.data.length;
  }
  const mdat = box('mdat', ...used.flatMap((t) => t.samples.map((s) => s.data)));
  return Buffer.concat([build(offsets), mdat]);
}

/** A pipeline's sidecar files in `dir`, per track, oldest first. */
export async function walFiles(dir: string, prefix: string): Promise<Record<WalTrack, string[]>> {
  const out: Record<WalTrack, { i: number; p: string }[]> = { v: [], a: [] };
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = WAL_NAME.exec(f);
    if (!m || m[1] !== prefix) continue;
    out[m[2] as WalTrack].push({ i: Number(m[3]), p: join(dir, f) });
  }
  const sorted = (xs: { i: number; p: string }[]): string[] => xs.sort((a, b) => a.i - b.i).map((x) => x.p);
  return { v: sorted(out.v), a: sorted(out.a) };
}

/**
 * Remove a pipeline's sidecar files at once (synchronous: the pipeline has ended and a graceful stop may exit next;
 * a few small files). Returns how many were removed.
 */
export function removeWalSync(dir: string, prefix: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) {
    const m = WAL_NAME.exec(f);
    if (!m || m[1] !== prefix) continue;
    rmSync(join(dir, f), { force: true });
    n++;
  }
  return n;
}

/** Every sidecar file in `dir` (any pipeline). */
export async function allWalFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => WAL_NAME.test(f)).map((f) => join(dir, f));
}

async function readRecords(paths: readonly string[]): Promise<{ records: WalRecord[]; damaged: boolean }> {
  const records: WalRecord[] = [];
  let damaged = false;
  for (const p of paths) {
    const buf = await readFile(p).catch(() => null);
    if (!buf) continue;
    const r = readWal(buf);
    records.push(...r.records);
    if (r.damaged) damaged = true;
  }
  return { records, damaged };
}

function handler(t: FragTrack): string {
  const at = t.trak.indexOf('hdlr', 0, 'latin1');
  return at < 4 || at + 16 > t.trak.length ? '' : t.trak.toString('latin1', at + 12, at + 16);
}

/** What appendWriteAhead did. */
export interface AppendResult {
  /** samples appended per track kind */
  readonly video: number;
  readonly audio: number;
  /** media seconds added (the longer track) */
  readonly seconds: number;
  /** why nothing (or not everything) was appended; empty when all went well */
  readonly notes: readonly string[];
  /** newest sidecar write (epoch ms), the recording's true end; null without sidecar files */
  readonly lastWriteMs: number | null;
}

/**
 * Append to the fragmented MP4 `tmpPath` the samples its muxer had not written yet, from the sidecar of pipeline
 * `prefix` in `dir`. The complete part of the file is kept byte for byte (a cut last fragment is dropped, as the
 * remux would); if no track's last sample is found in the sidecar, the file is left as it is.
 */
export async function appendWriteAhead(tmpPath: string, dir: string, prefix: string): Promise<AppendResult> {
  const notes: string[] = [];
  const files = await walFiles(dir, prefix);
  let lastWriteMs: number | null = null;
  for (const p of [...files.v, ...files.a]) {
    const st = await stat(p).catch(() => null);
    if (st && st.size > 0) lastWriteMs = Math.max(lastWriteMs ?? 0, st.mtimeMs);
  }
  const none = (why: string): AppendResult => ({ video: 0, audio: 0, seconds: 0, notes: [...notes, why], lastWriteMs });
  if (files.v.length === 0 && files.a.length === 0) return none('no sidecar');
  const head = await readFmp4(tmpPath);
  if (head.fragments === 0) return none('the file has no complete fragment to continue');
  const fh = await open(tmpPath, 'r');
  let tracks: FragTrack[];
  try {
    tracks = (await readFragments(fh, head.length)).tracks;
  } finally {
    await fh.close();
  }
  const readLast = async (t: FragTrack, count: number): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    const h = await open(tmpPath, 'r');
    try {
      // walk back through the chunks for the last `count` samples
      let idx = t.size.length - 1;
      for (let c = t.chunks.length - 1; c >= 0 && out.length < count; c--) {
        const ch = t.chunks[c] as FragTrack['chunks'][number];
        let end = ch.src + ch.size;
        for (let k = 0; k < ch.samples && out.length < count; k++, idx--) {
          const size = t.size[idx] ?? 0;
          const b = Buffer.alloc(size);
          await h.read(b, 0, size, end - size);
          out.unshift(b);
          end -= size;
        }
      }
    } finally {
      await h.close();
    }
    return out;
  };
  const kinds: { kind: 'video' | 'audio'; wal: WalTrack; t: FragTrack }[] = [];
  for (const t of tracks) {
    const h = handler(t);
    if (t.size.length === 0) continue;
    if (h === 'vide') kinds.push({ kind: 'video', wal: 'v', t });
    if (h === 'soun') kinds.push({ kind: 'audio', wal: 'a', t });
  }
  let offsetNs: number | null = null;
  const planned: { id: number; kind: 'video' | 'audio'; samples: PlannedSample[] }[] = [];
  for (const { kind, wal, t } of kinds.sort((a, b) => (a.kind === 'video' ? -1 : 1) - (b.kind === 'video' ? -1 : 1))) {
    const { records, damaged } = await readRecords(files[wal]);
    if (damaged) notes.push(`${kind} sidecar damaged; read up to the damage`);
    const last = await readLast(t, Math.min(3, t.size.length));
    const lastDur = t.dur[t.dur.length - 1] ?? 0;
    const tail: TrackTail = { timescale: t.timescale, nextDts: t.nextDts, last, lastDtsNs: ((t.nextDts - lastDur) * 1e9) / t.timescale };
    const at = findTail(records, tail, offsetNs);
    if (at < 0) {
      notes.push(`${kind}: the file's last sample is not in the sidecar (it starts later, or is damaged)`);
      continue;
    }
    const d = decodeNs(records[at] as WalRecord);
    if (kind === 'video' && d !== null) offsetNs = Number(d) - tail.lastDtsNs;
    const samples = planAppend(records, at, tail);
    if (samples.length) planned.push({ id: t.id, kind, samples });
  }
  if (planned.length === 0) return none('nothing after the file\'s last complete fragment');
  const frag = buildFragment(0xffff, planned);
  // drop a cut trailing fragment (the remux would ignore it too), then append ours
  const size = (await stat(tmpPath)).size;
  if (size > head.length) await truncate(tmpPath, head.length);
  const w = await open(tmpPath, 'a');
  try {
    await w.write(frag);
    await w.sync();
  } finally {
    await w.close();
  }
  if (lastWriteMs !== null) await utimes(tmpPath, new Date(), new Date(lastWriteMs)).catch(() => undefined);
  const secs = (k: 'video' | 'audio'): number => {
    const p = planned.find((x) => x.kind === k);
    const t = tracks.find((x) => x.id === p?.id);
    return p && t ? p.samples.reduce((s, x) => s + x.dur, 0) / t.timescale : 0;
  };
  return {
    video: planned.find((p) => p.kind === 'video')?.samples.length ?? 0,
    audio: planned.find((p) => p.kind === 'audio')?.samples.length ?? 0,
    seconds: Math.max(secs('video'), secs('audio')),
    notes,
    lastWriteMs,
  };
}
