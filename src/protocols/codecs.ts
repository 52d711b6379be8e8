/** The codecs edgerec records, and how RTP encoding names (SDP a=rtpmap, case-insensitive) name them. */

export type VideoCodec = 'H264' | 'H265' | 'VP8' | 'VP9' | 'MJPEG';
export type AudioCodec = 'AAC' | 'OPUS' | 'PCMA' | 'PCMU' | 'MP3' | 'VORBIS';

export interface Codecs {
  readonly video: VideoCodec | null;
  readonly audio: AudioCodec | null;
}

const VIDEO: Readonly<Record<string, VideoCodec>> = { H264: 'H264', H265: 'H265', HEVC: 'H265', JPEG: 'MJPEG', VP8: 'VP8', VP9: 'VP9' };
const AUDIO: Readonly<Record<string, AudioCodec>> = {
  'MPEG4-GENERIC': 'AAC',
  'MP4A-LATM': 'AAC',
  PCMA: 'PCMA',
  PCMU: 'PCMU',
  OPUS: 'OPUS',
  MPA: 'MP3',
  VORBIS: 'VORBIS',
};

/** The video codec an RTP encoding name (any case) stands for; null when we do not know it. */
export function videoCodecOf(encodingName: string): VideoCodec | null {
  return VIDEO[encodingName.toUpperCase()] ?? null;
}

/** The audio codec an RTP encoding name (any case) stands for; null when we do not know it. */
export function audioCodecOf(encodingName: string): AudioCodec | null {
  return AUDIO[encodingName.toUpperCase()] ?? null;
}
