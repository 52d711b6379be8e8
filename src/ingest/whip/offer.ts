import { AppError } from '../../lib/errors';

/** One codec of an SDP media section (a=rtpmap + a=fmtp). */
export interface SdpCodec {
  readonly payloadType: number;
  /** encoding name as written, e.g. VP8, H264, opus */
  readonly name: string;
  readonly clockRate: number;
  readonly channels?: number;
  /** a=fmtp parameters, '' when none */
  readonly fmtp: string;
}

/** One m= section of an offer. */
export interface SdpMedia {
  readonly kind: string;
  readonly port: number;
  readonly direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  readonly codecs: readonly SdpCodec[];
  /** a=bundle-only (RFC 8843): port 0, yet part of the bundle (webrtcbin's max-bundle offers) */
  readonly bundleOnly: boolean;
  /** a=mid, '' when none */
  readonly mid: string;
}

/** What an offer brings that we can take: the codecs we accept per kind, in the publisher's order. */
export interface OfferPlan {
  readonly media: readonly SdpMedia[];
  /** accepted video codecs of the first sending video section (VP8 / H264), publisher's order */
  readonly video: readonly SdpCodec[];
  /** accepted audio codecs of the first sending audio section (Opus), publisher's order */
  readonly audio: readonly SdpCodec[];
  /** the sending m-lines that will not be recorded, each with why (logged, and shown in find_all) */
  readonly rejected: readonly string[];
}

/** What we accept, for error messages. */
export const ACCEPTED_CODECS = 'VP8 or H.264 video, Opus audio';

const AUX = new Set(['rtx', 'red', 'ulpfec', 'flexfec-03', 'cn', 'telephone-event']);

/** Parse the m= sections of an SDP; null when the text is not an SDP. */
export function parseSdpMedia(sdp: string): SdpMedia[] | null {
  const lines = sdp.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines[0] !== 'v=0') return null;
  interface Section { kind: string; port: number; pts: number[]; direction: SdpMedia['direction']; maps: Map<number, SdpCodec>; fmtp: Map<number, string>; bundleOnly: boolean; mid: string }
  const sections: Section[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const [kind = '', port = '0', , ...pts] = line.slice(2).split(/\s+/);
      sections.push({ kind, port: Number(port), pts: pts.map(Number).filter(Number.isInteger), direction: 'sendrecv', maps: new Map(), fmtp: new Map(), bundleOnly: false, mid: '' });
      continue;
    }
    const cur = sections[sections.length - 1];
    if (!cur) continue;
    if (line === 'a=sendrecv' || line === 'a=sendonly' || line === 'a=recvonly' || line === 'a=inactive') {
      cur.direction = line.slice(2) as SdpMedia['direction'];
    } else if (line === 'a=bundle-only') {
      cur.bundleOnly = true;
    } else if (line.startsWith('a=mid:')) {
      cur.mid = line.slice(6).trim();
    } else if (line.startsWith('a=rtpmap:')) {
      const m = /^a=rtpmap:(\d+)\s+([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(line);
      if (m) {
        const pt = Number(m[1]);
        cur.maps.set(pt, { payloadType: pt, name: m[2] ?? '', clockRate: Number(m[3]), channels: m[4] ? Number(m[4]) : undefined, fmtp: '' });
      }
    } else if (line.startsWith('a=fmtp:')) {
      const m = /^a=fmtp:(\d+)\s+(.*)$/.exec(line);
      if (m) cur.fmtp.set(Number(m[1]), m[2] ?? '');
    }
  }
  if (sections.length === 0) return null;
  return sections.map((s) => ({
    kind: s.kind,
    port: s.port,
    direction: s.direction,
    bundleOnly: s.bundleOnly,
    mid: s.mid,
    codecs: s.pts
      .map((pt) => s.maps.get(pt) ?? staticCodec(pt))
      .filter((c): c is SdpCodec => c !== null)
      .map((c) => ({ ...c, fmtp: s.fmtp.get(c.payloadType) ?? '' })),
  }));
}

/** RFC 3551 static payload types a sender may use without a=rtpmap. */
function staticCodec(pt: number): SdpCodec | null {
  if (pt === 0) return { payloadType: 0, name: 'PCMU', clockRate: 8000, channels: 1, fmtp: '' };
  if (pt === 8) return { payloadType: 8, name: 'PCMA', clockRate: 8000, channels: 1, fmtp: '' };
  if (pt === 9) return { payloadType: 9, name: 'G722', clockRate: 8000, channels: 1, fmtp: '' };
  return null;
}

/** True for the codecs we record. */
export function isAcceptedCodec(kind: string, c: SdpCodec): boolean {
  const n = c.name.toUpperCase();
  if (kind === 'video') return c.clockRate === 90000 && (n === 'VP8' || n === 'H264');
  if (kind === 'audio') return n === 'OPUS' && c.clockRate === 48000;
  return false;
}

