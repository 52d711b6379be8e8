import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fmtpParams, parseSdpMedia } from '../../../../src/ingest/whip/offer';
import { parseSdp, parseSdpSections, parseSdpSession, sdpCodecs } from '../../../../src/protocols/sdp/sdp';

const crlf = (lines: string[]) => `${lines.join('\r\n')}\r\n`;

// Captured from tests/helpers/rtsp-server.py (GStreamer 1.22 rtsp-server) with describeRtsp().
const GST_H264_AAC = crlf([
  'v=0',
  'o=- 12155717773627280310 1 IN IP4 127.0.0.1',
  's=Session streamed with GStreamer',
  'i=rtsp-server',
  't=0 0',
  'a=tool:GStreamer',
  'a=type:broadcast',
  'a=control:*',
  'a=range:npt=0-',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'b=AS:658',
  'a=rtpmap:96 H264/90000',
  'a=framerate:25',
  'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LADNoFBn58BEAAAAMAQAAADIPFCqg=,aM4PyA==;profile-level-id=42c00c;level-asymmetry-allowed=1',
  'a=control:stream=0',
  'a=ts-refclk:local',
  'a=mediaclk:sender',
  'a=ssrc:820430127 cname:user4132443480@host-47317c65',
  'm=audio 0 RTP/AVP 97',
  'c=IN IP4 0.0.0.0',
  'b=AS:128',
  'a=rtpmap:97 MPEG4-GENERIC/44100/2',
  'a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=121056e500;sizelength=13;indexlength=3;indexdeltalength=3',
  'a=control:stream=1',
  'a=ts-refclk:local',
  'a=mediaclk:sender',
  'a=ssrc:544222545 cname:user4132443480@host-47317c65',
]);

const GST_H265 = crlf([
  'v=0',
  'o=- 10018829264879008913 1 IN IP4 127.0.0.1',
  's=Session streamed with GStreamer',
  't=0 0',
  'a=control:*',
  'a=range:npt=0-8',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'b=AS:229',
  'a=rtpmap:96 H265/90000',
  'a=framerate:25',
  'a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA8lZQJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA8oAoIDB8+WVlSkwvAWgIAAAMAAgAAAwAyEA==;sprop-pps=RAHAc8GJ',
  'a=control:stream=0',
]);

const GST_H264_PCMA = crlf([
  'v=0',
  'o=- 15317952692712444025 1 IN IP4 127.0.0.1',
  's=Session streamed with GStreamer',
  't=0 0',
  'a=control:*',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LADNoFBn58BEAAAAMAQAAADIPFCqg=,aM4PyA==;profile-level-id=42c00c',
  'a=control:stream=0',
  'm=audio 0 RTP/AVP 8',
  'c=IN IP4 0.0.0.0',
  'a=rtpmap:8 PCMA/8000',
  'a=control:stream=1',
]);

