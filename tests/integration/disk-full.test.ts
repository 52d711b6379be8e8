import assert from 'node:assert/strict';
import { existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { freeBytes, tmpfsUnder } from '../helpers/tmpfs';
import { rtmpPort, startService } from '../helpers/service';
import type { RecordingRow as Row } from '../helpers/recorded-file';

// A record_dir on a tiny tmpfs: a full disk stops new files cleanly, shows in health,
// keeps every fragment in tmp, and recording resumes by itself when space returns.

interface Health {
  diskErrors?: { waitingForSpace: number; last: { error: string } | null };
}

test('record_dir fills up: no crash, no corrupt file, the error in health, fragments kept and finalized once space returns', async (t) => {
  const fs = await tmpfsUnder(t, 'edgerec-full-', 'records', '4m');
  if (!fs) return;
  const { dir, mount: records } = fs;
  // Leave ~1.2 MB: a few 2 s fragments fit, then the disk is full. Retention is off so only we free space.
  const filler = join(records, 'filler.bin');
  writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(records) - 1_200_000)));
  const s = await startService({ dir, conf: 'record_rotation=2\nrecord_min_free_percent=0\nstream_record_policy_template={streamName}-{startTimeMillis}\n' });
  t.after(() => s.stop('SIGKILL'));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s)}/live/full`]);
  t.after(() => pub.stop('SIGKILL'));

  const health = async () => (await s.json('/rest-api/health')).body as Health;
  const rows = async () => ((await s.json('/rest-api/recordings?limit=1000')).body as { recordings: Row[] }).recordings;
  const h = await waitFor('health to show a fragment waiting for space', async () => {
    const x = await health();
    return (x.diskErrors?.waitingForSpace ?? 0) > 0 ? x : null;
  }, 40_000, 250);
  assert.match(h.diskErrors?.last?.error ?? '', /no space/i, 'health names the error');
  const stuck = await rows();
  assert.ok(stuck.some((r) => r.state === 'finalizing' && /waiting for space/.test(r.error ?? '')), 'the row stays finalizing and says why');
  assert.deepEqual(stuck.filter((r) => r.state === 'failed'), [], 'nothing failed for lack of space');
  const doneBefore = stuck.filter((r) => r.state === 'complete');
  assert.ok(doneBefore.length >= 1, 'some fragments were finalized before the disk filled');
  // Finished files are whole; a failed remux left nothing half-written in record_dir.
  for (const r of doneBefore) assert.equal(await decodeErrors(join(records, r.fileName)), '', `${r.fileName} decodes`);
  assert.deepEqual(readdirSync(records).filter((f) => f.startsWith('.')), [], 'no partial files in record_dir');
  assert.ok(s.logs().some((l) => l.msg === 'no space to finalize; the fragment stays in tmp and is retried'), 'the log says it');
  assert.equal(s.proc.child.exitCode, null, 'the service is still running');

  // Space returns: the waiting fragments and later ones finalize by themselves.
  unlinkSync(filler);
  const waited = stuck.filter((r) => r.state === 'finalizing').map((r) => r.fileName);
  await waitFor('the waiting fragments to finalize', async () => {
    const rs = await rows();
    return waited.every((n) => rs.some((r) => r.state === 'complete' && r.fileName.startsWith(n.replace(/\.mp4$/, ''))));
  }, 30_000, 250);
  const later = await waitFor('a later fragment to finalize', async () => {
    const rs = await rows();
    return rs.filter((r) => r.state === 'complete').length > stuck.filter((r) => r.state !== 'recording').length + 1 ? rs : null;
  }, 30_000, 250);
  assert.equal((await health()).diskErrors?.waitingForSpace, 0, 'nothing waits for space any more');
  await pub.stop('SIGKILL');
  await s.stop();
  const final = later.filter((r) => r.state === 'complete');
  for (const r of final) assert.ok(existsSync(join(records, r.fileName)), `${r.fileName} is in record_dir`);
  for (const r of final.slice(-3)) await probe(join(records, r.fileName));
  assert.deepEqual(readdirSync(s.tmpDir), [], 'every fragment left tmp after the graceful stop');
});
