import { testAudioEncoder, testVideoEncoder } from './launch-codec';
import type { AudioCodec, RtpTrack, RtspFeedSpec, SourceSpec, VideoCodec } from './types';
import { AppError } from '../lib/errors';

/** Bytes one FLV branch may hold while the other track lags (8 s of 8 Mbit/s video) */
const FLV_BRANCH_QUEUE_BYTES = 8 * 1024 * 1024;

/** rtspsrc pipelines: the identity that sees the first video keyframe, and the valve holding audio until then (host-worker opens it). */
export const KEY_PROBE = 'vkey';
export const AUDIO_GATE = 'agate';
/** FLV in a media host: the appsrcs the host pushes H.264 access units and AAC frames into (flv-frames.ts). */
export const FLV_VIDEO_SRC = 'flvv';
export const FLV_AUDIO_SRC = 'flva';

/** Where each track of a source comes out as an encoded elementary stream, ready for `! parser ! ...`. */
export interface SourceTaps {
  /** elements that start the pipeline and are not part of a track chain (rtspsrc, appsrc+flvdemux) */
  readonly head: string;
  readonly video: string | null;
  readonly audio: string | null;
  /** RTP sources: PTS only, no DTS (H.264/H.265 need a timestamper before mp4mux) */
  readonly fromRtp: boolean;
}

const RTP_VIDEO_DEPAY: Record<VideoCodec, string> = {
  H264: 'rtph264depay',
  H265: 'rtph265depay',
  VP8: 'rtpvp8depay',
  VP9: 'rtpvp9depay',
  MJPEG: 'rtpjpegdepay',
};
const RTP_AUDIO_DEPAY: Record<AudioCodec, string> = {
  // MPEG4-GENERIC, what RTSP cameras send; an MP4A-LATM camera would need rtpmp4adepay
  AAC: 'rtpmp4gdepay',
  OPUS: 'rtpopusdepay',
  PCMA: 'rtppcmadepay',
  PCMU: 'rtppcmudepay',
  MP3: 'rtpmpadepay',
  VORBIS: 'rtpvorbisdepay',
};

/** What the edgerec RTSP client pushes per codec (protocols/rtp/depay.ts); other codecs use rtspsrc. */
const FEED_VIDEO_CAPS: Partial<Record<VideoCodec, string>> = {
  H264: 'video/x-h264,stream-format=byte-stream,alignment=au',
  H265: 'video/x-h265,stream-format=byte-stream,alignment=au',
};
const FEED_AUDIO_CAPS: Partial<Record<AudioCodec, string>> = {
  AAC: 'audio/mpeg,mpegversion=4,stream-format=adts',
  PCMA: 'audio/x-alaw,rate=8000,channels=1',
  PCMU: 'audio/x-mulaw,rate=8000,channels=1',
};

/** Whether edgerec's RTSP client can carry these codecs (the camera's SDP may still refuse: see unsupportedTrack). */
export function feedCarries(video: VideoCodec | null, audio: AudioCodec | null): boolean {
  return (video === null || FEED_VIDEO_CAPS[video] !== undefined) && (audio === null || FEED_AUDIO_CAPS[audio] !== undefined);
}

function unsupported(kind: string, codec: string): never {
  throw new AppError('INTERNAL', `${kind} codec ${codec} cannot come from edgerec's RTSP client [allowed: ${Object.keys(kind === 'video' ? FEED_VIDEO_CAPS : FEED_AUDIO_CAPS).join(', ')}]`);
}

/** The media host's RTSP feed for a source, or null when the pipeline pulls (or is pushed) its media otherwise. */
export function feedFor(source: SourceSpec, video: VideoCodec | null, audio: AudioCodec | null): RtspFeedSpec | null {
  return source.kind === 'rtsp' && source.client === 'edgerec' ? { url: source.url, video, audio } : null;
}

/** A gst-launch property value in double quotes (backslash and quote escaped), safe for paths and URLs. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The caps of one RTP track pushed by an ingest. */
export function rtpCaps(media: 'video' | 'audio', t: RtpTrack): string {
  const ch = media === 'audio' && t.channels && t.encodingName.toUpperCase() !== 'OPUS' ? `,encoding-params=(string)${t.channels}` : '';
  return `application/x-rtp,media=(string)${media},clock-rate=(int)${t.clockRate},encoding-name=(string)${t.encodingName.toUpperCase()},payload=(int)${t.payloadType}${ch}`;
}

/**
 * The taps of `source` for the given codecs. `depay=false` (nothing recorded) leaves RTP undepayloaded:
 * the tracks only go to fakesinks.
 */
