import type { AccessUnit, Depayloader } from './depayloader';
import type { RtpPacket } from './packet';
import { AppError } from '../../lib/errors';

/** The AudioSpecificConfig fields an ADTS header repeats. */
export interface AacConfig {
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
