import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaStreamTrack, RTCPeerConnection, useVP8 } from 'werift';
import { publishWhip } from '../helpers/whip-client';
import { startService } from '../helpers/service';

// Issue 18 item 9 (WHIP part): offers are bounded, and one slow offer does not delay the others.

/** A real offer (werift, one VP8 m-line, all candidates), with its one media section repeated `n` times, unbundled. */
async function offerWithSections(n: number): Promise<string> {
  const pc = new RTCPeerConnection({ codecs: { video: [useVP8()] }, iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] });
  try {
    pc.addTransceiver(new MediaStreamTrack({ kind: 'video' }), { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, 5000);
      pc.iceGatheringStateChange.subscribe((s) => s === 'complete' && (clearTimeout(timer), resolve()));
    });
    const sdp = (pc.localDescription?.sdp ?? '').replace(/\r\n/g, '\n');
    const at = sdp.indexOf('\nm=') + 1;
    const session = sdp.slice(0, at).replace(/^a=group:BUNDLE.*\n/m, '');
    const section = sdp.slice(at);
    const sections = Array.from({ length: n }, (_, i) => section.replace(/^a=mid:.*$/m, `a=mid:${i}`));
    return (session + sections.join('')).replace(/\n/g, '\r\n');
  } finally {
    await pc.close();
  }
}

test('a WHIP offer with 100 m-lines is refused fast with a clear 400; a normal offer beside it is answered promptly', async (t) => {
  const s = await startService({ conf: 'webrtc_ice_port_range=43000-43999\n' });
  t.after(() => s.stop());
  const big = await offerWithSections(100);
  assert.equal(big.match(/^m=/gm)?.length, 100);

  const post = async (name: string, sdp: string) => {
    const t0 = Date.now();
    const r = await fetch(`${s.base}/whip/${name}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: sdp });
    return { status: r.status, text: await r.text(), ms: Date.now() - t0 };
  };
  let normalMs = -1;
  const [refused, client] = await Promise.all([
    post('many', big),
    publishWhip({
      video: 'vp8',
      audio: true,
      offerTo: async (sdp) => {
        const r = await post('normal', sdp);
        normalMs = r.ms;
        assert.equal(r.status, 201, r.text);
        return r.text;
      },
    }),
  ]);
  t.after(() => client.close());
  t.diagnostic(`100 m-lines refused in ${refused.ms} ms; the normal offer answered in ${normalMs} ms`);
  assert.equal(refused.status, 400, refused.text);
  assert.match(refused.text, /100 media sections.*allowed: up to 8 \(webrtc_max_media_sections\)/);
  assert.ok(refused.ms < 1000, `refused in ${refused.ms} ms`);
  assert.ok(normalMs >= 0 && normalMs < 2000, `the normal offer answered in ${normalMs} ms`);
});

test('ICE gathering runs in parallel: a 60-m-line offer (allowed by config) does not delay a normal one; no port is given twice', async (t) => {
  const s = await startService({ conf: 'webrtc_ice_port_range=44000-44999\nwebrtc_max_media_sections=64\n' });
  t.after(() => s.stop());
  const slowOffer = await offerWithSections(60);
  const small = await Promise.all(Array.from({ length: 4 }, () => offerWithSections(2)));
  const post = async (name: string, sdp: string) => {
    const t0 = Date.now();
    const r = await fetch(`${s.base}/whip/${name}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: sdp });
    return { status: r.status, text: await r.text(), ms: Date.now() - t0 };
  };
  const slow = post('slow', slowOffer);
  await new Promise((r) => setTimeout(r, 300)); // the slow one is gathering by now
  const others = await Promise.all(small.map((sdp, i) => post(`quick${i}`, sdp)));
  const big = await slow;
  t.diagnostic(`60 m-lines answered in ${big.ms} ms; 4 small offers beside it in ${others.map((o) => o.ms).join(', ')} ms`);
  for (const a of [big, ...others]) assert.equal(a.status, 201, a.text);
  for (const o of others) assert.ok(o.ms < 2000, `a small offer answered in ${o.ms} ms while the slow one gathered (${big.ms} ms)`);
  // every host candidate port of every answer is its own: no two sessions were given the same port
  const ports = [big, ...others].flatMap((a) => [...a.text.matchAll(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/gm)].map((m) => Number(m[1])));
  assert.ok(ports.length >= 64, `candidates on 127.0.0.1: ${ports.length}`);
  assert.equal(new Set(ports).size, ports.length, `distinct ports: ${ports.join(',')}`);
  assert.ok(ports.every((p) => p >= 44000 && p <= 44999), 'inside webrtc_ice_port_range');
});
