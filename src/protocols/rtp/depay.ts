/**
 * RTP depayloaders for what IP cameras send, in Node: H.264 (RFC 6184), H.265 (RFC 7798), AAC as MPEG4-GENERIC
 * (RFC 3640, AAC-hbr/lbr) and G.711. Each turns packets into access units (one video frame, one audio frame or
 * packet) stamped with the packet's RTP timestamp; RtpTimeline turns those into nanoseconds. Over RTSP-over-TCP
 * packets arrive in order and none is lost, but a gap in sequence numbers (a camera that drops) is handled: the
 * damaged frame is dropped, never glued to the next one.
 */
import { AacDepay, parseAacConfig } from './aac-depay';
import type { AccessUnit, DepayOptions, Depayloader, RtpFormat } from './depayloader';
import type { RtpPacket } from './packet';
import { AppError } from '../../lib/errors';

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** a frame larger than this is dropped as damaged (a 4K keyframe is ~1-2 MB) */
const MAX_FRAME_BYTES = 32 * 1024 * 1024;

/**
 * H.264 / H.265 in common: frames from NAL units, parameter sets kept and put before every keyframe that lacks them.
 * A frame is assembled in one growing buffer, reused from frame to frame (start code + NAL unit, in order; an FU
 * is written in place as its fragments come): each byte is copied once on arrival, and once more into the frame's
 * own Buffer unless the frame is lent (DepayOptions), instead of per read, per FU and per frame.
 */
abstract class VideoDepay implements Depayloader {
  abstract readonly caps: string;
  private asm = Buffer.allocUnsafe(64 * 1024);
  private asmLen = 0;
  /** where each complete NAL unit of the frame so far is in asm (after its start code) */
  private nals: { start: number; end: number }[] = [];
  private ts = 0;
  /** where the FU in progress starts in asm (its start code), -1: none */
  private fuAt = -1;
  private lastSeq = -1;
  private damaged = false;
  private seenKey = false;

  /** latest parameter sets by NAL type (SDP sprop first, then in-band) */
  protected readonly params = new Map<number, Buffer>();
  private readonly lend: boolean;

  /** `spropKeys`: the fmtp parameters that carry parameter sets (base64, comma-separated), in order */
  constructor(fmtp: Readonly<Record<string, string>>, o: DepayOptions, spropKeys: readonly string[]) {
    this.lend = o.lend ?? false;
    for (const k of spropKeys) this.spropInto(fmtp[k]);
  }

  push(p: RtpPacket): AccessUnit[] {
    const out: AccessUnit[] = [];
    // a frame in progress may be only an FU so far: a new timestamp ends it too (then a lost FU end costs one frame, not two)
    const inFrame = this.nals.length > 0 || this.fuAt >= 0;
    if (this.lastSeq >= 0 && p.seq !== ((this.lastSeq + 1) & 0xffff)) {
      // a lost packet: the frame in progress is incomplete
      this.dropFu();
      this.damaged = true;
    }
    this.lastSeq = p.seq;
    // this frame's buffer is written again below (this packet's data): it cannot be lent
    if (inFrame && p.timestamp !== this.ts) this.flush(out, false);
    if (this.nals.length === 0 && this.fuAt < 0) this.ts = p.timestamp;
    this.depay(p.payload);
    if (p.marker) this.flush(out, this.lend);
    return out;
  }

  /** Split one packet's payload into NAL units (single, aggregation, fragmentation). */
  protected abstract depay(payload: Buffer): void;
  protected abstract isKey(nalType: number): boolean;
  protected abstract nalType(nal: Buffer): number;
  /** the parameter-set NAL types, in the order they go before a keyframe */
  protected abstract readonly paramTypes: readonly number[];
  /** the access unit delimiter's NAL type */
  protected abstract readonly audType: number;

  protected addNal(nal: Buffer): void {
    if (nal.length === 0) return;
    // a complete NAL unit never lands inside an FU in progress (whose end was lost): that FU goes
    this.dropFu();
    this.write(START_CODE);
    const start = this.asmLen;
    if (this.write(nal)) this.nals.push({ start, end: this.asmLen });
  }

  /** Append to the frame being assembled; false (and the frame marked damaged) past MAX_FRAME_BYTES. */
  private write(b: Buffer): boolean {
    const need = this.asmLen + b.length;
    if (need > MAX_FRAME_BYTES) {
      this.damaged = true;
      return false;
    }
    if (need > this.asm.length) {
      const bigger = Buffer.allocUnsafe(Math.min(MAX_FRAME_BYTES, Math.max(need, this.asm.length * 2)));
      this.asm.copy(bigger, 0, 0, this.asmLen);
      this.asm = bigger;
    }
    b.copy(this.asm, this.asmLen);
    this.asmLen = need;
    return true;
  }

