/**
 * What an FLV tag's first payload bytes say (legacy and enhanced RTMP): which codec, whether it is a decoder
 * configuration (sequence header) or a keyframe. The one place edgerec reads FLV codec ids: the RTMP ingest
 * (src/ingest/rtmp) and the media host's FLV split (src/pipeline/flv-frames.ts) both ask here.
 */

import type { AudioCodec, VideoCodec } from '../codecs';

/** FLV tag types (the first byte of a tag; RTMP message types 8, 9, 18). */
export const FLV_AUDIO = 8;
export const FLV_VIDEO = 9;
export const FLV_SCRIPT = 18;

/** Whether an audio (8) or video (9) payload is a decoder configuration (AAC/AVC/HEVC sequence header, enhanced-RTMP SequenceStart). */
export function isSequenceHeader(type: number, payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined) return false;
  if (type === FLV_VIDEO) {
    if (b0 & 0x80) return (b0 & 0x0f) === 0; // enhanced RTMP: PacketTypeSequenceStart
    const id = b0 & 0x0f;
    return (id === 7 || id === 12) && payload[1] === 0;
  }
  if (type === FLV_AUDIO) {
    const format = b0 >> 4;
    if (format === 9) return (b0 & 0x0f) === 0; // enhanced RTMP audio: SequenceStart
    return format === 10 && payload[1] === 0;
  }
  return false;
}

/** Whether a video (9) payload is a keyframe that is not a decoder configuration (legacy and enhanced RTMP: frame type 1). */
export function isKeyframe(type: number, payload: Buffer): boolean {
  const b0 = payload[0];
  if (type !== FLV_VIDEO || b0 === undefined || payload.length < 2) return false;
  return ((b0 >> 4) & 0x07) === 1 && !isSequenceHeader(type, payload);
}

/** The video codec of a video tag payload; null when it is one we do not record (Sorenson, VP6, AV1, ...). */
export function videoCodecOf(payload: Buffer): VideoCodec | null {
  const b0 = payload[0] ?? 0;
  if (b0 & 0x80) {
    const fourcc = payload.toString('latin1', 1, 5);
    return fourcc === 'avc1' ? 'H264' : fourcc === 'hvc1' ? 'H265' : fourcc === 'vp09' ? 'VP9' : null;
  }
  const id = b0 & 0x0f;
  return id === 7 ? 'H264' : id === 12 ? 'H265' : null;
}

/** The audio codec of an audio tag payload; null when it is one we do not record (Speex, Nellymoser, ...). */
export function audioCodecOf(payload: Buffer): AudioCodec | null {
  const b0 = payload[0] ?? 0;
  const format = b0 >> 4;
  if (format === 9) {
    const fourcc = payload.toString('latin1', 1, 5);
    return fourcc === 'mp4a' ? 'AAC' : fourcc === 'Opus' ? 'OPUS' : fourcc === '.mp3' ? 'MP3' : null;
  }
  return format === 10 ? 'AAC' : format === 2 || format === 14 ? 'MP3' : format === 7 ? 'PCMA' : format === 8 ? 'PCMU' : null;
}
