import type { AudioCodec, Codecs, Container, VideoCodec } from './types';
import { AppError } from '../lib/errors';

/** AAC (or Opus for WebM) encoding settings for audio that has to be transcoded. */
export interface AudioEncodeSettings {
  readonly sampleRate: number;
  readonly channels: number;
  readonly bitrateMode: number;
}

/** The default software H.264 encoder used when MJPEG has to become H.264. */
export const DEFAULT_H264_ENCODER = 'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50';

const VIDEO_IN: Record<Container, readonly VideoCodec[]> = {
  mp4: ['H264', 'H265', 'MJPEG'],
  ts: ['H264', 'H265', 'MJPEG'],
  webm: ['VP8', 'VP9'],
};
const AUDIO_COPY: Record<Container, readonly AudioCodec[]> = { mp4: ['AAC'], ts: ['AAC'], webm: ['OPUS', 'VORBIS'] };
const AUDIO_TRANSCODE: Record<Container, readonly AudioCodec[]> = {
  mp4: ['OPUS', 'PCMA', 'PCMU', 'MP3', 'VORBIS'],
  ts: ['OPUS', 'PCMA', 'PCMU', 'MP3', 'VORBIS'],
  webm: ['AAC', 'PCMA', 'PCMU', 'MP3'],
};

/** Throws unless `codecs` can be recorded into `container` (directly or by transcoding), naming what is allowed. */
export function checkCombo(codecs: Codecs, container: Container): void {
  if (!codecs.video && !codecs.audio) throw new AppError('INTERNAL', 'the stream has neither video nor audio: nothing to record');
  if (codecs.video && !VIDEO_IN[container].includes(codecs.video)) {
    throw new AppError('INTERNAL', 
      `video codec ${codecs.video} cannot be recorded into ${container} [allowed video in ${container}: ${VIDEO_IN[container].join(', ')}` +
        `${container === 'webm' ? '' : ' (MJPEG is transcoded to H264)'}]`,
    );
  }
  const audioOk = [...AUDIO_COPY[container], ...AUDIO_TRANSCODE[container]];
  if (codecs.audio && !audioOk.includes(codecs.audio)) {
    throw new AppError('INTERNAL', `audio codec ${codecs.audio} cannot be recorded into ${container} [allowed audio in ${container}: ${audioOk.join(', ')}]`);
  }
}

/** The codecs a recording of `codecs` in `container` holds after transcoding (MJPEG → H264, G.711/MP3/Opus → AAC, ...). */
export function recordedCodecs(codecs: Codecs, container: Container): Codecs {
  const video = codecs.video === 'MJPEG' ? 'H264' : codecs.video;
  let audio = codecs.audio;
  if (audio && !AUDIO_COPY[container].includes(audio)) audio = container === 'webm' ? 'OPUS' : 'AAC';
  return { video, audio };
}

const AAC_PER_CHANNEL = [32_000, 40_000, 56_000, 72_000, 96_000];

/**
 * AAC bitrate in bit/s for record_fdk_aac_bitrate_mode: 0 = CBR 128 kbit/s total; 1–5 (fdk-aac VBR qualities)
 * map to 32, 40, 56, 72, 96 kbit/s per channel (roughly fdk-aac's VBR averages; avenc_aac has no usable VBR).
 */
export function audioBitrate(mode: number, channels: number): number {
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) throw new AppError('INTERNAL', `AAC channels ${channels} is invalid [allowed: 1–8]`);
  if (mode === 0) return 128_000;
  const perChannel = Number.isInteger(mode) ? AAC_PER_CHANNEL[mode - 1] : undefined;
  if (perChannel === undefined) throw new AppError('INTERNAL', `AAC bitrate mode ${mode} is invalid [allowed: 0 (CBR) or 1–5 (VBR quality)]`);
  return perChannel * channels;
}

