/**
 * RTP depayloaders for what IP cameras send, in Node: H.264 (RFC 6184), H.265 (RFC 7798), AAC as MPEG4-GENERIC
 * (RFC 3640, AAC-hbr/lbr) and G.711. Each turns packets into access units (one video frame, one audio frame or
 * packet) stamped with the packet's RTP timestamp; RtpTimeline turns those into nanoseconds. Over RTSP-over-TCP
 * packets arrive in order and none is lost, but a gap in sequence numbers (a camera that drops) is handled: the
 * damaged frame is dropped, never glued to the next one.
 */
import type { SdpMedia } from './sdp';
import { AppError } from '../lib/errors';

/** The fields of one RTP packet (RFC 3550 §5.1) a depayloader needs; payload is a view into the packet. */
export interface RtpPacket {
  readonly payloadType: number;
  readonly marker: boolean;
  readonly seq: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly payload: Buffer;
}

/** Parse an RTP packet; null when it is not RTP version 2 or its header runs past its end. */
export function parseRtp(b: Buffer): RtpPacket | null {
  if (b.length < 12 || (b[0] ?? 0) >> 6 !== 2) return null;
  const b0 = b[0] ?? 0;
  const b1 = b[1] ?? 0;
  let off = 12 + 4 * (b0 & 0x0f);
  if (b0 & 0x10) {
    if (b.length < off + 4) return null;
    off += 4 + 4 * b.readUInt16BE(off + 2);
  }
  let end = b.length;
  if (b0 & 0x20) end -= b[b.length - 1] ?? 0;
  if (off > end) return null;
  return { payloadType: b1 & 0x7f, marker: (b1 & 0x80) !== 0, seq: b.readUInt16BE(2), timestamp: b.readUInt32BE(4), ssrc: b.readUInt32BE(8), payload: b.subarray(off, end) };
}

/** One access unit: a whole video frame in Annex B byte-stream form, or one audio frame. */
export interface AccessUnit {
  readonly data: Buffer;
  /** RTP timestamp of the unit (32-bit, as sent) */
  readonly rtpTime: number;
  /** video: an IDR / IRAP frame (the recording may start here) */
  readonly key: boolean;
}

export interface Depayloader {
  /** the caps of what push() returns, for the appsrc that takes it */
  readonly caps: string;
  /**
   * Feed one packet; returns the units it completes (usually zero or one), each in a Buffer of its own (video
   * with `lend`: a view into the depayloader's frame buffer, valid until the next push()).
   * The packet's payload need only be valid during the call (it may be a view into a reused read buffer):
   * whatever must outlive the call is copied.
   */
  push(p: RtpPacket): AccessUnit[];
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

export interface DepayOptions {
  /**
   * Video frames leave as views into the depayloader's reused frame buffer, valid until the next push(): for a
   * consumer that copies them at once (appsrc's push does), no Buffer is made per frame.
   */
  readonly lend?: boolean;
}

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

  constructor(private readonly lend: boolean) {}
  /** latest parameter sets by NAL type (SDP sprop first, then in-band) */
  protected readonly params = new Map<number, Buffer>();

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

