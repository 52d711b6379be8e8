import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { type Service, alive, descendantPids, rtmpPort, startService } from '../helpers/service';

// Issue 13 item 4: a SIGKILL of the whole service (media hosts included) while an RTMP publisher records loses at
// most 1 s of what the publisher sent (its own progress output), at a 4 s GOP. Without the write-ahead the muxer
// still holds the GOP in progress and the fragment in progress: killed 3.5 s into a 4 s GOP, 3.5–4.5 s are lost.

const CONF = 'stream_record_policy_template={streamName}-{startTimeMillis}\nrecord_rotation=600\n';
const GOP_S = 4;
/** killed 3.5 s into the GOP that starts at 12 s of published media */
const KILL_AT_S = 15.5;

interface Row { stream: string; state: string; fileName: string }

async function rows(s: Service): Promise<Row[]> {
  const r = await s.json('/rest-api/recordings?limit=1000');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings;
}

const sidecars = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.wal-'));

test('SIGKILL of the whole service recording an RTMP publisher (GOP 4 s): the recovered file is within 1 s of what was sent', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '640x360', gop: 25 * GOP_S });
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-crash-loss-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s1 = await startService({ dir, conf: CONF });
  t.after(() => s1.stop('SIGKILL'));
  let outS = 0;
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-progress', 'pipe:1', '-stats_period', '0.1', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s1)}/live/loss`]);
  t.after(() => pub.stop('SIGKILL'));
  pub.child.stdout?.on('data', (b: Buffer) => {
    for (const m of b.toString().matchAll(/out_time_us=(\d+)/g)) outS = Number(m[1]) / 1e6;
  });
  await waitFor('the recording', async () => (await rows(s1)).some((r) => r.stream === 'loss' && r.state === 'recording'), 20_000, 100);
  // the sidecar is bounded while recording: at most record_write_ahead_seconds (8) files of 1 s per track
  let most = 0;
  await waitFor(`${KILL_AT_S} s published`, () => {
    most = Math.max(most, sidecars(s1.tmpDir).length);
    return outS >= KILL_AT_S;
  }, KILL_AT_S * 1000 + 30_000, 20);
  // 15 s recorded: 1 s files, of which the newest 8 per track are kept
  assert.ok(most >= 12, `the write-ahead is written in 1 s sidecar files in record_tmp_dir (saw at most ${most} at once)`);
  assert.ok(most <= 2 * 8, `at most 8 sidecar files per track are kept (saw ${most})`);
  // power cut: freeze the whole tree (nothing can react), read what the publisher had sent, SIGKILL the tree
  const pids = [s1.proc.pid, ...descendantPids(s1.proc.pid)];
  for (const p of pids) process.kill(p, 'SIGSTOP');
  const sentS = outS;
  for (const p of pids) process.kill(p, 'SIGKILL');
  await pub.stop('SIGKILL');
  await waitFor('the service tree gone', () => pids.every((p) => !alive(p)), 5000, 20);

  const s2 = await startService({ dir, conf: CONF });
  t.after(() => s2.stop());
  const done = await waitFor('recovery', async () => {
    const rs = (await rows(s2)).filter((r) => r.stream === 'loss');
    return rs.length > 0 && rs.every((r) => r.state === 'recovered' || r.state === 'complete' || r.state === 'failed') ? rs : null;
  }, 60_000, 200);
  assert.deepEqual(done.map((r) => r.state), ['recovered'], 'one file, recovered');
  const file = join(s2.recordDir, (done[0] as Row).fileName);
  const p = await probe(file);
  assert.deepEqual(p.streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  const recoveredS = Number(p.format.duration);
  const video = p.streams.find((x) => x.codec_type === 'video');
  const audio = p.streams.find((x) => x.codec_type === 'audio');
  t.diagnostic(`sent ${sentS.toFixed(2)} s, recovered ${recoveredS.toFixed(2)} s (video ${video?.duration} s, audio ${audio?.duration} s)`);
  assert.ok(Math.abs(sentS - recoveredS) <= 1, `recovered ${recoveredS.toFixed(2)} s of the ${sentS.toFixed(2)} s the publisher sent: more than 1 s apart`);
  assert.ok(Math.abs(Number(video?.duration) - Number(audio?.duration)) <= 0.5, `the tracks end together (video ${video?.duration} s, audio ${audio?.duration} s)`);
  assert.equal(await decodeErrors(file), '', 'the recovered file decodes without errors');
  assert.ok(s2.logs().some((l) => l.msg === 'appended what the muxer held from the write-ahead'), 'the log says what was appended');
  assert.deepEqual(sidecars(s2.tmpDir), [], 'recovery removes the sidecars');

  // a recording that ends normally leaves no sidecar either
  const pub2 = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-t', '3', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s2)}/live/again`]);
  t.after(() => pub2.stop('SIGKILL'));
  await waitFor('the second recording finalized', async () => (await rows(s2)).some((r) => r.stream === 'again' && r.state === 'complete'), 60_000, 200);
  await waitFor('its sidecars removed', () => sidecars(s2.tmpDir).length === 0, 5000, 50);
});