/** Parser (and caps) that hands an already-encoded video stream to the muxer of `container` ('' = none needed). */
export function videoToMux(codec: VideoCodec, container: Container, fromRtp: boolean, h264Encoder: string): string {
  switch (codec) {
    case 'H264':
    case 'H265': {
      const p = codec === 'H264' ? 'h264' : 'h265';
      // TS fragments must each carry SPS/PPS in-band: config-interval=-1 repeats them before every IDR.
      const parse = container === 'ts' ? `${p}parse config-interval=-1` : `${p}parse`;
      // RTP carries PTS only; with B-frames mp4mux needs the DTS that the timestamper computes.
      const format = container === 'ts' ? 'byte-stream' : codec === 'H264' ? 'avc' : 'hvc1';
      // the caps go before the timestamper: it does not pass them on, and the parser would keep avc (TS: not-negotiated)
      // Not before mpegtsmux: there the timestamper's output made splitmuxsink see running times 1000 h ahead
      // (wrong names, a failing position query, a 68 587 s duration); mpegtsmux takes PTS-only input as it is.
      const ts = fromRtp && container !== 'ts' ? ` ! ${p}timestamper` : '';
      return `${parse} ! video/x-${p},stream-format=${format},alignment=au${ts}`;
    }
    case 'MJPEG': {
      const i420 = h264Encoder.startsWith('x264enc') ? ' ! video/x-raw,format=I420' : '';
      return `jpegparse ! jpegdec ! videoconvert${i420} ! ${h264Encoder} ! ${videoToMux('H264', container, false, h264Encoder)}`;
    }
    case 'VP8':
    case 'VP9':
      return '';
  }
}

const AUDIO_DECODER: Record<AudioCodec, string> = {
  AAC: 'aacparse ! avdec_aac',
  OPUS: 'opusparse ! opusdec',
  PCMA: 'alawdec',
  PCMU: 'mulawdec',
  MP3: 'mpegaudioparse ! mpg123audiodec',
  VORBIS: 'vorbisparse ! vorbisdec',
};

/** Parser, or decoder + encoder, that hands an encoded audio stream to the muxer of `container`. */
export function audioToMux(codec: AudioCodec, container: Container, enc: AudioEncodeSettings): string {
  if (AUDIO_COPY[container].includes(codec)) {
    if (codec === 'AAC') return `aacparse ! audio/mpeg,mpegversion=4,stream-format=${container === 'ts' ? 'adts' : 'raw'}`;
    return codec === 'OPUS' ? 'opusparse' : 'vorbisparse';
  }
  const decode = `${AUDIO_DECODER[codec]} ! audioconvert ! audioresample`;
  if (container === 'webm') {
    const ch = Math.min(enc.channels, 2);
    return `${decode} ! audio/x-raw,rate=48000,channels=${ch} ! opusenc bitrate=${Math.min(audioBitrate(enc.bitrateMode, ch), 256_000)}`;
  }
  // ffmpeg's AAC encoder allows at most 6144 bits per channel per 1024-sample frame.
  const bitrate = Math.min(audioBitrate(enc.bitrateMode, enc.channels), 6 * enc.sampleRate * enc.channels);
  const adts = container === 'ts' ? 'adts' : 'raw';
  return `${decode} ! audio/x-raw,rate=${enc.sampleRate},channels=${enc.channels} ! avenc_aac bitrate=${bitrate} ! aacparse ! audio/mpeg,mpegversion=4,stream-format=${adts}`;
}

/** Live encoder for the `test` source: raw video → `codec`. */
export function testVideoEncoder(codec: VideoCodec, fps: number): string {
  const gop = Math.max(1, Math.round(fps * 2));
  switch (codec) {
    case 'H264':
      return `x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${gop} bitrate=1000`;
    case 'H265':
      return `x265enc tune=zerolatency speed-preset=ultrafast key-int-max=${gop} bitrate=1000`;
    case 'VP8':
      return `vp8enc deadline=1 cpu-used=8 keyframe-max-dist=${gop} target-bitrate=1000000`;
    case 'VP9':
      return `vp9enc deadline=1 cpu-used=8 keyframe-max-dist=${gop} target-bitrate=1000000`;
    case 'MJPEG':
      return 'jpegenc quality=70';
  }
}

/** Live encoder for the `test` source: raw audio → `codec` (raw caps first, so G.711 gets 8 kHz mono). */
export function testAudioEncoder(codec: AudioCodec): string {
  switch (codec) {
    case 'AAC':
      return 'audio/x-raw,rate=48000,channels=2 ! avenc_aac bitrate=128000';
    case 'OPUS':
      return 'audio/x-raw,rate=48000,channels=2 ! opusenc';
    case 'PCMA':
      return 'audio/x-raw,rate=8000,channels=1 ! alawenc';
    case 'PCMU':
      return 'audio/x-raw,rate=8000,channels=1 ! mulawenc';
    case 'MP3':
      return 'audio/x-raw,rate=44100,channels=2 ! lamemp3enc target=bitrate bitrate=128 cbr=true';
    case 'VORBIS':
      return 'audio/x-raw,rate=48000,channels=2 ! vorbisenc';
  }
}
