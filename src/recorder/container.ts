import type { Codecs, Container } from '../pipeline/types';

/** The container a stream records into (SPEC §1): VP8/VP9 → WebM, else MP4, or TS when record_h264_to_ts. */
export function chooseContainer(codecs: Codecs, h264ToTs: boolean): Container {
  if (codecs.video === 'VP8' || codecs.video === 'VP9') return 'webm';
  if (codecs.video === null && (codecs.audio === 'OPUS' || codecs.audio === 'VORBIS')) return 'webm';
  return h264ToTs ? 'ts' : 'mp4';
}