/** A section that sends media: a port, or port 0 with a=bundle-only (it rides on the bundle's transport). */
function sends(m: SdpMedia): boolean {
  return (m.port !== 0 || m.bundleOnly) && (m.direction === 'sendonly' || m.direction === 'sendrecv');
}

/** How a section is named in warnings: kind and mid. */
function sectionName(m: SdpMedia, i: number): string {
  return `${m.kind} m-line ${i}${m.mid ? ` (mid ${m.mid})` : ''}`;
}

/** Validate a WHIP offer: throws AppError BAD_REQUEST naming what it had and what we accept. */
export function planOffer(sdp: string): OfferPlan {
  if (typeof sdp !== 'string' || sdp.length === 0) throw new AppError('BAD_REQUEST', 'the WHIP offer is empty: POST an SDP offer (Content-Type: application/sdp)');
  const media = parseSdpMedia(sdp);
  if (!media) throw new AppError('BAD_REQUEST', 'the WHIP offer is not an SDP (it must start with "v=0" and have m= sections)');
  const av = media.filter((m) => m.kind === 'video' || m.kind === 'audio');
  if (av.length === 0) {
    throw new AppError('BAD_REQUEST', `the WHIP offer has no audio or video section (it has: ${media.map((m) => m.kind).join(', ')}); accepted: ${ACCEPTED_CODECS}`);
  }
  const sending = av.filter(sends);
  if (sending.length === 0) throw new AppError('BAD_REQUEST', 'the WHIP offer sends no media (every audio/video section is recvonly, inactive or port 0)');
  const firstVideo = sending.find((m) => m.kind === 'video');
  const firstAudio = sending.find((m) => m.kind === 'audio');
  const video = firstVideo ? firstVideo.codecs.filter((c) => isAcceptedCodec('video', c)) : [];
  const audio = firstAudio ? firstAudio.codecs.filter((c) => isAcceptedCodec('audio', c)) : [];
  if (video.length === 0 && audio.length === 0) {
    const had = sending
      .map((m) => `${m.kind} [${[...new Set(m.codecs.filter((c) => !AUX.has(c.name.toLowerCase())).map((c) => c.name))].join(', ') || 'no codec'}]`)
      .join(', ');
    throw new AppError('BAD_REQUEST', `the WHIP offer has no codec we accept [offered: ${had}]; accepted: ${ACCEPTED_CODECS}`);
  }
  const rejected: string[] = [];
  media.forEach((m, i) => {
    if (!sends(m)) return;
    const offered = [...new Set(m.codecs.filter((c) => !AUX.has(c.name.toLowerCase())).map((c) => c.name))].join(', ') || 'no codec';
    if (m.kind !== 'video' && m.kind !== 'audio') rejected.push(`${sectionName(m, i)}: not audio or video`);
    else if (m !== firstVideo && m !== firstAudio) rejected.push(`${sectionName(m, i)}: only the first ${m.kind} section is recorded`);
    else if ((m === firstVideo ? video : audio).length === 0) rejected.push(`${sectionName(m, i)}: codec ${offered} not supported [accepted: ${ACCEPTED_CODECS}]`);
  });
  return { media, video, audio, rejected };
}

/** H.264 fmtp parameters as a map (keys lower-cased). */
export function fmtpParams(fmtp: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of fmtp.split(';')) {
    const [k, v] = part.split('=');
    if (k && v !== undefined) out.set(k.trim().toLowerCase(), v.trim());
  }
  return out;
}

/**
 * The offer with every `a=bundle-only` m-line given the port of the first m-line that has one (and the attribute
 * dropped): RFC 8843 bundle-only sections ride on the bundle's transport, but werift takes port 0 for "rejected"
 * and answered webrtcbin's max-bundle offers with video only. Line endings are kept.
 */
export function acceptBundleOnly(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(/\r?\n/);
  const port = lines.map((l) => /^m=\S+ (\d+) /.exec(l)?.[1]).find((p) => p !== undefined && p !== '0');
  if (!port) return sdp;
  const out: string[] = [];
  let start = -1;
  const flush = (end: number) => {
    if (start < 0) return;
    const section = out.slice(start, end);
    if (section.includes('a=bundle-only')) {
      out.splice(start, end - start, ...section.filter((l) => l !== 'a=bundle-only').map((l, i) => (i === 0 ? l.replace(/^(m=\S+) 0 /, `$1 ${port} `) : l)));
    }
  };
  for (const l of lines) {
    if (l.startsWith('m=')) {
      flush(out.length);
      start = out.length;
    }
    out.push(l);
  }
  flush(out.length);
  return out.join(eol);
}
