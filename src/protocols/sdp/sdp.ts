import { audioCodecOf, type AudioCodec, type Codecs, videoCodecOf, type VideoCodec } from '../codecs';

/** One m=video / m=audio section of an RTSP DESCRIBE answer (its first payload type). */
export interface SdpMedia {
  readonly media: 'video' | 'audio';
  readonly payloadType: number;
  /** as written in a=rtpmap (case kept), or the RFC 3551 name of a static payload type; '' when unknown */
  readonly encodingName: string;
  /** Hz; 0 when unknown */
  readonly clockRate: number;
  readonly channels?: number;
  /** a=fmtp parameters, keys lower-cased */
  readonly fmtp: Record<string, string>;
  /** a=control as written ('' when absent): relative to Content-Base, or absolute */
  readonly control: string;
}

/** RFC 3551 static payload types a camera may send without an a=rtpmap line. */
const STATIC_PT: ReadonlyMap<number, { name: string; clockRate: number; channels?: number }> = new Map([
  [0, { name: 'PCMU', clockRate: 8000, channels: 1 }],
  [3, { name: 'GSM', clockRate: 8000, channels: 1 }],
  [8, { name: 'PCMA', clockRate: 8000, channels: 1 }],
  [9, { name: 'G722', clockRate: 8000, channels: 1 }],
  [10, { name: 'L16', clockRate: 44100, channels: 2 }],
  [11, { name: 'L16', clockRate: 44100, channels: 1 }],
  [14, { name: 'MPA', clockRate: 90000 }],
  [26, { name: 'JPEG', clockRate: 90000 }],
  [32, { name: 'MPV', clockRate: 90000 }],
  [33, { name: 'MP2T', clockRate: 90000 }],
]);

/** Parse the video and audio sections of an SDP; other sections (application, text...) are skipped. */
export function parseSdp(sdp: string): SdpMedia[] {
  interface Section {
    media: 'video' | 'audio' | null;
    pts: number[];
    maps: Map<number, { name: string; clockRate: number; channels?: number }>;
    fmtp: Map<number, Record<string, string>>;
    control: string;
  }
  const sections: Section[] = [];
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      const [kind = '', , , ...fmts] = line.slice(2).split(/\s+/);
      const media = kind === 'video' || kind === 'audio' ? kind : null;
      const pts = fmts.filter((f) => /^\d{1,3}$/.test(f)).map(Number);
      sections.push({ media, pts, maps: new Map(), fmtp: new Map(), control: '' });
      continue;
    }
    const cur = sections[sections.length - 1];
    if (!cur) continue;
    let m: RegExpExecArray | null;
    if ((m = /^a=rtpmap:\s*(\d+)\s+([^/\s]+)(?:\/(\d+))?(?:\/(\d+))?/i.exec(line))) {
      cur.maps.set(Number(m[1]), { name: m[2] ?? '', clockRate: Number(m[3] ?? 0), channels: m[4] ? Number(m[4]) : undefined });
    } else if ((m = /^a=fmtp:\s*(\d+)\s*(.*)$/i.exec(line))) {
      cur.fmtp.set(Number(m[1]), parseFmtp(m[2] ?? ''));
    } else if ((m = /^a=control:\s*(.*)$/i.exec(line))) {
      cur.control = m[1] ?? '';
    }
  }
  const out: SdpMedia[] = [];
  for (const s of sections) {
    const pt = s.pts[0];
    if (s.media === null || pt === undefined) continue;
    // Prefer the first payload type we know how to name; cameras list one, browsers many.
    const known = s.pts.find((p) => s.maps.has(p) || STATIC_PT.has(p)) ?? pt;
    const map = s.maps.get(known) ?? STATIC_PT.get(known);
    const media: SdpMedia = {
      media: s.media,
      payloadType: known,
      encodingName: map?.name ?? '',
      clockRate: map?.clockRate ?? 0,
      fmtp: s.fmtp.get(known) ?? {},
      control: s.control,
    };
    out.push(map?.channels !== undefined ? { ...media, channels: map.channels } : media);
  }
  return out;
}

/** "a=b; c=d" → { a: 'b', c: 'd' } (keys lower-cased, values kept; '=' inside values such as base64 kept). */
function parseFmtp(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (key) out[key] = eq < 0 ? '' : part.slice(eq + 1).trim();
  }
  return out;
}

/** The first recordable video and audio codec of an SDP's sections. */
export function sdpCodecs(media: readonly SdpMedia[]): Codecs {
  let video: VideoCodec | null = null;
  let audio: AudioCodec | null = null;
  for (const m of media) {
    if (m.media === 'video') video ??= videoCodecOf(m.encodingName);
    else audio ??= audioCodecOf(m.encodingName);
  }
  return { video, audio };
}