export function sourceTaps(source: SourceSpec, video: VideoCodec | null, audio: AudioCodec | null, depay: boolean, keyframeStart = false, flvFrames = false): SourceTaps {
  switch (source.kind) {
    case 'rtsp': {
      if (source.client === 'edgerec') {
        // frames pushed by the media host's RTSP client with PTS only (see rtsp-feed.ts); the host sets the
        // exact audio caps (G.711 rate and channels) from the camera's SDP before the first frame
        const app = (name: string, caps: string) => `appsrc name=${name} is-live=true format=time caps=${quote(caps)}`;
        return {
          head: '',
          video: video ? app('vsrc', FEED_VIDEO_CAPS[video] ?? unsupported('video', video)) : null,
          audio: audio ? app('asrc', FEED_AUDIO_CAPS[audio] ?? unsupported('audio', audio)) : null,
          fromRtp: true,
        };
      }
      const latency = source.transport === 'tcp' ? 0 : 200;
      // buffer-mode=none: RTP timestamps only, so time rotation cuts exact segments (NOTES); RTCP stays on for SR.
      // max-ts-offset-adjustment: rtpbin's lip-sync moves a track's offset at each RTCP sender report, by default
      // in one step; a step back (VLC over UDP on a loaded box: ~70 ms of audio) reached mp4mux as timestamps going
      // backwards, which it clamps into zero-length samples (a file ffmpeg will not decode cleanly). At most 1 ms
      // per frame, a correction is spread over frames and a track's time never goes back.
      const head = `rtspsrc name=src location=${quote(source.url)} protocols=${source.transport} latency=${latency} buffer-mode=none max-ts-offset-adjustment=1000000`;
      const tap = (media: 'video' | 'audio', depayer: string) => `src. ! application/x-rtp,media=${media}${depay ? ` ! ${depayer}` : ''}`;
      // The file starts on a keyframe, as with edgerec's client: a UDP camera joined mid-GOP sent 2–18 frames
      // without their references, and with B-frames the ones before the first keyframe came out with a negative,
      // wrapped PTS (a file named in 2611). The depayloader drops everything before the first keyframe.
      const waitKey = keyframeStart && (video === 'H264' || video === 'H265') ? ' wait-for-keyframe=true' : '';
      // Audio waits for the first video keyframe too (else the file starts with up to a GOP of audio alone): a
      // closed valve, opened by the media host once the identity after the video depayloader saw a buffer
      // (`keyframeStart`: only where a media host runs the pipeline; gst-launch would never open it).
      const gate = depay && waitKey !== '' && audio !== null;
      return {
        head,
        video: video ? tap('video', RTP_VIDEO_DEPAY[video] + waitKey) + (gate ? ` ! identity name=${KEY_PROBE} silent=false` : '') : null,
        audio: audio ? tap('audio', RTP_AUDIO_DEPAY[audio]) + (gate ? ` ! valve name=${AUDIO_GATE} drop=true drop-mode=forward-sticky-events` : '') : null,
        fromRtp: true,
      };
    }
    case 'flv': {
      if (video && video !== 'H264') throw new AppError('INTERNAL', `video codec ${video} cannot come from FLV [allowed: H264]`);
      if (audio && audio !== 'AAC' && audio !== 'MP3') throw new AppError('INTERNAL', `audio codec ${audio} cannot come from FLV [allowed: AAC, MP3]`);
      if (flvFrames && audio !== 'MP3') {
        // The media host parses the FLV tags itself and pushes each frame with its PTS (flv-frames.ts): no flvdemux,
        // and no queues, which only a demuxer's one thread feeding both tracks needs; splitmuxsink queues each track.
        // PTS only (the binding sets no DTS): H.264 gets a timestamper, as from RTP. Caps with codec_data are set by
        // the host from each sequence header.
        const app = (name: string, caps: string) => `appsrc name=${name} is-live=true format=time caps=${quote(caps)}`;
        return {
          head: '',
          video: video ? app(FLV_VIDEO_SRC, 'video/x-h264,stream-format=avc,alignment=au') : null,
          audio: audio ? app(FLV_AUDIO_SRC, 'audio/mpeg,mpegversion=4,stream-format=raw') : null,
          fromRtp: true,
        };
      }
      // A demuxer feeding a muxer needs a queue per branch or it deadlocks (NOTES). Not queue's default 1 s: a
      // publisher whose audio starts seconds after its video (or the reverse) leaves one branch empty while
      // splitmuxsink holds the other until both reach the cut; the full 1 s queue then blocked flvdemux's one thread,
      // so the late track never came (audio 1.5 s late: 2 s of 10 lost, "no EOS in time"; 3 s late: no file). No time
      // or count bound — flvdemux itself sends a gap on a track more than 3 s behind — only a byte bound per branch.
      const queue = `queue max-size-buffers=0 max-size-time=0 max-size-bytes=${FLV_BRANCH_QUEUE_BYTES}`;
      return {
        head: 'appsrc name=src is-live=true format=time caps=video/x-flv ! flvdemux name=demux',
        video: video ? `demux.video ! ${queue}` : null,
        audio: audio ? `demux.audio ! ${queue}` : null,
        fromRtp: false,
      };
    }
    case 'rtp': {
      if (video && !source.video) throw new AppError('INTERNAL', `video codec ${video} was given but the RTP source has no video track`);
      if (audio && !source.audio) throw new AppError('INTERNAL', `audio codec ${audio} was given but the RTP source has no audio track`);
      // mode=none: PTS = first arrival + RTP timestamp steps; the default skew tracking turned arrival jitter
      // into uneven, even backward, sample times (ffmpeg: "non monotonically increasing dts").
      const tap = (name: string, media: 'video' | 'audio', t: RtpTrack, depayer: string) =>
        `appsrc name=${name} is-live=true do-timestamp=true format=time caps=${quote(rtpCaps(media, t))}` +
        (depay ? ` ! rtpjitterbuffer mode=none ! ${depayer}` : '');
      return {
        head: '',
        video: video && source.video ? tap('vrtp', 'video', source.video, RTP_VIDEO_DEPAY[video]) : null,
        audio: audio && source.audio ? tap('artp', 'audio', source.audio, RTP_AUDIO_DEPAY[audio]) : null,
        fromRtp: true,
      };
    }
    case 'test': {
      const fps = source.fps ?? 25;
      const w = source.width ?? 640;
      const h = source.height ?? 360;
      return {
        head: '',
        video: video
          ? `videotestsrc is-live=true pattern=smpte ! video/x-raw,width=${w},height=${h},framerate=${fps}/1,format=I420 ! ${testVideoEncoder(video, fps)}`
          : null,
        audio: audio ? `audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! ${testAudioEncoder(audio)}` : null,
        fromRtp: false,
      };
    }
  }
}
