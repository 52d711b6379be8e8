import { DEFAULT_H264_ENCODER, audioToMux, checkCombo, recordedCodecs, videoToMux } from './launch-codec';
import { quote, sourceTaps } from './launch-source';
import { walBranch } from '../mp4/write-ahead';
import type { Codecs, Container, OutputSpec, PipelineInput } from './types';
import { AppError } from '../lib/errors';

export { audioBitrate, checkCombo, recordedCodecs, DEFAULT_H264_ENCODER } from './launch-codec';
export { quote } from './launch-source';

/** Options of describePipeline. */
export interface DescribeOptions {
  /** gst-launch fragment that encodes raw video to H.264 (MJPEG sources); default x264enc, ultrafast, zerolatency */
  readonly h264Encoder?: string;
  /**
   * rtspsrc: the file starts on a video keyframe with its audio (the depayloader waits for a keyframe, audio waits
   * in a valve the media host opens at the first video buffer; gst-launch would never open it). Default false.
   */
  readonly keyframeStart?: boolean;
  /**
   * FLV (RTMP) sources with H.264 and AAC: the media host parses the pushed FLV tags into frames for appsrcs
   * FLV_VIDEO_SRC / FLV_AUDIO_SRC instead of appsrc "src" + flvdemux (which gst-launch needs). Default false.
   */
  readonly flvFrames?: boolean;
}

const MUXER: Record<Container, string> = { mp4: 'mp4mux', ts: 'mpegtsmux', webm: 'webmmux' };

/** File extension (no dot) of a container. */
export function extensionFor(container: Container): string {
  return container;
}

/** Join non-empty pipeline parts with links. */
function chain(...parts: string[]): string {
  return parts.filter((p) => p !== '').join(' ! ');
}

/** The muxer settings handed to splitmuxsink as muxer-properties (numbers typed so they are not parsed as int). */
function muxerProperties(out: OutputSpec): string | null {
  switch (out.container) {
    case 'mp4':
      // fragmented MP4: still playable (and remuxable) after a SIGKILL, see NOTES
      return 'properties,fragment-duration=(uint)1000';
    case 'webm': {
      // webmmux has no cluster size limit; webm.clusterBytes cannot be applied
      if (out.webm.clusterMs <= 0) return null;
      const max = out.webm.clusterMs * 1_000_000;
      return `properties,max-cluster-duration=(gint64)${max},min-cluster-duration=(gint64)${Math.min(max, 500_000_000)}`;
    }
    case 'ts':
      return null;
  }
}

/** The splitmuxsink named "mux" that writes (and rotates) the recording. */
function recordingSink(out: OutputSpec): string {
  if (!out.location.includes('%05d')) throw new AppError('INTERNAL', `output location ${out.location} has no %05d fragment number`);
  const props = muxerProperties(out);
  const parts = [
    'splitmuxsink name=mux async-finalize=true',
    `muxer-factory=${MUXER[out.container]}`,
    props ? `muxer-properties=${quote(props)}` : '',
    // MP4: every muxed buffer is written at once (filesink holds 64 KiB by default): playback reads a file being
    // recorded up to its last complete fragment, and a low-bitrate stream would otherwise lag by seconds
    out.container === 'mp4' ? `sink-properties=${quote('properties,buffer-mode=(int)2')}` : '',
    `location=${quote(out.location)}`,
    out.maxSizeTimeNs > 0 ? `max-size-time=${Math.round(out.maxSizeTimeNs)}` : '',
    out.maxSizeBytes > 0 ? `max-size-bytes=${Math.round(out.maxSizeBytes)}` : '',
  ];
  return parts.filter((p) => p !== '').join(' ');
}

/**
 * The gst-launch description of a pipeline: source → (parse | transcode) → splitmuxsink "mux" writing
 * `output.location`, or fakesinks when `output` is null. Throws when the codecs cannot go into the container.
 */