  protected spropInto(base64List: string | undefined): void {
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
    super(o.lend ?? false);
    this.spropInto(fmtp['sprop-parameter-sets']);
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
    super(o.lend ?? false);
    this.spropInto(fmtp['sprop-vps']);
    this.spropInto(fmtp['sprop-sps']);
    this.spropInto(fmtp['sprop-pps']);
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

/** The AudioSpecificConfig fields an ADTS header repeats. */
interface AacConfig {
  readonly objectType: number;
  readonly freqIndex: number;
  readonly channels: number;
}

/** AAC from MPEG4-GENERIC (RFC 3640): AU headers, then the AUs; each AU leaves as one ADTS frame. */
export class AacDepay implements Depayloader {
  readonly caps = 'audio/mpeg,mpegversion=4,stream-format=adts';
  private readonly sizeLength: number;
  private readonly indexLength: number;
  private readonly indexDeltaLength: number;
  private readonly frameSamples: number;
  private readonly config: AacConfig;
  /** an AU split over packets: its size and the parts so far */
  private partial: { size: number; ts: number; parts: Buffer[]; have: number } | null = null;
  private lastSeq = -1;

  constructor(fmtp: Readonly<Record<string, string>>) {
    const n = (k: string, d: number) => (fmtp[k] !== undefined && /^\d+$/.test(fmtp[k] ?? '') ? Number(fmtp[k]) : d);
    this.sizeLength = n('sizelength', 13);
    this.indexLength = n('indexlength', 3);
    this.indexDeltaLength = n('indexdeltalength', 3);
    this.frameSamples = n('constantduration', 1024);
    const c = parseAacConfig(fmtp.config ?? '');
    if (!c) throw new AppError('PEER_FAILED', `AAC track without a usable config in its SDP (config=${fmtp.config ?? 'absent'})`);
    this.config = c;
  }

  push(p: RtpPacket): AccessUnit[] {
    const gap = this.lastSeq >= 0 && p.seq !== ((this.lastSeq + 1) & 0xffff);
    this.lastSeq = p.seq;
    if (gap) this.partial = null;
    const b = p.payload;
    if (b.length < 2) return [];
    const headerBits = b.readUInt16BE(0);
    const headerBytes = Math.ceil(headerBits / 8);
    let data = 2 + headerBytes;
    if (data > b.length) return [];
    const out: AccessUnit[] = [];
    if (this.partial && this.partial.ts === p.timestamp) {
      // the rest of a fragmented AU: one header with the full size, then a part of it
      const part = Buffer.from(b.subarray(data)); // kept past this call: a copy
      this.partial.parts.push(part);
      this.partial.have += part.length;
      if (this.partial.have >= this.partial.size) {
        const au = Buffer.concat(this.partial.parts).subarray(0, this.partial.size);
        out.push({ data: this.adts(au), rtpTime: this.partial.ts, key: true });
        this.partial = null;
      }
      return out;
    }
    this.partial = null;
    let bit = 16;
    let i = 0;
    // each header is at least sizeLength (≥ 1) bits, so at most headerBits passes
    while (bit + this.sizeLength <= 16 + headerBits && i < 64) {
      const size = readBits(b, bit, this.sizeLength);
      bit += this.sizeLength + (i === 0 ? this.indexLength : this.indexDeltaLength);
      const ts = (p.timestamp + i * this.frameSamples) >>> 0;
      if (data + size > b.length) {
        if (i === 0) this.partial = { size, ts, parts: [Buffer.from(b.subarray(data))], have: b.length - data };
        break;
      }
      out.push({ data: this.adts(b.subarray(data, data + size)), rtpTime: ts, key: true });
      data += size;
      i++;
    }
    return out;
  }

  private adts(au: Buffer): Buffer {
    const len = au.length + 7;
    const { objectType, freqIndex, channels } = this.config;
    const h = Buffer.from([
      0xff,
      0xf1, // MPEG-4, layer 0, no CRC
      (((objectType - 1) & 3) << 6) | ((freqIndex & 0xf) << 2) | ((channels >> 2) & 1),
      ((channels & 3) << 6) | ((len >> 11) & 3),
      (len >> 3) & 0xff,
      ((len & 7) << 5) | 0x1f,
      0xfc,
    ]);
    return Buffer.concat([h, au]);
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
export function unsupportedTrack(m: SdpMedia): string | null {
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
export function depayloaderFor(m: SdpMedia, o: DepayOptions = {}): Depayloader {
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

/** AudioSpecificConfig (hex, from the SDP) → the fields ADTS needs; null when too short or of an explicit frequency. */
export function parseAacConfig(hex: string): AacConfig | null {
  if (!/^[0-9a-f]{4,}$/i.test(hex)) return null;
  const b = Buffer.from(hex.length % 2 ? `${hex}0` : hex, 'hex');
  const objectType = readBits(b, 0, 5);
  const freqIndex = readBits(b, 5, 4);
  if (objectType === 31 || freqIndex === 15) return null;
  return { objectType, freqIndex, channels: readBits(b, 9, 4) };
}

function readBits(b: Buffer, bit: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const at = bit + i;
    v = v * 2 + (((b[at >> 3] ?? 0) >> (7 - (at & 7))) & 1);
  }
  return v;
}

/** RTP timestamps of one track → nanoseconds on the pipeline's clock: extended past 32 bits, rebased on jumps. */
export class RtpTimeline {
  private ext = -1;
  private baseExt = 0;
  private baseNs = 0;
  private lastNs = 0;

  constructor(
    private readonly clockRate: number,
    /** a jump larger than this (either way) is a new timeline (camera reboot, new SSRC), not time passing */
    private readonly maxJumpS = 10,
  ) {}

  /** The PTS of rtpTime; `nowNs` (the pipeline's running time at arrival) anchors the first unit and every jump. */
  ptsNs(rtpTime: number, nowNs: number): number {
    if (this.ext < 0) return this.rebase(rtpTime, nowNs);
    const prev32 = this.ext % 2 ** 32;
    let d = rtpTime - prev32;
    if (d > 2 ** 31) d -= 2 ** 32;
    else if (d < -(2 ** 31)) d += 2 ** 32;
    if (Math.abs(d) > this.maxJumpS * this.clockRate) return this.rebase(rtpTime, Math.max(nowNs, this.lastNs + 1));
    this.ext += d;
    const ns = this.baseNs + ((this.ext - this.baseExt) * 1e9) / this.clockRate;
    if (ns > this.lastNs) this.lastNs = ns;
    return Math.max(0, Math.round(ns));
  }

  private rebase(rtpTime: number, nowNs: number): number {
    this.ext = 2 ** 32 + rtpTime; // room below for B-frames before the first unit
    this.baseExt = this.ext;
    this.baseNs = nowNs;
    this.lastNs = nowNs;
    return Math.round(nowNs);
  }
}
