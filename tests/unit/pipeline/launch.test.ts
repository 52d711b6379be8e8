import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  audioBitrate,
  describePipeline,
  describeRemux,
  extensionFor,
  gstLaunchArgv,
  quote,
  recordedCodecs,
} from '../../../src/pipeline/launch';
import type { Codecs, Container, OutputSpec, PipelineInput, SourceSpec } from '../../../src/pipeline/types';

const out = (container: Container, o: Partial<OutputSpec> = {}): OutputSpec => ({
  container,
  location: `/tmp/rec/seg-%05d.${container}`,
  maxSizeTimeNs: 0,
  maxSizeBytes: 0,
  aac: { sampleRate: 44100, channels: 2, bitrateMode: 5 },
  webm: { clusterMs: 2000, clusterBytes: 131072 },
  ...o,
});
const RTSP: SourceSpec = { kind: 'rtsp', url: 'rtsp://user:pw@10.0.0.5:554/live', transport: 'tcp' };
const RTP: SourceSpec = {
  kind: 'rtp',
  video: { payloadType: 96, clockRate: 90000, encodingName: 'H264' },
  audio: { payloadType: 111, clockRate: 48000, encodingName: 'opus', channels: 2 },
};
const RTP_VP8: SourceSpec = { ...RTP, video: { payloadType: 97, clockRate: 90000, encodingName: 'VP8' } };
const d = (source: SourceSpec, codecs: Codecs, output: OutputSpec | null, h264Encoder?: string) =>
  describePipeline({ source, codecs, output } satisfies PipelineInput, { h264Encoder });

test('rtsp H.264 + AAC into MP4: rtspsrc settings, timestamper, fragmented mp4mux, rotation numbers', () => {
  const s = d(RTSP, { video: 'H264', audio: 'AAC' }, out('mp4', { maxSizeTimeNs: 20e9, maxSizeBytes: 50 * 1024 * 1024 }));
  assert.match(s, /^rtspsrc name=src location="rtsp:\/\/user:pw@10\.0\.0\.5:554\/live" protocols=tcp latency=0 buffer-mode=none /);
  assert.match(s, /src\. ! application\/x-rtp,media=video ! rtph264depay ! h264parse ! video\/x-h264,stream-format=avc,alignment=au ! h264timestamper ! mux\.video/);
  assert.match(s, /src\. ! application\/x-rtp,media=audio ! rtpmp4gdepay ! aacparse ! audio\/mpeg,mpegversion=4,stream-format=raw ! mux\.audio_0/);
  assert.match(s, / splitmuxsink name=mux async-finalize=true muxer-factory=mp4mux muxer-properties="properties,fragment-duration=\(uint\)1000" sink-properties="properties,buffer-mode=\(int\)2" /);
  assert.match(s, / max-size-time=20000000000 max-size-bytes=52428800$/);
  assert.ok(!s.includes('avenc_aac'), 'AAC is copied, not transcoded');
});

test('udp transport gets a jitter latency; rotation limits of 0 are omitted', () => {
  const s = d({ ...RTSP, transport: 'udp' }, { video: 'H265', audio: null }, out('mp4'));
  assert.match(s, /protocols=udp latency=200 buffer-mode=none/);
  assert.match(s, /rtph265depay ! h265parse ! video\/x-h265,stream-format=hvc1,alignment=au ! h265timestamper ! mux\.video/);
  assert.ok(!s.includes('max-size'), s);
  assert.ok(!s.includes('mux.audio_0'));
});

test('TS: byte-stream H.264 with SPS/PPS before every IDR, ADTS AAC, mpegtsmux', () => {
  const s = d(RTSP, { video: 'H264', audio: 'AAC' }, out('ts', { maxSizeTimeNs: 10e9 }));
  assert.match(s, /h264parse config-interval=-1 ! video\/x-h264,stream-format=byte-stream,alignment=au ! mux\.video/);
  assert.ok(!s.includes('timestamper'), 'no timestamper before mpegtsmux');
  assert.match(s, /aacparse ! audio\/mpeg,mpegversion=4,stream-format=adts ! mux\.audio_0/);
  assert.match(s, /muxer-factory=mpegtsmux location="\/tmp\/rec\/seg-%05d\.ts" max-size-time=10000000000$/);
  assert.ok(!s.includes('muxer-properties'));
  assert.ok(!s.includes('sink-properties'), 'TS keeps the file sink buffer (188-byte packets)');
});