const GST_MJPEG = crlf(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=Session streamed with GStreamer', 't=0 0', 'm=video 0 RTP/AVP 26', 'c=IN IP4 0.0.0.0', 'a=rtpmap:26 JPEG/90000', 'a=framerate:25.000000', 'a=control:stream=0']);

// Typical of Hikvision: absolute controls, "; " between fmtp parameters, static PCMA with its rtpmap.
const HIKVISION = crlf([
  'v=0',
  'o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64',
  's=Media Presentation',
  'e=NONE',
  'b=AS:5050',
  't=0 0',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'b=AS:5000',
  'a=recvonly',
  'a=x-dimensions:1920,1080',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z01AKI2NQDwBE/LCAAAOEAACvyAI,aO44gA==',
  'm=audio 0 RTP/AVP 8',
  'c=IN IP4 0.0.0.0',
  'b=AS:50',
  'a=recvonly',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2?transportmode=unicast',
  'a=rtpmap:8 PCMA/8000',
  'a=Media_header:MEDIAINFO=494D4B48010200000400000111710110401F000000FA000000000000000000000000000000000000;',
  'a=appversion:1.0',
]);

// Typical of Dahua: H.265, mono AAC without a channel count, an ONVIF metadata track to skip.
const DAHUA = crlf([
  'v=0',
  'o=- 2251938202 2251938202 IN IP4 0.0.0.0',
  's=Media Server',
  'c=IN IP4 0.0.0.0',
  't=0 0',
  'a=control:*',
  'a=packetization-supported:DH',
  'a=range:npt=now-',
  'm=video 0 RTP/AVP 96',
  'a=control:trackID=0',
  'a=framerate:25.000000',
  'a=rtpmap:96 H265/90000',
  'a=fmtp:96 profile-id=1;sprop-sps=QgEBAWAAAAMAsAAAAwAAAwB4oAPAgBDlja5JMvTcBAQEAg==;sprop-pps=RAHA8vA8kAA=;sprop-vps=QAEMAf//AWAAAAMAsAAAAwAAAwB4rAk=',
  'a=recvonly',
  'm=audio 0 RTP/AVP 97',
  'a=control:trackID=1',
  'a=rtpmap:97 MPEG4-GENERIC/16000',
  'a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1408',
  'a=recvonly',
  'm=application 0 RTP/AVP 107',
  'a=control:trackID=4',
  'a=rtpmap:107 vnd.onvif.metadata/90000',
  'a=recvonly',
]);

// Typical of Axis: mixed-case fmtp keys, a trailing ';'.
const AXIS = crlf([
  'v=0',
  'o=- 1234 1 IN IP4 192.168.0.90',
  's=Session streamed with GStreamer',
  't=0 0',
  'a=control:rtsp://192.168.0.90/axis-media/media.amp?videocodec=h264',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1;profile-level-id=4d0029;sprop-parameter-sets=Z00AKeKQDwBE/LgLcBAQGkHiRFQ=,aO48gA==',
  'a=control:rtsp://192.168.0.90/axis-media/media.amp/stream=0?videocodec=h264',
  'm=audio 0 RTP/AVP 97',
  'c=IN IP4 0.0.0.0',
  'a=rtpmap:97 MPEG4-GENERIC/16000/1',
  'a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408; sizeLength=13; indexLength=3; indexDeltaLength=3; profile=1; bitrate=32000;',
  'a=control:rtsp://192.168.0.90/axis-media/media.amp/stream=1?videocodec=h264',
]);

// Older cameras: static payload types and no a=rtpmap at all, LF line ends.
const STATIC_ONLY = ['v=0', 'o=- 0 0 IN IP4 10.0.0.2', 's=cam', 't=0 0', 'm=video 0 RTP/AVP 26', 'a=control:track1', 'm=audio 0 RTP/AVP 0', 'a=control:track2', ''].join('\n');

test('parseSdp reads the GStreamer H.264 + AAC answer', () => {
  const media = parseSdp(GST_H264_AAC);
  assert.equal(media.length, 2);
  const [v, a] = media;
  assert.deepEqual(v, {
    media: 'video',
    payloadType: 96,
    encodingName: 'H264',
    clockRate: 90000,
    fmtp: {
      'packetization-mode': '1',
      'sprop-parameter-sets': 'Z0LADNoFBn58BEAAAAMAQAAADIPFCqg=,aM4PyA==',
      'profile-level-id': '42c00c',
      'level-asymmetry-allowed': '1',
    },
    control: 'stream=0',
  });
  assert.equal(a?.media, 'audio');
  assert.equal(a?.encodingName, 'MPEG4-GENERIC');
  assert.equal(a?.clockRate, 44100);
  assert.equal(a?.channels, 2);
  assert.equal(a?.fmtp.config, '121056e500');
  assert.equal(a?.control, 'stream=1');
  assert.deepEqual(sdpCodecs(media), { video: 'H264', audio: 'AAC' });
});

test('sdpCodecs maps the captured GStreamer answers', () => {
  assert.deepEqual(sdpCodecs(parseSdp(GST_H265)), { video: 'H265', audio: null });
  assert.deepEqual(sdpCodecs(parseSdp(GST_H264_PCMA)), { video: 'H264', audio: 'PCMA' });
  assert.deepEqual(sdpCodecs(parseSdp(GST_MJPEG)), { video: 'MJPEG', audio: null });
  assert.equal(parseSdp(GST_H265)[0]?.fmtp['sprop-sps'], 'QgEBAWAAAAMAkAAAAwAAAwA8oAoIDB8+WVlSkwvAWgIAAAMAAgAAAwAyEA==', 'base64 "=" padding kept');
});

test('camera answers: Hikvision, Dahua, Axis', () => {
  const hik = parseSdp(HIKVISION);
  assert.deepEqual(sdpCodecs(hik), { video: 'H264', audio: 'PCMA' });
  assert.equal(hik[0]?.control, 'rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast');
  assert.equal(hik[0]?.fmtp['packetization-mode'], '1', '"; " separators');
  assert.equal(hik[1]?.payloadType, 8);

  const dahua = parseSdp(DAHUA);
  assert.equal(dahua.length, 2, 'the application (metadata) section is skipped');
  assert.deepEqual(sdpCodecs(dahua), { video: 'H265', audio: 'AAC' });
  assert.equal(dahua[1]?.clockRate, 16000);
  assert.equal(dahua[1]?.channels, undefined);

  const axis = parseSdp(AXIS);
  assert.deepEqual(sdpCodecs(axis), { video: 'H264', audio: 'AAC' });
  assert.equal(axis[1]?.fmtp.sizelength, '13', 'fmtp keys are lower-cased');
  assert.equal(axis[1]?.fmtp.bitrate, '32000');
});

test('static payload types without a=rtpmap: 26 JPEG, 0 PCMU, 8 PCMA, 14 MPA', () => {
  const media = parseSdp(STATIC_ONLY);
  assert.deepEqual(
    media.map((m) => [m.media, m.payloadType, m.encodingName, m.clockRate, m.control]),
    [
      ['video', 26, 'JPEG', 90000, 'track1'],
      ['audio', 0, 'PCMU', 8000, 'track2'],
    ],
  );
  assert.deepEqual(sdpCodecs(media), { video: 'MJPEG', audio: 'PCMU' });
  const pcma = parseSdp('v=0\r\nm=audio 0 RTP/AVP 8\r\n');
  assert.deepEqual(sdpCodecs(pcma), { video: null, audio: 'PCMA' });
  assert.equal(pcma[0]?.channels, 1);
  assert.deepEqual(sdpCodecs(parseSdp('v=0\r\nm=audio 0 RTP/AVP 14\r\n')), { video: null, audio: 'MP3' });
});

test('encoding names: HEVC, MP4A-LATM, opus, VP8, case-insensitive; unknown ones give null', () => {
  const one = (kind: string, rtpmap: string) => sdpCodecs(parseSdp(`v=0\r\nm=${kind} 0 RTP/AVP 96\r\na=rtpmap:96 ${rtpmap}\r\n`));
  assert.deepEqual(one('video', 'HEVC/90000'), { video: 'H265', audio: null });
  assert.deepEqual(one('video', 'h264/90000'), { video: 'H264', audio: null });
  assert.deepEqual(one('video', 'VP8/90000'), { video: 'VP8', audio: null });
  assert.deepEqual(one('audio', 'MP4A-LATM/44100/2'), { video: null, audio: 'AAC' });
  assert.deepEqual(one('audio', 'opus/48000/2'), { video: null, audio: 'OPUS' });
  assert.deepEqual(one('audio', 'G726-32/8000'), { video: null, audio: null });
  assert.deepEqual(one('video', 'MP4V-ES/90000'), { video: null, audio: null });
});

test('several payload types in one section: the first with a known mapping is taken', () => {
  const sdp = crlf(['v=0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111 0', 'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'm=video 9 RTP/AVP 97 96', 'a=rtpmap:96 H264/90000']);
  const media = parseSdp(sdp);
  assert.equal(media[0]?.payloadType, 111);
  assert.deepEqual(media[0]?.fmtp, { minptime: '10', useinbandfec: '1' });
  assert.equal(media[1]?.payloadType, 96, 'pt 97 has no rtpmap');
  assert.deepEqual(sdpCodecs(media), { video: 'H264', audio: 'OPUS' });
});

test('no sections, garbage or an empty answer give no media', () => {
  assert.deepEqual(parseSdp(''), []);
  assert.deepEqual(parseSdp('<html>404</html>'), []);
  assert.deepEqual(sdpCodecs(parseSdp('v=0\r\ns=-\r\nt=0 0\r\n')), { video: null, audio: null });
  assert.deepEqual(parseSdp('v=0\r\nm=video 0 RTP/AVP\r\n'), [], 'a section without a payload type');
});

test('one parser, one rule on case (RFC 4566): attribute names are case-sensitive, encoding names are not', () => {
  const sdp = crlf(['v=0', 'm=video 9 RTP/AVP 96 97', 'a=sendonly', 'A=RTPMAP:96 H264/90000', 'a=rtpmap:97 h264/90000', 'a=fmtp:97 Packetization-Mode=1']);
  // the RTSP view (an RTSP client) and the WHIP view (an offer) read the same sections
  const rtsp = parseSdp(sdp);
  assert.equal(rtsp[0]?.payloadType, 97, '"A=RTPMAP" is not an rtpmap attribute');
  assert.deepEqual(sdpCodecs(rtsp), { video: 'H264', audio: null }, '"h264" is H.264');
  assert.deepEqual(rtsp[0]?.fmtp, { 'packetization-mode': '1' });
  const offer = parseSdpMedia(sdp);
  assert.deepEqual(offer?.[0]?.codecs.map((c) => `${c.payloadType} ${c.name}`), ['97 h264']);
  assert.deepEqual(parseSdpSections(sdp).map((m) => [m.kind, m.direction, m.formats.length]), [['video', 'sendonly', 2]]);
  // base64 parameter sets keep their "=" padding in both views
  const sprop = 'packetization-mode=1;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==';
  assert.equal(fmtpParams(sprop).get('sprop-parameter-sets'), 'Z0IAH5WoFAFuQA==,aM48gA==');
  assert.equal(parseSdp(crlf(['v=0', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', `a=fmtp:96 ${sprop}`]))[0]?.fmtp['sprop-parameter-sets'], 'Z0IAH5WoFAFuQA==,aM48gA==');
});

test('parseSdpSession: the session-level a=control (the first, before any m= line) apart from each section\'s', () => {
  const sdp = crlf(['v=0', 's=-', 'a=control:rtsp://cam/live', 'a=control:ignored', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=control:trackID=1']);
  const s = parseSdpSession(sdp);
  assert.equal(s.control, 'rtsp://cam/live');
  assert.deepEqual(s.media.map((m) => m.control), ['trackID=1']);
  assert.equal(parseSdpSession(crlf(['v=0', 'm=video 0 RTP/AVP 96', 'a=control:trackID=1'])).control, '', 'none at session level');
});