  /** Forget an FU in progress (its end or a middle part was lost): its bytes are the tail of asm. */
  private dropFu(): void {
    if (this.fuAt < 0) return;
    this.asmLen = this.fuAt;
    this.fuAt = -1;
  }

  /** An aggregation packet (H.264 STAP-A, H.265 AP): from `off`, 16-bit size + NAL unit, repeated. */
  protected aggregated(b: Buffer, off: number): void {
    // every pass consumes at least 2 bytes
    while (off + 2 <= b.length) {
      const size = b.readUInt16BE(off);
      off += 2;
      if (off + size > b.length) return;
      this.addNal(b.subarray(off, off + size));
      off += size;
    }
  }

  protected fuStart(header: Buffer, first: Buffer): void {
    this.dropFu(); // a new start while one is open: the open one lost its end
    const at = this.asmLen;
    if (this.write(START_CODE) && this.write(header) && this.write(first)) this.fuAt = at;
    else this.asmLen = at;
  }

  protected fuPart(part: Buffer, end: boolean): void {
    if (this.fuAt < 0) return; // its start was lost
    if (!this.write(part)) {
      this.dropFu();
      return;
    }
    if (end) {
      this.nals.push({ start: this.fuAt + START_CODE.length, end: this.asmLen });
      this.fuAt = -1;
    }
  }

  /** End the frame in progress; `lend`: it may leave as a view (nothing is written into asm before the caller reads it). */
  private flush(out: AccessUnit[], lend: boolean): void {
    const spans = this.nals;
    this.nals = [];
    this.dropFu();
    // the complete NAL units are contiguous from 0 (an FU left open was the tail, dropped above)
    const used = this.asmLen;
    this.asmLen = 0;
    const damaged = this.damaged;
    this.damaged = false;
    if (spans.length === 0 || damaged) return;
    const nals = spans.map((s) => this.asm.subarray(s.start, s.end)); // views, valid until this returns
    let key = false;
    const types = new Set<number>();
    for (const n of nals) {
      const t = this.nalType(n);
      types.add(t);
      if (this.paramTypes.includes(t)) this.params.set(t, Buffer.from(n));
      if (this.isKey(t)) key = true;
    }
    // nothing before the first keyframe: a file starts decodable
    if (!key && !this.seenKey) return;
    this.seenKey = true;
    const missing = key ? this.paramTypes.filter((t) => !types.has(t) && this.params.has(t)) : [];
    if (missing.length === 0) {
      const frame = this.asm.subarray(0, used);
      out.push({ data: lend ? frame : Buffer.from(frame), rtpTime: this.ts, key });
      return;
    }
    // an access unit delimiter stays first; the parameter sets go right after it
    const cut = this.nalType(nals[0] ?? Buffer.alloc(1)) === this.audType ? (spans[0]?.end ?? 0) : 0;
    const parts: Buffer[] = [this.asm.subarray(0, cut)];
    for (const t of missing) parts.push(START_CODE, this.params.get(t) ?? Buffer.alloc(0));
    parts.push(this.asm.subarray(cut, used));
    out.push({ data: Buffer.concat(parts), rtpTime: this.ts, key });
  }

  private spropInto(base64List: string | undefined): void {
    for (const b64 of (base64List ?? '').split(',')) {
      const s = b64.trim();
      if (!s) continue;
      const nal = Buffer.from(s, 'base64');
      if (nal.length > 1) this.params.set(this.nalType(nal), nal);
    }
  }
}

/** H.264, packetization-mode 0 or 1 (single NAL, STAP-A, FU-A). */
export class H264Depay extends VideoDepay {
  readonly caps = 'video/x-h264,stream-format=byte-stream,alignment=au';
  protected readonly paramTypes = [7, 8];
  protected readonly audType = 9;

  constructor(fmtp: Readonly<Record<string, string>> = {}, o: DepayOptions = {}) {
    super(fmtp, o, ['sprop-parameter-sets']);
  }

  protected nalType(nal: Buffer): number {
    return (nal[0] ?? 0) & 0x1f;
  }

  protected isKey(t: number): boolean {
    return t === 5;
  }