export function describePipeline(input: PipelineInput, opts: DescribeOptions = {}): string {
  const { source, codecs, output } = input;
  if (!codecs.video && !codecs.audio) throw new AppError('INTERNAL', 'the stream has neither video nor audio: nothing to record or monitor');
  if (!output) {
    const taps = sourceTaps(source, codecs.video, codecs.audio, false);
    const sinks = [taps.video, taps.audio].filter((t): t is string => t !== null).map((t) => chain(t, 'fakesink sync=false async=false'));
    return [taps.head, ...sinks].filter((p) => p !== '').join(' ');
  }
  checkCombo(codecs, output.container);
  const taps = sourceTaps(source, codecs.video, codecs.audio, true, opts.keyframeStart === true, opts.flvFrames === true);
  const h264Encoder = opts.h264Encoder ?? DEFAULT_H264_ENCODER;
  const parts = [taps.head];
  // write-ahead (MP4): every sample is also teed, as it enters the muxer, into a sidecar (src/mp4/write-ahead.ts)
  const wal = output.container === 'mp4' ? (output.writeAhead ?? null) : null;
  if (codecs.video && taps.video) {
    const tee = wal ? 'tee name=walv' : '';
    parts.push(chain(taps.video, videoToMux(codecs.video, output.container, taps.fromRtp, h264Encoder), tee, 'mux.video'));
    if (wal) parts.push(chain('walv.', walBranch(wal.video, wal.maxFiles, 'v')));
  }
  if (codecs.audio && taps.audio) {
    const tee = wal ? 'tee name=wala' : '';
    parts.push(chain(taps.audio, audioToMux(codecs.audio, output.container, output.aac), tee, 'mux.audio_0'));
    if (wal) parts.push(chain('wala.', walBranch(wal.audio, wal.maxFiles, 'a')));
  }
  parts.push(recordingSink(output));
  return parts.filter((p) => p !== '').join(' ');
}

/** Options of describeRemux. */
export interface RemuxOptions {
  /** MP4: moov before mdat (progressive download); else moov after mdat */
  readonly moovFirst: boolean;
}

/**
 * A `gst-launch-1.0 -q -e` description that rewrites a finished (or crash-truncated) tmp fragment `src` into
 * `dst` without re-encoding: fragmented MP4 → plain MP4; WebM → WebM with cues and duration. Null: a move is enough (TS).
 * `codecs` are the stream's codecs (as given to describePipeline).
 */
export function describeRemux(src: string, dst: string, container: Container, codecs: Codecs, opts: RemuxOptions): string | null {
  if (container === 'ts') return null;
  checkCombo(codecs, container);
  const rec = recordedCodecs(codecs, container);
  const parts: string[] = [];
  if (container === 'mp4') {
    // Unbounded queues: a muxer killed mid-write can leave one track a fragment (1 s) ahead of the other; with
    // queue's 1 s default, qtdemux blocks on the full queue and mp4mux waits for the other track: a deadlock.
    // qtdemux pushes in file order, so a queue holds at most that lead.
    const queue = 'queue max-size-buffers=0 max-size-bytes=0 max-size-time=0';
    parts.push(`filesrc location=${quote(src)} ! qtdemux name=d`);
    if (rec.video === 'H264') parts.push(`d.video_0 ! ${queue} ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! mux.video_0`);
    if (rec.video === 'H265') parts.push(`d.video_0 ! ${queue} ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! mux.video_0`);
    if (rec.audio) parts.push(`d.audio_0 ! ${queue} ! aacparse ! mux.audio_0`);
    // faststart stages the media next to dst (not in /tmp, which may be small) and moves it after the moov
    const mux = opts.moovFirst ? `mp4mux name=mux faststart=true faststart-file=${quote(`${dst}.faststart`)}` : 'mp4mux name=mux';
    parts.push(`${mux} ! filesink location=${quote(dst)}`);
  } else {
    parts.push(`filesrc location=${quote(src)} ! matroskademux name=d`);
    if (rec.video) parts.push('d.video_0 ! queue ! mux.video_0');
    if (rec.audio) parts.push('d.audio_0 ! queue ! mux.audio_0');
    parts.push(`webmmux name=mux ! filesink location=${quote(dst)}`);
  }
  return parts.join(' ');
}

/**
 * argv for `gst-launch-1.0` holding `description`: gst-launch escapes spaces inside each argument, so a
 * description passed as ONE argument is a syntax error; split on spaces outside double quotes. A quoted value
 * stays one argument: split, a piece like ` -rf ` of a file name would be taken for a gst-launch option.
 */
export function gstLaunchArgv(description: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < description.length; i++) {
    const ch = description.charAt(i);
    if (quoted && ch === '\\') {
      cur += ch + description.charAt(i + 1);
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === ' ' && !quoted) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}
