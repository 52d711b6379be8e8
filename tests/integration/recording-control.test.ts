import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeClip } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { rtmpPort, startService } from '../helpers/service';

// Issue 18 item 2: recording control is serialized per media session.

type Json = Record<string, unknown>;

test('10 concurrent startRecording then a stopRecording: one recording, then 0 pipelines and 0 recording rows within 5 s', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '320x180', gop: 25 });
  const s = await startService({ conf: 'record_flash_published_streams=false\nstream_record_policy_template={streamName}-{startTimeMillis}\n' });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/race`]);
  t.after(() => pub.stop('SIGKILL'));

  const stream = await waitFor(
    'the publisher to be live',
    async () => {
      const r = await s.post('/rest-api/stream/find', { name: 'race' });
      return r.status === 200 ? ((r.body as Json[]).find((x) => x.status === 'publishing') ?? null) : null;
    },
    20_000,
    100,
  );
  const id = String(stream.mediaSessionId);
  const pipelines = async () => {
    const h = (await s.json('/rest-api/health')).body as { mediaHosts: { pipelines: number }[] };
    return h.mediaHosts.reduce((n, x) => n + x.pipelines, 0);
  };
  const recordingRows = async () => {
    const r = await s.json('/rest-api/recordings?stream=race&state=recording&limit=1000');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body as { recordings: { mediaSessionId: string }[] }).recordings.filter((x) => x.mediaSessionId === id).length;
  };
  assert.equal(await pipelines(), 0, 'record_flash_published_streams=false: nothing records before the calls');

  const starts = await Promise.all(Array.from({ length: 10 }, () => s.post('/rest-api/stream/startRecording', { mediaSessionId: id })));
  assert.deepEqual(
    starts.map((r) => r.status),
    Array(10).fill(200),
  );
  // Exactly one recording is left running, and it is the one the manager lists.
  const running = await s.post('/rest-api/recorder/find_all');
  assert.equal(running.status, 200, JSON.stringify(running.body));
  assert.equal((running.body as Json[]).filter((x) => x.mediaSessionId === id).length, 1, JSON.stringify(running.body));
  assert.equal(await pipelines(), 1, 'one pipeline for the one recording');

  const stop = await s.post('/rest-api/stream/stopRecording', { mediaSessionId: id });
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  const t0 = Date.now();
  await waitFor('0 pipelines and 0 recording rows', async () => (await pipelines()) === 0 && (await recordingRows()) === 0, 5000, 100);
  t.diagnostic(`stopped in ${Date.now() - t0} ms`);
  assert.equal((await s.post('/rest-api/recorder/find_all')).status, 404, 'no recording listed');
  // Still none a few seconds later (an orphan would keep writing and open new rows).
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await pipelines(), 0);
  assert.equal(await recordingRows(), 0);
  // The publisher is still live: a new start works and a stop ends it again.
  assert.equal((await s.post('/rest-api/stream/startRecording', { mediaSessionId: id })).status, 200);
  assert.equal((await s.post('/rest-api/stream/stopRecording', { mediaSessionId: id })).status, 200);
  await waitFor('0 pipelines after the second stop', async () => (await pipelines()) === 0, 5000, 100);
  // The periodic reconciliation never took a pipeline that belonged to a recording.
  const h = (await s.json('/rest-api/health')).body as { orphanPipelinesStopped: number };
  assert.equal(h.orphanPipelinesStopped, 0);
});