  protected depay(b: Buffer): void {
    if (b.length < 1) return;
    const type = (b[0] ?? 0) & 0x1f;
    if (type >= 1 && type <= 23) {
      this.addNal(b);
    } else if (type === 24) {
      this.aggregated(b, 1); // STAP-A
    } else if (type === 28 && b.length > 2) {
      const fu = b[1] ?? 0;
      const data = b.subarray(2);
      if (fu & 0x80) this.fuStart(Buffer.from([((b[0] ?? 0) & 0xe0) | (fu & 0x1f)]), data);
      else this.fuPart(data, (fu & 0x40) !== 0);
    }
    // STAP-B, MTAP, FU-B (interleaved mode) are not sent by cameras over RTSP: ignored
  }
}

/** H.265 without DONL (sprop-max-don-diff 0, what cameras send): single NAL, AP, FU. */
export class H265Depay extends VideoDepay {
  readonly caps = 'video/x-h265,stream-format=byte-stream,alignment=au';
  protected readonly paramTypes = [32, 33, 34];
  protected readonly audType = 35;

  constructor(fmtp: Readonly<Record<string, string>> = {}, o: DepayOptions = {}) {
    super(fmtp, o, ['sprop-vps', 'sprop-sps', 'sprop-pps']);
  }

  protected nalType(nal: Buffer): number {
    return ((nal[0] ?? 0) >> 1) & 0x3f;
  }

  protected isKey(t: number): boolean {
    return t >= 16 && t <= 21;
  }

  protected depay(b: Buffer): void {
    if (b.length < 3) return;
    const type = ((b[0] ?? 0) >> 1) & 0x3f;
    if (type < 48) {
      this.addNal(b);
    } else if (type === 48) {
      this.aggregated(b, 2); // AP
    } else if (type === 49 && b.length > 3) {
      const fu = b[2] ?? 0;
      const data = b.subarray(3);
      if (fu & 0x80) this.fuStart(Buffer.from([((b[0] ?? 0) & 0x81) | ((fu & 0x3f) << 1), b[1] ?? 0]), data);
      else this.fuPart(data, (fu & 0x40) !== 0);
    }
  }
}

/** G.711 A-law / µ-law: each packet's payload is one unit. */
export class G711Depay implements Depayloader {
  readonly caps: string;

  constructor(law: 'alaw' | 'mulaw', rate: number, channels: number) {
    this.caps = `audio/x-${law},rate=${rate},channels=${channels}`;
  }

  push(p: RtpPacket): AccessUnit[] {
    return p.payload.length > 0 ? [{ data: Buffer.from(p.payload), rtpTime: p.timestamp, key: true }] : [];
  }
}

/** Why edgerec's own RTSP client cannot take this track (null: it can). */
export function unsupportedTrack(m: RtpFormat): string | null {
  const name = m.encodingName.toUpperCase();
  if (m.clockRate <= 0) return `${m.media} track ${name || `PT ${m.payloadType}`} has no clock rate`;
  switch (name) {
    case 'H264':
      return Number(m.fmtp['packetization-mode'] ?? 0) <= 1 ? null : 'H.264 interleaved packetization (mode 2)';
    case 'H265':
    case 'HEVC':
      return Number(m.fmtp['sprop-max-don-diff'] ?? 0) === 0 ? null : 'H.265 with decoding order numbers (sprop-max-don-diff > 0)';
    case 'MPEG4-GENERIC': {
      const c = parseAacConfig(m.fmtp.config ?? '');
      if (!c) return `AAC track without a usable config (${m.fmtp.config ?? 'absent'})`;
      if (c.objectType < 1 || c.objectType > 4) return `AAC object type ${c.objectType} (ADTS carries 1-4)`;
      const mode = (m.fmtp.mode ?? '').toLowerCase();
      return mode === 'aac-hbr' || mode === 'aac-lbr' || m.fmtp.sizelength ? null : `MPEG4-GENERIC mode ${mode || 'absent'}`;
    }
    case 'PCMA':
    case 'PCMU':
      return null;
    default:
      return `${m.media} codec ${name || `PT ${m.payloadType}`}`;
  }
}

/** A depayloader for a track unsupportedTrack() accepts. */
export function depayloaderFor(m: RtpFormat, o: DepayOptions = {}): Depayloader {
  const name = m.encodingName.toUpperCase();
  switch (name) {
    case 'H264':
      return new H264Depay(m.fmtp, o);
    case 'H265':
    case 'HEVC':
      return new H265Depay(m.fmtp, o);
    case 'MPEG4-GENERIC':
      return new AacDepay(m.fmtp);
    case 'PCMA':
    case 'PCMU':
      return new G711Depay(name === 'PCMA' ? 'alaw' : 'mulaw', m.clockRate, m.channels ?? 1);
    default:
      throw new AppError('PEER_FAILED', `no depayloader for ${m.media} codec ${name}`);
  }
}