test('Opus into MP4 (WebRTC): appsrc vrtp/artp with RTP caps, jitterbuffer, AAC at the configured rate/channels', () => {
  const s = d(RTP, { video: 'H264', audio: 'OPUS' }, out('mp4', { aac: { sampleRate: 48000, channels: 1, bitrateMode: 0 } }));
  assert.match(
    s,
    /^appsrc name=vrtp is-live=true do-timestamp=true format=time caps="application\/x-rtp,media=\(string\)video,clock-rate=\(int\)90000,encoding-name=\(string\)H264,payload=\(int\)96" ! rtpjitterbuffer mode=none ! rtph264depay ! h264parse /,
  );
  assert.match(s, /appsrc name=artp is-live=true do-timestamp=true format=time caps="application\/x-rtp,media=\(string\)audio,clock-rate=\(int\)48000,encoding-name=\(string\)OPUS,payload=\(int\)111" ! rtpjitterbuffer mode=none ! rtpopusdepay ! opusparse ! opusdec /);
  assert.match(s, /audio\/x-raw,rate=48000,channels=1 ! avenc_aac bitrate=128000 ! aacparse ! audio\/mpeg,mpegversion=4,stream-format=raw ! mux\.audio_0/);
});

test('G.711 and MP3 are transcoded to AAC; the bitrate follows the mode and the channel count', () => {
  const pcma = d(RTSP, { video: 'H264', audio: 'PCMA' }, out('ts', { aac: { sampleRate: 16000, channels: 1, bitrateMode: 3 } }));
  assert.match(pcma, /rtppcmadepay ! alawdec ! audioconvert ! audioresample ! audio\/x-raw,rate=16000,channels=1 ! avenc_aac bitrate=56000 ! aacparse ! audio\/mpeg,mpegversion=4,stream-format=adts/);
  const pcmu = d(RTSP, { video: null, audio: 'PCMU' }, out('mp4', { aac: { sampleRate: 8000, channels: 1, bitrateMode: 5 } }));
  // 96 kbit/s asked, but 8 kHz mono AAC tops out at 48 kbit/s
  assert.match(pcmu, /rtppcmudepay ! mulawdec ! .* avenc_aac bitrate=48000 /);
  assert.ok(!pcmu.includes('mux.video'));
  const mp3 = d({ kind: 'flv' }, { video: 'H264', audio: 'MP3' }, out('mp4'));
  assert.match(mp3, /demux\.audio ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=8388608 ! mpegaudioparse ! mpg123audiodec ! audioconvert ! audioresample ! audio\/x-raw,rate=44100,channels=2 ! avenc_aac bitrate=192000 /);
});

test('FLV: appsrc "src" with video/x-flv caps into flvdemux "demux", a queue per branch', () => {
  const s = d({ kind: 'flv' }, { video: 'H264', audio: 'AAC' }, out('mp4'));
  assert.match(s, /^appsrc name=src is-live=true format=time caps=video\/x-flv ! flvdemux name=demux demux\.video ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=8388608 ! h264parse ! video\/x-h264,stream-format=avc,alignment=au ! mux\.video demux\.audio ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=8388608 ! aacparse /);
  assert.ok(!s.includes('timestamper'), 'FLV has DTS: no timestamper');
  assert.throws(() => d({ kind: 'flv' }, { video: 'VP8', audio: null }, out('webm')), /VP8 cannot come from FLV \[allowed: H264\]/);
});

test('FLV in a media host (flvFrames): appsrcs flvv/flva straight into the parsers, no flvdemux, no queues; MP3 keeps flvdemux', () => {
  const s = describePipeline({ source: { kind: 'flv' }, codecs: { video: 'H264', audio: 'AAC' }, output: out('mp4') }, { flvFrames: true });
  assert.match(s, /^appsrc name=flvv is-live=true format=time caps="video\/x-h264,stream-format=avc,alignment=au" ! h264parse ! video\/x-h264,stream-format=avc,alignment=au ! h264timestamper ! mux\.video appsrc name=flva is-live=true format=time caps="audio\/mpeg,mpegversion=4,stream-format=raw" ! aacparse /);
  assert.ok(!s.includes('flvdemux') && !s.includes('queue'), s);
  const mp3 = describePipeline({ source: { kind: 'flv' }, codecs: { video: 'H264', audio: 'MP3' }, output: out('mp4') }, { flvFrames: true });
  assert.match(mp3, /^appsrc name=src is-live=true format=time caps=video\/x-flv ! flvdemux name=demux /);
});

