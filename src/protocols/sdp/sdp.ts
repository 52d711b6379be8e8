import type { RtpFormat } from '../rtp/depayloader';
import { audioCodecOf, type AudioCodec, type Codecs, videoCodecOf, type VideoCodec } from '../codecs';

/** One m=video / m=audio section as an RTSP client sees it: its first payload type we can name, and its a=control. */
export interface SdpMedia extends RtpFormat {
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

/** One payload type of an m= section: its a=rtpmap (or the RFC 3551 static type) and a=fmtp. */
export interface SdpFormat {
  readonly payloadType: number;
  /** encoding name as written (case kept; compare it case-insensitively), e.g. VP8, H264, opus; '' when unknown */
  readonly name: string;
  /** Hz; 0 when unknown */
  readonly clockRate: number;
  readonly channels?: number;
  /** a=fmtp parameters as written, '' when none (parseFmtp() reads them) */
  readonly fmtp: string;
}

/** One m= section as written. */
export interface SdpSection {
  /** video, audio, application... */
  readonly kind: string;
  readonly port: number;
  readonly direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  /** every payload type of the m= line, in its order */
  readonly formats: readonly SdpFormat[];
  /** a=bundle-only (RFC 8843): port 0, yet part of the bundle (webrtcbin's max-bundle offers) */
  readonly bundleOnly: boolean;
  /** a=mid, '' when none */
  readonly mid: string;
  /** a=control as written, '' when absent */
  readonly control: string;
}

/**
 * The one SDP parser (RFC 4566): the m= sections with their attributes; session-level lines are skipped.
 * Attribute names are case-sensitive (RFC 4566 §5.13); encoding names keep their case (they are compared
 * case-insensitively by their users, RFC 4855 §3).
 */
export function parseSdpSections(sdp: string): SdpSection[] {
  return parseSdpSession(sdp).media;
}

/** An SDP's session-level a=control ('' when absent) and its m= sections (parseSdpSections). */
export function parseSdpSession(sdp: string): { readonly control: string; readonly media: SdpSection[] } {
  interface Section {
    kind: string;
    port: number;
    pts: number[];
    direction: SdpSection['direction'];
    maps: Map<number, { name: string; clockRate: number; channels?: number }>;
    fmtp: Map<number, string>;
    bundleOnly: boolean;
    mid: string;
    control: string;
  }
  const sections: Section[] = [];
  let sessionControl: string | null = null;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      const [kind = '', port = '0', , ...fmts] = line.slice(2).split(/\s+/);
      const pts = fmts.filter((f) => /^\d{1,3}$/.test(f)).map(Number);
      sections.push({ kind, port: Number(port), pts, direction: 'sendrecv', maps: new Map(), fmtp: new Map(), bundleOnly: false, mid: '', control: '' });
      continue;
    }
    const cur = sections[sections.length - 1];
    let m: RegExpExecArray | null;
    if (!cur) {
      if (sessionControl === null && (m = /^a=control:\s*(.*)$/.exec(line))) sessionControl = m[1] ?? '';
      continue;
    }
    if (line === 'a=sendrecv' || line === 'a=sendonly' || line === 'a=recvonly' || line === 'a=inactive') {
      cur.direction = line.slice(2) as SdpSection['direction'];
    } else if (line === 'a=bundle-only') {
      cur.bundleOnly = true;
    } else if (line.startsWith('a=mid:')) {
      cur.mid = line.slice(6).trim();
    } else if ((m = /^a=rtpmap:\s*(\d+)\s+([^/\s]+)(?:\/(\d+))?(?:\/(\d+))?/.exec(line))) {
      cur.maps.set(Number(m[1]), { name: m[2] ?? '', clockRate: Number(m[3] ?? 0), channels: m[4] ? Number(m[4]) : undefined });
    } else if ((m = /^a=fmtp:\s*(\d+)\s*(.*)$/.exec(line))) {
      cur.fmtp.set(Number(m[1]), m[2] ?? '');
    } else if ((m = /^a=control:\s*(.*)$/.exec(line))) {
      cur.control = m[1] ?? '';
    }
  }
  const media = sections.map((s) => ({
    kind: s.kind,
    port: s.port,
    direction: s.direction,
    bundleOnly: s.bundleOnly,
    mid: s.mid,
    control: s.control,
    formats: s.pts.map((pt) => {
      const map = s.maps.get(pt) ?? STATIC_PT.get(pt);
      const f: SdpFormat = { payloadType: pt, name: map?.name ?? '', clockRate: map?.clockRate ?? 0, fmtp: s.fmtp.get(pt) ?? '' };
      return map?.channels !== undefined ? { ...f, channels: map.channels } : f;
    }),
  }));
  return { control: sessionControl ?? '', media };
}

/** The video and audio sections of an SDP, each by its first payload type we can name (what an RTSP client sets up). */
export function parseSdp(sdp: string): SdpMedia[] {
  const out: SdpMedia[] = [];
  for (const s of parseSdpSections(sdp)) {
    if (s.kind !== 'video' && s.kind !== 'audio') continue;
    // Prefer the first payload type we know how to name; cameras list one, browsers many.
    const f = s.formats.find((x) => x.name !== '') ?? s.formats[0];
    if (f === undefined) continue;
    const media: SdpMedia = {
      media: s.kind,
      payloadType: f.payloadType,
      encodingName: f.name,
      clockRate: f.clockRate,
      fmtp: parseFmtp(f.fmtp),
      control: s.control,
    };
    out.push(f.channels !== undefined ? { ...media, channels: f.channels } : media);
  }
  return out;
}

/** "a=b; c=d" → { a: 'b', c: 'd' } (keys lower-cased, values kept; '=' inside values such as base64 kept). */
export function parseFmtp(text: string): Record<string, string> {
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
