import { AppError } from '../lib/errors';
import { audioCodecOf, FLV_AUDIO, FLV_SCRIPT, FLV_VIDEO, isSequenceHeader, videoCodecOf } from '../protocols/flv/codecs';

/**
 * FLV tags → elementary frames, for the media host (host-worker.ts): an RTMP pipeline run by a media host has no
 * flvdemux; the host splits what the service pushes into appsrc "src" (the FLV header, then whole FLV tags) into
 * H.264 access units (appsrc FLV_VIDEO_SRC) and raw AAC frames (FLV_AUDIO_SRC), each with its PTS, and sets each
 * appsrc's caps from the sequence headers (again at a new one: caps change mid-stream). Pure: no GStreamer here.
 */

/** What one FLV tag becomes. Caps come before the frames they describe; `data` is a view into the pushed bytes. */
export type FlvFrame =
  | { readonly kind: 'caps'; readonly track: 'video' | 'audio'; readonly caps: string }
  | { readonly kind: 'frame'; readonly track: 'video' | 'audio'; readonly data: Buffer; readonly ptsNs: number };

/** A malformed or unsupported tag: what was wrong, and what is allowed (coded PEER_FAILED: the publisher sent it). */
export class FlvTagError extends AppError {
  override readonly name = 'FlvTagError';
  constructor(message: string) {
    super('PEER_FAILED', message);
  }
}

const FLV_SIGNATURE = 0x464c56; // "FLV"
const TAG_HEADER = 11;

/** The caps of an H.264 track from its AVCDecoderConfigurationRecord (what flvdemux gives h264parse). */
export function h264Caps(avcC: Buffer): string {
  return `video/x-h264,stream-format=avc,alignment=au,codec_data=(buffer)${avcC.toString('hex')}`;
}

/** The caps of an AAC track from its AudioSpecificConfig (aacparse reads rate and channels from it). */
export function aacCaps(asc: Buffer): string {
  return `audio/mpeg,mpegversion=4,stream-format=raw,framed=true,codec_data=(buffer)${asc.toString('hex')}`;
}

/**
 * The frames in `chunk`: the 13-byte FLV header (ignored) or one or more whole FLV tags, each with or without its
 * 4-byte PreviousTagSize. Script tags and AVC end-of-sequence are skipped; a tag cut short, a filtered (encrypted)
 * tag, a video codec other than H.264 (7), an enhanced-RTMP video tag or an audio format other than AAC (10) throws
 * FlvTagError naming what was found and what is allowed; nothing of that chunk is returned then (the service
 * pushes one tag per chunk).
 * PTS: video = (timestamp + composition time) ms, audio = timestamp ms; a negative PTS is clamped to 0.
 */
export function flvFrames(chunk: Buffer): FlvFrame[] {
  const out: FlvFrame[] = [];
  let o = 0;
  if (chunk.length >= 9 && chunk.readUIntBE(0, 3) === FLV_SIGNATURE) {
    const headerSize = chunk.readUInt32BE(5);
    if (headerSize < 9 || headerSize > chunk.length) throw new FlvTagError(`FLV header of ${chunk.length} bytes says its size is ${headerSize} [allowed: 9 to ${chunk.length}]`);
    o = headerSize;
    // PreviousTagSize0
    if (chunk.length - o >= 4 && chunk.readUInt32BE(o) === 0) o += 4;
  }
  while (o < chunk.length) {
    if (chunk.length - o < TAG_HEADER) throw new FlvTagError(`FLV tag cut short: ${chunk.length - o} bytes left at offset ${o}, a tag header is ${TAG_HEADER}`);
    const type = chunk[o] ?? 0;
    const size = chunk.readUIntBE(o + 1, 3);
    const timestamp = (chunk.readUIntBE(o + 4, 3) | ((chunk[o + 7] ?? 0) << 24)) >>> 0;
    const end = o + TAG_HEADER + size;
    if (end > chunk.length) throw new FlvTagError(`FLV tag of type ${type} cut short: its header says ${size} bytes of data, ${chunk.length - o - TAG_HEADER} are there`);
    const payload = chunk.subarray(o + TAG_HEADER, end);
    if ((type & 0x20) !== 0) throw new FlvTagError(`FLV tag of type ${type} is filtered (encrypted) [allowed: plain audio 8, video 9, script 18]`);
    if (type === FLV_VIDEO) video(payload, timestamp, out);
    else if (type === FLV_AUDIO) audio(payload, timestamp, out);
    else if (type !== FLV_SCRIPT) throw new FlvTagError(`FLV tag type ${type} is not known [allowed: 8 audio, 9 video, 18 script]`);
    o = end;
    // PreviousTagSize, when it is there (and says what it should)
    if (chunk.length - o >= 4 && chunk.readUInt32BE(o) === TAG_HEADER + size) o += 4;
  }
  return out;
}

function video(p: Buffer, timestamp: number, out: FlvFrame[]): void {
  if (p.length === 0) return;
  const b0 = p[0] ?? 0;
  if ((b0 & 0x80) !== 0) throw new FlvTagError(`enhanced-RTMP video tag (first byte 0x${b0.toString(16)}) [allowed: H.264, codec id 7]`);
  const frameType = b0 >> 4;
  const codec = b0 & 0x0f;
  // frame type 5: video info / command frame, no picture
  if (frameType === 5) return;
  if (videoCodecOf(p) !== 'H264') throw new FlvTagError(`FLV video codec id ${codec} [allowed: 7 (H.264)]`);
  if (p.length < 5) throw new FlvTagError(`H.264 FLV video tag of ${p.length} bytes [allowed: 5 or more]`);
  const packetType = p[1] ?? 0;
  if (packetType > 2) throw new FlvTagError(`AVC packet type ${packetType} [allowed: 0 sequence header, 1 NALUs, 2 end of sequence]`);
  if (packetType === 2) return;
  const config = isSequenceHeader(FLV_VIDEO, p);
  trackTag(out, 'video', config, p.subarray(5), timestamp + p.readIntBE(2, 3), h264Caps, 'H.264 sequence header with no AVCDecoderConfigurationRecord');
}

function audio(p: Buffer, timestamp: number, out: FlvFrame[]): void {
  if (p.length === 0) return;
  const format = (p[0] ?? 0) >> 4;
  // enhanced-RTMP audio (format 9) has another layout
  if (format === 9 || audioCodecOf(p) !== 'AAC') throw new FlvTagError(`FLV sound format ${format} [allowed: 10 (AAC)]`);
  if (p.length < 2) throw new FlvTagError('AAC FLV audio tag of 1 byte [allowed: 2 or more]');
  if (p[1] !== 0 && p[1] !== 1) throw new FlvTagError(`AAC packet type ${p[1]} [allowed: 0 AudioSpecificConfig, 1 raw frame]`);
  trackTag(out, 'audio', isSequenceHeader(FLV_AUDIO, p), p.subarray(2), timestamp, aacCaps, 'AAC sequence header with no AudioSpecificConfig');
}

/** A track's tag body after its codec bytes: a decoder configuration becomes caps, anything else (not empty) a frame at `ptsMs`. */
function trackTag(
  out: FlvFrame[],
  track: 'video' | 'audio',
  config: boolean,
  body: Buffer,
  ptsMs: number,
  caps: (config: Buffer) => string,
  noConfig: string,
): void {
  if (config) {
    if (body.length === 0) throw new FlvTagError(noConfig);
    out.push({ kind: 'caps', track, caps: caps(body) });
  } else if (body.length > 0) {
    out.push({ kind: 'frame', track, data: body, ptsNs: Math.max(0, ptsMs) * 1e6 });
  }
}
