import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { decodeErrors, makeClip } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import type { RecordingRow as Row } from '../helpers/recorded-file';
import { type Service, rtmpPort, startService } from '../helpers/service';
import { freeBytes, tmpfsUnder } from '../helpers/tmpfs';

// record_tmp_dir on a small tmpfs that fills while an RTMP publisher records: the open fragment rotates early,
// new fragments go to the spill dir on record_dir's disk and come back when the tmpfs has room; a tmpfs that
// fills at once fails the muxer's write, and the recording goes on in a new file. Every fragment is kept.

const SPILL = '.edgerec-spill';

interface TmpHealth {
  tmpSpace?: { warning: string | null; spilling: boolean; spillDir: string; timesSpilled: number };
}

/** A service whose record_tmp_dir is a tmpfs of `size`, recording an RTMP publisher with 60 s rotation. */
async function setup(t: TestContext, size: string): Promise<{ s: Service; tmp: string; spill: string; stopPub: () => Promise<void> } | null> {
  const fs = await tmpfsUnder(t, 'edgerec-tmpspace-', 'tmp', size);
  if (!fs) return null;
  const { dir, mount: tmp } = fs;
  const s = await startService({ dir, conf: 'record_rotation=60\nstream_record_policy_template={streamName}-{startTimeMillis}\n' });
  t.after(() => s.stop('SIGKILL'));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s)}/live/cam`]);
  t.after(() => pub.stop('SIGKILL'));
  return { s, tmp, spill: join(s.recordDir, SPILL), stopPub: () => pub.stop('SIGINT') };
}

/** Size of the fragment being written in `dir` (a rec-* file), or 0. */
function writing(dir: string): number {
  if (!existsSync(dir)) return 0;
  // the muxer's file, not a write-ahead sidecar (`rec-….wal-v-00001`)
  const f = readdirSync(dir).find((x) => x.startsWith('rec-') && !x.includes('.wal-'));
  return f ? (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0) : 0;
}

/** Fill `dir` with a file leaving about `leave` bytes free (1 MiB writes until then or until ENOSPC). */
function fill(dir: string, leave: number): string {
  const path = join(dir, 'filler.bin');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 1);
  try {
    for (let i = 0; i < 4096 && freeBytes(dir) > leave + chunk.length; i++) writeSync(fd, chunk);
    if (leave === 0) for (let i = 0; i < 64; i++) writeSync(fd, chunk.subarray(0, Math.max(4096, Math.min(chunk.length, freeBytes(dir)))));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

async function rows(s: Service): Promise<Row[]> {
  return ((await s.json('/rest-api/recordings?stream=cam&limit=1000')).body as { recordings: Row[] }).recordings;
}

async function health(s: Service): Promise<TmpHealth> {
  return (await s.json('/rest-api/health')).body as TmpHealth;
}

/** Stop publisher and service, then: every fragment complete and decodable, one after the other without holes. */
async function checkAllKept(s: Service, stopPub: () => Promise<void>, maxGapMs: number, emptyMayFail = false, recordDir = s.recordDir): Promise<Row[]> {
  await stopPub();
  await s.stop();
  const s2 = await startService({ dir: s.dir });
  try {
    // On a full disk a muxer may stop before it wrote a whole fragment: that row fails and says so (it held nothing).
    const empty = (r: Row) => emptyMayFail && r.state === 'failed' && /no complete media box .*stopped before it wrote a whole fragment/.test(r.error ?? '');
    const listed = await rows(s2);
    const all = listed.filter((r) => !empty(r)).sort((a, b) => a.start - b.start);
    const keptForALook = listed.filter(empty).map((r) => /rec-[^ ]+\.mp4/.exec(r.error ?? '')?.[0]);
    assert.ok(all.length >= 2, `fragments: ${all.map((r) => r.state).join(' ')}`);
    assert.deepEqual(all.filter((r) => r.state !== 'complete').map((r) => `${r.fileName}: ${r.state} ${r.error}`), [], 'every fragment complete');
    for (const r of all) assert.equal(await decodeErrors(join(recordDir, r.fileName)), '', `${r.fileName} decodes`);
    for (let i = 1; i < all.length; i++) {
      const gap = (all[i]?.start ?? 0) - (all[i - 1]?.end ?? 0);
      assert.ok(gap < maxGapMs, `gap ${gap} ms between fragment ${i} and ${i + 1} (at most ${maxGapMs} ms at a switch)`);
    }
    const spill = join(recordDir, SPILL);
    const left = existsSync(spill) ? readdirSync(spill).filter((f) => !keptForALook.includes(f)) : [];
    assert.deepEqual(left, [], 'nothing left in the spill dir but the tmp files of failed rows');
    return all;
  } finally {
    await s2.stop();
  }
}

test('record_tmp_dir nearly full: the open fragment rotates early into the spill dir, and back when space returns', async (t) => {
  const x = await setup(t, '48m');
  if (!x) return;
  const { s, tmp, spill, stopPub } = x;
  await waitFor('a fragment growing in record_tmp_dir', () => writing(tmp) > 100_000, 20_000, 100);
  assert.equal((await health(s)).tmpSpace?.spilling, false, 'not spilling while the tmpfs has room');
  const filler = fill(tmp, 20 * 1024 * 1024);
  const t0 = Date.now();
  const h = await waitFor('the fragment to move to the spill dir', async () => {
    const hh = await health(s);
    return hh.tmpSpace?.spilling && writing(spill) > 0 && writing(tmp) === 0 ? hh : null;
  }, 15_000, 100);
  console.log(`nearly full: spilling after ${Date.now() - t0} ms`);
  assert.match(h.tmpSpace?.warning ?? '', /nearly full/);
  assert.ok(s.logs().some((l) => String(l.msg).startsWith('record_tmp_dir is nearly full')), 'the log says it');
  const early = await waitFor('the early fragment finalized', async () => (await rows(s)).find((r) => r.state === 'complete'), 15_000, 100);
  assert.ok((early.durationMs ?? 0) < 50_000, `rotated early: ${early.durationMs} ms of a 60 s rotation`);
  await waitFor('media in the spilled fragment', () => writing(spill) > 200_000, 15_000, 100);

  unlinkSync(filler);
  const back = await waitFor('fragments back in record_tmp_dir', async () => {
    const hh = await health(s);
    return !hh.tmpSpace?.spilling && writing(tmp) > 0 && writing(spill) === 0 ? hh : null;
  }, 15_000, 100);
  assert.equal(back.tmpSpace?.warning, null);
  assert.equal(back.tmpSpace?.timesSpilled, 1);
  await waitFor('media in record_tmp_dir again', () => writing(tmp) > 100_000, 15_000, 100);
  const all = await checkAllKept(s, stopPub, 3000);
  assert.ok(all.length >= 3, `tmp → spill → tmp: ${all.length} fragments`);
});

test('record_tmp_dir full at once: the recording survives the failed write and goes on in the spill dir', async (t) => {
  const x = await setup(t, '64m');
  if (!x) return;
  const { s, tmp, spill, stopPub } = x;
  await waitFor('a fragment growing in record_tmp_dir', () => writing(tmp) > 200_000, 20_000, 100);
  const filler = fill(tmp, 0);
  assert.ok(freeBytes(tmp) < 64 * 1024, `the tmpfs is full (${freeBytes(tmp)} bytes free)`);
  await waitFor('recording again, in the spill dir', () => writing(spill) > 200_000, 20_000, 100);
  assert.equal(s.proc.child.exitCode, null, 'the service is still running');
  const how = s.logs().some((l) => l.msg === 'pipeline failed; resuming the recording in a new file') ? 'after the muxer failed' : 'by an early rotation';
  console.log(`full tmpfs: went on in the spill dir ${how}`);
  unlinkSync(filler);
  await waitFor('fragments back in record_tmp_dir', () => writing(tmp) > 100_000 && writing(spill) === 0, 20_000, 100).catch(async (err: unknown) => {
    const logs = s.logs().filter((l) => Number(l.level) >= 40 || /rotat|spill|tmp|final|remux/.test(String(l.msg) + String(l.component)));
    throw new Error(`${String(err)}\ntmp: ${readdirSync(tmp).join(' ')} free ${freeBytes(tmp)}\nspill: ${readdirSync(spill).join(' ')}\nhealth: ${JSON.stringify((await health(s)).tmpSpace)}\nrows: ${JSON.stringify((await rows(s)).map((r) => [r.fileName, r.state, r.durationMs, r.error]))}\n${logs.map((l) => JSON.stringify(l)).join('\n').slice(-3000)}`);
  });
  // The fragment that met the full tmpfs is cut where the muxer stopped, not lost: a hole of at most ~2 s.
  await checkAllKept(s, stopPub, 4000);
});

test('one small disk for record_tmp_dir and record_dir fills: the recording stops cleanly and resumes by itself when space returns', async (t) => {
  const fs = await tmpfsUnder(t, 'edgerec-onedisk-', 'disk', '64m');
  if (!fs) return;
  const { dir, mount: disk } = fs;
  const tmp = join(disk, 'tmp');
  const records = join(disk, 'records');
  // Retention off: only the test frees space. Later lines win over the base config's folders.
  const s = await startService({
    dir,
    conf: `record_rotation=60\nrecord_min_free_percent=0\nstream_record_policy_template={streamName}-{startTimeMillis}\nrecord_dir=${records}\nrecord_tmp_dir=${tmp}\n`,
  });
  t.after(() => s.stop('SIGKILL'));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s)}/live/cam`]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor('a fragment growing in record_tmp_dir', () => writing(tmp) > 200_000, 20_000, 100);
  const filler = fill(disk, 0);
  await waitFor('the pipeline to fail for lack of space and be retried', () => s.logs().find((l) => l.msg === 'pipeline failed; resuming the recording in a new file'), 20_000, 100);
  assert.equal(s.proc.child.exitCode, null, 'the service is still running');
  unlinkSync(filler);
  await waitFor('recording again', () => writing(tmp) > 200_000 || writing(join(records, SPILL)) > 200_000, 40_000, 200);
  // The hole is the time the disk was full (a few seconds here), not more: the retry delay starts at 1 s.
  await checkAllKept(s, () => pub.stop('SIGINT'), 30_000, true, records);
});