test('VP8 + Opus into WebM with the cluster duration; G.711 into WebM becomes Opus', () => {
  const s = d(RTP_VP8, { video: 'VP8', audio: 'OPUS' }, out('webm'));
  assert.match(s, /encoding-name=\(string\)VP8,payload=\(int\)97" ! rtpjitterbuffer mode=none ! rtpvp8depay ! mux\.video /);
  assert.match(s, /rtpopusdepay ! opusparse ! mux\.audio_0 /);
  assert.match(s, /muxer-factory=webmmux muxer-properties="properties,max-cluster-duration=\(gint64\)2000000000,min-cluster-duration=\(gint64\)500000000"/);
  const g711 = d({ ...RTP_VP8, audio: { payloadType: 0, clockRate: 8000, encodingName: 'PCMU' } }, { video: 'VP8', audio: 'PCMU' }, out('webm'));
  assert.match(g711, /rtppcmudepay ! mulawdec ! audioconvert ! audioresample ! audio\/x-raw,rate=48000,channels=2 ! opusenc bitrate=192000 ! mux\.audio_0/);
});

test('MJPEG is transcoded to H.264 with the default or a given encoder', () => {
  const def = d(RTSP, { video: 'MJPEG', audio: null }, out('mp4'));
  assert.match(def, /rtpjpegdepay ! jpegparse ! jpegdec ! videoconvert ! video\/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 ! h264parse /);
  const hw = d(RTSP, { video: 'MJPEG', audio: null }, out('ts'), 'v4l2h264enc');
  assert.match(hw, /jpegdec ! videoconvert ! v4l2h264enc ! h264parse config-interval=-1 ! video\/x-h264,stream-format=byte-stream/);
  assert.deepEqual(recordedCodecs({ video: 'MJPEG', audio: 'PCMA' }, 'mp4'), { video: 'H264', audio: 'AAC' });
  assert.deepEqual(recordedCodecs({ video: 'VP8', audio: 'PCMU' }, 'webm'), { video: 'VP8', audio: 'OPUS' });
});

test('test source: live test sources and encoders, GOP of 2 s', () => {
  const s = d({ kind: 'test', fps: 15, width: 320, height: 240 }, { video: 'H264', audio: 'AAC' }, out('mp4'));
  assert.match(s, /^videotestsrc is-live=true .*width=320,height=240,framerate=15\/1.* ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 /);
  assert.match(s, /audiotestsrc is-live=true .* avenc_aac bitrate=128000 ! aacparse /);
  assert.match(d({ kind: 'test' }, { video: 'H265', audio: null }, out('mp4')), /x265enc tune=zerolatency speed-preset=ultrafast key-int-max=50 /);
  assert.match(d({ kind: 'test' }, { video: 'VP8', audio: 'OPUS' }, out('webm')), /vp8enc .*keyframe-max-dist=50 .*opusenc ! opusparse ! mux\.audio_0/);
});

test('null output: the source goes to fakesinks, nothing is written', () => {
  const s = d(RTSP, { video: 'H264', audio: 'PCMA' }, null);
  assert.equal(
    s,
    'rtspsrc name=src location="rtsp://user:pw@10.0.0.5:554/live" protocols=tcp latency=0 buffer-mode=none max-ts-offset-adjustment=1000000 ' +
      'src. ! application/x-rtp,media=video ! fakesink sync=false async=false src. ! application/x-rtp,media=audio ! fakesink sync=false async=false',
  );
  assert.ok(!d({ kind: 'flv' }, { video: 'H264', audio: null }, null).includes('splitmuxsink'));
  assert.match(d(RTP, { video: 'H264', audio: 'OPUS' }, null), /appsrc name=vrtp .* ! fakesink .*appsrc name=artp .* ! fakesink/);
});

test('impossible combinations throw naming the codec, the container and what is allowed', () => {
  assert.throws(() => d(RTP_VP8, { video: 'VP8', audio: 'OPUS' }, out('mp4')), /video codec VP8 cannot be recorded into mp4 \[allowed video in mp4: H264, H265, MJPEG/);
  assert.throws(() => d(RTSP, { video: 'H264', audio: null }, out('webm')), /H264 cannot be recorded into webm \[allowed video in webm: VP8, VP9\]/);
  assert.throws(() => d(RTSP, { video: null, audio: null }, out('mp4')), /neither video nor audio/);
  assert.throws(() => d(RTSP, { video: 'H264', audio: null }, out('mp4', { location: '/tmp/x.mp4' })), /no %05d/);
  assert.throws(() => d({ ...RTP, audio: null }, { video: 'H264', audio: 'OPUS' }, out('mp4')), /no audio track/);
});

test('audioBitrate: 0 is CBR 128k, 1–5 scale per channel, anything else throws', () => {
  assert.equal(audioBitrate(0, 1), 128_000);
  assert.equal(audioBitrate(0, 2), 128_000);
  assert.deepEqual([1, 2, 3, 4, 5].map((m) => audioBitrate(m, 1)), [32_000, 40_000, 56_000, 72_000, 96_000]);
  assert.equal(audioBitrate(5, 2), 192_000);
  assert.throws(() => audioBitrate(6, 2), /AAC bitrate mode 6 is invalid \[allowed: 0 \(CBR\) or 1–5/);
  assert.throws(() => audioBitrate(1.5, 2), /mode 1.5 is invalid/);
  assert.throws(() => audioBitrate(1, 0), /channels 0 is invalid/);
});

test('describeRemux: MP4 moov first via faststart next to dst, or moov last; WebM remuxed; TS moved', () => {
  const first = describeRemux('/tmp/a b.mp4', '/rec/x.mp4', 'mp4', { video: 'H265', audio: 'OPUS' }, { moovFirst: true });
  assert.equal(
    first,
    'filesrc location="/tmp/a b.mp4" ! qtdemux name=d d.video_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! mux.video_0 ' +
      'd.audio_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! aacparse ! mux.audio_0 mp4mux name=mux faststart=true faststart-file="/rec/x.mp4.faststart" ! filesink location="/rec/x.mp4"',
  );
  const last = describeRemux('/t.mp4', '/r.mp4', 'mp4', { video: 'H264', audio: null }, { moovFirst: false });
  assert.ok(last?.includes('mp4mux name=mux ! filesink') && !last.includes('faststart') && !last.includes('audio_0'), last ?? '');
  assert.match(describeRemux('/t.webm', '/r.webm', 'webm', { video: 'VP8', audio: 'OPUS' }, { moovFirst: true }) ?? '', /matroskademux name=d d\.video_0 ! queue ! mux\.video_0 d\.audio_0 ! queue ! mux\.audio_0 webmmux name=mux/);
  assert.equal(describeRemux('/t.ts', '/r.ts', 'ts', { video: 'H264', audio: 'AAC' }, { moovFirst: true }), null);
  assert.throws(() => describeRemux('/t.mp4', '/r.mp4', 'mp4', { video: 'VP8', audio: null }, { moovFirst: true }), /VP8 cannot be recorded into mp4/);
});

test('quoting and argv: quotes and backslashes are escaped; the argv rejoins to the description', () => {
  assert.equal(quote('/a "b"\\c'), '"/a \\"b\\"\\\\c"');
  const s = d(RTSP, { video: 'H264', audio: null }, out('mp4', { location: '/tmp/my rec/"x"-%05d.mp4' }));
  assert.ok(s.includes('location="/tmp/my rec/\\"x\\"-%05d.mp4"'), s);
  assert.equal(gstLaunchArgv(s).join(' '), s);
  assert.ok(gstLaunchArgv(s).includes('location="/tmp/my rec/\\"x\\"-%05d.mp4"'), 'a quoted value is one argument');
  assert.deepEqual(gstLaunchArgv('filesink location="/a -rf \\" b"'), ['filesink', 'location="/a -rf \\" b"']);
  assert.deepEqual(['mp4', 'webm', 'ts'].map((c) => extensionFor(c as Container)), ['mp4', 'webm', 'ts']);
});

test('rtspsrc with keyframeStart (a media host runs it): video waits for a keyframe, audio waits in a closed valve', () => {
  const s = describePipeline({ source: RTSP, codecs: { video: 'H264', audio: 'AAC' }, output: out('mp4') }, { keyframeStart: true });
  assert.match(s, /rtph264depay wait-for-keyframe=true ! identity name=vkey silent=false ! h264parse/);
  assert.match(s, /rtpmp4gdepay ! valve name=agate drop=true drop-mode=forward-sticky-events ! aacparse/);
  const videoOnly = describePipeline({ source: RTSP, codecs: { video: 'H264', audio: null }, output: out('mp4') }, { keyframeStart: true });
  assert.ok(!videoOnly.includes('vkey') && !videoOnly.includes('agate'), 'no gate without audio');
  assert.match(videoOnly, /rtph264depay wait-for-keyframe=true ! h264parse/);
});
