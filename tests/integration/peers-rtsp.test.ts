import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeClip } from '../helpers/media';
import { checkPeerFile } from '../helpers/peer-file';
import { start, waitFor, type Proc } from '../helpers/proc';
import { download, type RecordingRow } from '../helpers/recorded-file';
import { ROOT, type Service, startService } from '../helpers/service';
import { startVlcCamera } from '../helpers/vlc-camera';

// Issue 12 (real peers): cameras nobody here wrote, pulled by rtspsrc (UDP, or rtsp_client=gstreamer) and joined
// wherever their stream stands. Every file: starts on a keyframe, decodes cleanly, as long as the wall time it
// covers, named from real times.

const work = mkdtempSync(join(tmpdir(), 'edgerec-peers-rtsp-'));
const TEMPLATE = 'stream_record_policy_template={streamName}-{startTimeMillis}-{endTimeMillis}\n';

/** Every row of a stream (the camera goes on recording: one row stays `recording`). */
async function allRows(s: Service, name: string): Promise<RecordingRow[]> {
  const r = await s.json(`/rest-api/recordings?stream=${name}&limit=100`);
  assert.equal(r.status, 200);
  return (r.body as { recordings: RecordingRow[] }).recordings;
}

test('VLC 3.0 as an RTSP camera over UDP, a B-frame clip joined mid-GOP: every file clean and named from real times', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 40, size: '320x240', gop: 50, bframes: true });
  const vlc = await startVlcCamera(clip);
  t.after(() => vlc.stop());
  const s = await startService({ conf: `${TEMPLATE}record_rotation=4\ncamera.vlc.url=${vlc.url}\ncamera.vlc.transport=udp\n` });
  t.after(() => s.stop());
  await waitFor(
    'three complete files from VLC',
    async () => {
      const r = await s.json('/rest-api/recordings?stream=vlc&limit=100');
      return r.status === 200 && (r.body as { recordings: RecordingRow[] }).recordings.filter((x) => x.state === 'complete').length >= 3;
    },
    60_000,
    250,
  );
  const cams = (await s.post('/rest-api/stream/find', { name: 'vlc' })).body as Record<string, unknown>[];
  assert.equal(cams[0]?.client, 'gstreamer', 'a UDP camera is pulled by rtspsrc');
  const rows = (await allRows(s, 'vlc')).filter((r) => r.state === 'complete');
  for (const row of rows.slice(0, 3)) {
    assert.ok(row.url);
    const facts = await checkPeerFile(await download(s.base, row.url, work), row);
    assert.deepEqual(facts.tracks, ['audio:aac', 'video:h264']);
  }
  const failed = (await allRows(s, 'vlc')).filter((r) => r.state === 'failed');
  assert.deepEqual(failed.map((r) => r.fileName), [], 'no failed rows');
});

/** tests/helpers/live-rtsp-server.py: a shared live mount (x264enc with B-frames, 2 s GOP, + AAC). */
async function startLiveServer(): Promise<{ url: string; proc: Proc }> {
  const proc = start('/usr/bin/python3', [join(ROOT, 'tests', 'helpers', 'live-rtsp-server.py'), '--port', '0']);
  const port = await waitFor('the live RTSP server', () => {
    if (proc.child.exitCode !== null) assert.fail(`live-rtsp-server exited: ${proc.output()}`);
    return /READY/.test(proc.output()) ? Number(/PORT (\d+)/.exec(proc.output())?.[1]) : 0;
  }, 15_000, 50);
  return { url: `rtsp://127.0.0.1:${port}/live`, proc };
}

for (const client of ['gstreamer', 'edgerec'] as const) {
test(`a live RTSP mount joined mid-GOP (rtsp_client=${client}): every file starts on a keyframe with its audio, and decodes`, async (t) => {
  const live = await startLiveServer();
  t.after(() => live.proc.stop('SIGKILL'));
  // a first viewer starts the shared live media; edgerec joins 1.3 s later, mid-GOP (2 s GOP)
  const viewer = start('ffmpeg', ['-v', 'error', '-rtsp_transport', 'tcp', '-i', live.url, '-t', '60', '-f', 'null', '-']);
  t.after(() => viewer.stop('SIGKILL'));
  await new Promise((r) => setTimeout(r, 1300));
  const s = await startService({ conf: `${TEMPLATE}rtsp_client=${client}\nrecord_rotation=4\ncamera.mid.url=${live.url}\n` });
  t.after(() => s.stop());
  await waitFor(
    'two complete files',
    async () => {
      const r = await s.json('/rest-api/recordings?stream=mid&limit=100');
      return r.status === 200 && (r.body as { recordings: RecordingRow[] }).recordings.filter((x) => x.state === 'complete').length >= 2;
    },
    60_000,
    250,
  );
  const view = ((await s.post('/rest-api/stream/find', { name: 'mid' })).body as Record<string, unknown>[])[0];
  assert.equal(view?.client, client);
  const rows = (await allRows(s, 'mid')).sort((a, b) => a.start - b.start);
  assert.deepEqual(rows.filter((r) => r.state === 'failed').map((r) => [r.fileName, r.error]), [], 'no failed rows');
  for (const row of rows.filter((r) => r.state === 'complete').slice(0, 2)) {
    assert.ok(row.url);
    const facts = await checkPeerFile(await download(s.base, row.url, work), row);
    assert.deepEqual(facts.tracks, ['audio:aac', 'video:h264']);
  }
});
}
