import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { answer, fakeCamera } from '../helpers/fake-rtsp-camera';
import { startService } from '../helpers/service';

// Issue 12 (real peers) item 5: a camera that answers SETUP with 461 (VLC does, to TCP interleaved) for a minute
// leaves no row and no file, counts its attempts with a growing delay, shows why in find_all and health, and is
// never "back" since no media flowed.

/** H.264 only, with its parameter sets: a camera edgerec's own client takes (rtsp_client=edgerec). */
const SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=refuser', 't=0 0', 'a=control:*', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==', 'a=control:trackID=1', ''].join('\r\n');

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'edgerec.db') : []);

test('a camera answering SETUP with 461 for a minute: no row, no tmp file, attempts counted, the reason shown', async (t) => {
  const cam = await fakeCamera(t, (req, peer, c) => {
    if (req.method === 'DESCRIBE') answer(peer, req, 200, { 'Content-Base': `rtsp://127.0.0.1:${c.port}/base/`, 'Content-Type': 'application/sdp' }, SDP);
    else if (req.method === 'SETUP') answer(peer, req, 461);
    else answer(peer, req, 200);
  });
  const s = await startService({ conf: `rtsp_reconnect_min_delay=0.5\nrtsp_reconnect_max_delay=4\ncamera.refuse.url=${cam.url}\n` });
  t.after(() => s.stop());
  const deadline = Date.now() + 60_000;
  let peakTmp = 0;
  while (Date.now() < deadline) {
    peakTmp = Math.max(peakTmp, files(s.tmpDir).length);
    const r = await s.json('/rest-api/recordings?stream=refuse&limit=10');
    assert.deepEqual((r.body as { recordings: unknown[] }).recordings, [], 'no row, ever');
    await new Promise((res) => setTimeout(res, 1000));
  }
  const setups = cam.peers.flatMap((p) => p.requests).filter((q) => q.method === 'SETUP').length;
  assert.ok(setups >= 8, `the camera was tried again and again (${setups} SETUPs)`);
  assert.ok(setups <= 60, `with a growing delay, not in a tight loop (${setups} SETUPs in 60 s)`);
  const view = ((await s.post('/rest-api/stream/find', { name: 'refuse' })).body as Record<string, unknown>[])[0] ?? {};
  assert.equal(view.client, 'edgerec', 'rtsp_client=edgerec (the default) is what it shows');
  assert.ok(Number(view.reconnectAttempts) >= 8, `attempts counted: ${JSON.stringify(view)}`);
  assert.match(String(view.lastError), /461/, 'the reason is in find_all');
  assert.notEqual(view.status, 'connected');
  const health = (await s.json('/rest-api/health')).body as { cameras: Record<string, { lastError: string; reconnectAttempts: number }> };
  assert.match(health.cameras.refuse?.lastError ?? '', /461/, 'and in health');
  assert.equal(s.logs().filter((l) => l.msg === 'camera back').length, 0, '"camera back" only when media flows');
  assert.deepEqual(files(s.tmpDir), [], 'no tmp file left');
  assert.deepEqual(files(s.recordDir), [], 'no file in record_dir');
  assert.ok(peakTmp <= 1, `at most the one empty muxer file of the attempt in progress (${peakTmp})`);
});
