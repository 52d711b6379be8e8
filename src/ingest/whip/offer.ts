import { AppError } from '../../lib/errors';
import { parseFmtp, parseSdpSections, type SdpFormat, type SdpSection } from '../../protocols/sdp/sdp';

/** One codec of an offer's media section (a=rtpmap + a=fmtp). */
export type SdpCodec = SdpFormat;

/** One m= section of an offer: its codecs are the payload types with a name, in the m= order. */
export interface SdpMedia extends Omit<SdpSection, 'formats' | 'control'> {
  readonly codecs: readonly SdpCodec[];
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

/** The m= sections of an offer (the one SDP parser); null when the text is not an SDP. */
export function parseSdpMedia(sdp: string): SdpMedia[] | null {
  const first = sdp.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '');
  if (first !== 'v=0') return null;
  const sections = parseSdpSections(sdp);
  if (sections.length === 0) return null;
  return sections.map((m) => ({ kind: m.kind, port: m.port, direction: m.direction, bundleOnly: m.bundleOnly, mid: m.mid, codecs: m.formats.filter((f) => f.name !== '') }));
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
  return new Map(Object.entries(parseFmtp(fmtp)));
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
