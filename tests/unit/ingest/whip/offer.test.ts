import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../../../src/lib/errors';
import { acceptBundleOnly, fmtpParams, parseSdpMedia, planOffer } from '../../../../src/ingest/whip/offer';

/** Shaped like Chromium's WHIP offer (trimmed): VP8, rtx, H.264 variants, AV1; Opus, red, G722, PCMU. */
const CHROME_OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=sendonly',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=sendonly',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:102 H264/90000',
  'a=rtpmap:103 H264/90000',
  'a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f',
  'a=rtpmap:45 AV1/90000',
  '',
].join('\r\n');

test('parseSdpMedia reads kinds, directions, codecs in m= order with their fmtp (before or after rtpmap)', () => {
  const media = parseSdpMedia(CHROME_OFFER);
  assert.ok(media);
  assert.deepEqual(media.map((m) => [m.kind, m.direction, m.port]), [['audio', 'sendonly', 9], ['video', 'sendonly', 9]]);
  assert.deepEqual(media[1]?.codecs.map((c) => c.name), ['VP8', 'rtx', 'H264', 'H264', 'AV1']);
  assert.equal(media[1]?.codecs[2]?.fmtp, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f');
  assert.deepEqual(media[0]?.codecs[0], { payloadType: 111, name: 'opus', clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' });
  assert.equal(parseSdpMedia('hello'), null);
  assert.equal(parseSdpMedia('v=0\r\ns=-\r\n'), null);
});

test('planOffer keeps VP8/H.264 and Opus in the publisher order', () => {
  const plan = planOffer(CHROME_OFFER);
  assert.deepEqual(plan.video.map((c) => `${c.name}/${c.payloadType}`), ['VP8/96', 'H264/102', 'H264/103']);
  assert.deepEqual(plan.audio.map((c) => c.payloadType), [111]);
});

test('planOffer refusals name what was offered and what is accepted', () => {
  const refuse = (sdp: string, re: RegExp) =>
    assert.throws(() => planOffer(sdp), (e: unknown) => e instanceof AppError && e.code === 'BAD_REQUEST' && re.test(e.message));
  refuse('', /empty/);
  refuse('garbage', /not an SDP/);
  refuse(CHROME_OFFER.replace(/a=rtpmap:96 VP8[\s\S]*?(?=a=rtpmap:45)/, '').replace(/a=rtpmap:111 opus\/48000\/2/, 'a=rtpmap:111 L16/48000/2'), /offered: audio \[L16, G722, PCMU, PCMA\], video \[AV1\]\]; accepted: VP8 or H\.264 video, Opus audio/);
  refuse(CHROME_OFFER.replace(/a=sendonly/g, 'a=recvonly'), /sends no media/);
  refuse('v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n', /no audio or video section \(it has: application\)/);
});

test('planOffer: static payload type 0 without rtpmap is PCMU', () => {
  assert.throws(() => planOffer('v=0\r\nm=audio 9 RTP/AVP 0\r\na=sendonly\r\n'), /audio \[PCMU\]/);
});

test('fmtpParams', () => {
  assert.deepEqual([...fmtpParams('Profile-Level-Id=42e01f; packetization-mode=1')], [['profile-level-id', '42e01f'], ['packetization-mode', '1']]);
});

test('a max-bundle offer (webrtcbin): the bundle-only audio m-line is accepted and given the bundle port', () => {
  const offer = ['v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE video0 audio1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:video0', 'a=sendonly', 'a=rtpmap:96 VP8/90000',
    'm=audio 0 UDP/TLS/RTP/SAVPF 111', 'a=bundle-only', 'a=mid:audio1', 'a=sendonly', 'a=rtpmap:111 OPUS/48000/2',
    'm=audio 0 UDP/TLS/RTP/SAVPF 0', 'a=bundle-only', 'a=mid:audio2', 'a=sendonly', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
  const plan = planOffer(offer);
  assert.equal(plan.audio[0]?.name, 'OPUS', 'the bundle-only Opus section is recorded');
  assert.deepEqual(plan.rejected, ['audio m-line 2 (mid audio2): only the first audio section is recorded']);
  const fixed = acceptBundleOnly(offer);
  assert.match(fixed, /\r\nm=audio 9 UDP\/TLS\/RTP\/SAVPF 111\r\n/);
  assert.ok(!fixed.includes('a=bundle-only'));
  assert.ok(fixed.includes('\r\nm=video 9 '), 'the rest is untouched');
});
