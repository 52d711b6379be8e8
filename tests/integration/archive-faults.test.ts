import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allArchived,
  allRows,
  archiveConf,
  archiveHealth,
  assertBucketMatches,
  bigClip,
  createBucket,
  listMultipart,
  publishRtmp,
  swiftForFile,
} from '../helpers/archive';
import { makeClip } from '../helpers/media';
import { waitFor } from '../helpers/proc';
import { alive, descendantPids, rtmpPort, type Service, startService } from '../helpers/service';
import { launchChromium } from '../helpers/chromium';

// Issue 16, faults: the store dies mid-upload or is down all along, edgerec dies or stops mid-upload.

const swift = swiftForFile();

const ROTATE_10 = 'stream_record_policy_template={streamName}\nrecord_rotation=10\n';

type Upload = { file: string; key: string; bytes: number; sentBytes: number };

/** An upload in flight that has sent more than `bytes` (from health). */
function uploadPast(s: Service, bytes: number, timeoutMs: number): Promise<Upload> {
  return waitFor(
    `an upload past ${bytes} bytes`,
    async () => ((await archiveHealth(s)).uploading as Upload[]).find((u) => u.sentBytes > bytes) ?? null,
    timeoutMs,
    100,
  );
}

/** SIGKILL the service and every process under it (a power cut for edgerec alone). */
async function killService(s: Service): Promise<void> {
  const pids = [s.proc.pid, ...descendantPids(s.proc.pid)];
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await s.proc.exited;
  await waitFor('the service tree to die', () => pids.every((p) => !alive(p)), 5000, 20);
}

test('the store down for the whole recording: recording goes on, the backlog grows in health, and drains when the store returns', async (t) => {
  await createBucket(swift.s3, 'down');
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 12 });
  await swift.store.kill();
  const s = await startService({ conf: 'stream_record_policy_template={streamName}\nrecord_rotation=3\n' + archiveConf(swift.store, 'down') });
  t.after(() => s.stop());
  const pub = publishRtmp(await rtmpPort(s), 'cam', clip);
  t.after(() => pub.stop('SIGKILL'));
  const seen: number[] = [];
  const until = Date.now() + 60_000;
  while (pub.child.exitCode === null && Date.now() < until) {
    const h = await archiveHealth(s);
    seen.push(h.backlog.files);
    assert.notEqual(h.status, 'ok');
    await new Promise((r) => setTimeout(r, 1000));
  }
  await pub.exited;
  const rows = await waitFor('finished rows', async () => {
    const r = await allRows(s);
    return r.length >= 3 && r.every((x) => x.state === 'complete') ? r : null;
  }, 30_000, 250);
  const h = await archiveHealth(s);
  assert.equal(h.status, 'unreachable');
  assert.equal(h.backlog.files, rows.length, 'every file waits in the backlog');
  assert.ok(h.backlog.bytes > 0 && h.backlog.oldestMs !== null);
  assert.ok(seen.some((n, i) => i > 0 && n > (seen[0] ?? 0)), `the backlog grew while recording: ${seen.join(',')}`);
  assert.equal(rows.every((r) => r.archive?.state !== 'archived'), true);
  // The installer's page shows the backlog.
  const chrome = await launchChromium();
  t.after(() => chrome.close());
  const ctx = chrome.browser.contexts()[0] ?? (await chrome.browser.newContext());
  const page = await ctx.newPage();
  await page.goto(`${s.base}/`);
  await page.waitForFunction(`(document.getElementById('archive')?.textContent ?? '').includes('backlog ${rows.length} files')`, null, { timeout: 10_000 });
  assert.match((await page.textContent('#archive')) ?? '', /archive unreachable · backlog \d+ files, [\d.]+ MB, oldest \d+ s/);
  await chrome.close();

  await swift.store.restart();
  const done = await allArchived(s, rows.length, 90_000);
  await assertBucketMatches(swift.s3, 'down', done, s.recordDir);
  const after = await archiveHealth(s);
  assert.equal(after.backlog.files, 0);
  assert.equal(after.status, 'ok');
});

test('the store SIGKILLed in the middle of a multipart upload, back 20 s later: every file archived once, no orphaned multipart upload, no duplicate key', async (t) => {
  await createBucket(swift.s3, 'mpu');
  const clip = await bigClip();
  const s = await startService({ conf: ROTATE_10 + archiveConf(swift.store, 'mpu', { archive_max_bandwidth: 3_000_000, archive_concurrency: 1 }) });
  t.after(() => s.stop());
  const pub = publishRtmp(await rtmpPort(s), 'big', clip);
  t.after(() => pub.stop('SIGKILL'));
  const up = await uploadPast(s, 9 * 1024 * 1024, 60_000);
  assert.ok(up.bytes > 8 * 1024 * 1024, `a multipart-sized file (${up.bytes} bytes)`);
  const open = await listMultipart(swift.s3, 'mpu');
  assert.ok(open.some((u) => u.key === up.key), `a multipart upload of ${up.key} is open: ${JSON.stringify(open)}`);
  await swift.store.kill();
  const killedAt = Date.now();
  await waitFor('health to show the store unreachable', async () => (await archiveHealth(s)).status === 'unreachable', 15_000, 200);
  await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - killedAt))));
  await swift.store.restart();
  await pub.exited;
  const rows = await waitFor('finished rows', async () => {
    const r = await allRows(s);
    return r.length >= 2 && r.every((x) => x.state === 'complete') ? r : null;
  }, 30_000, 250);
  const done = await allArchived(s, rows.length, 120_000);
  await assertBucketMatches(swift.s3, 'mpu', done, s.recordDir);
  const retried = done.find((r) => r.archive?.key === up.key);
  assert.ok(retried && retried.archive && retried.archive.attempts >= 2, `the interrupted file was retried: ${JSON.stringify(retried)}`);
  assert.ok(s.logs().some((l) => l.msg === 'aborted unfinished multipart uploads of an earlier attempt'), 'the orphaned upload was aborted');
});

test('edgerec SIGKILLed mid-upload: after a restart the upload resumes under the same key, once', async (t) => {
  await createBucket(swift.s3, 'crash');
  const clip = await bigClip();
  const conf = ROTATE_10 + archiveConf(swift.store, 'crash', { archive_max_bandwidth: 2_000_000, archive_concurrency: 1 });
  const s1 = await startService({ conf });
  t.after(() => s1.stop('SIGKILL'));
  const pub = publishRtmp(await rtmpPort(s1), 'big', clip);
  t.after(() => pub.stop('SIGKILL'));
  const up = await uploadPast(s1, 9 * 1024 * 1024, 60_000);
  await killService(s1);
  await pub.stop('SIGKILL');
  assert.ok((await listMultipart(swift.s3, 'crash')).some((u) => u.key === up.key), 'the killed upload left a multipart upload open');

  const s2 = await startService({ dir: s1.dir });
  t.after(() => s2.stop());
  assert.ok(s2.logs().some((l) => String(l.msg).startsWith('archive uploads interrupted')), 'the interrupted upload went back to the queue');
  const rows = await waitFor('finished rows', async () => {
    const r = await allRows(s2);
    return r.length >= 1 && r.every((x) => x.state === 'complete' || x.state === 'recovered') ? r : null;
  }, 60_000, 250);
  const done = await allArchived(s2, rows.length, 120_000);
  await assertBucketMatches(swift.s3, 'crash', done, s2.recordDir);
  const resumed = done.find((r) => r.fileName === up.file);
  assert.equal(resumed?.archive?.key, up.key, 'same key after the restart');
});

test('a graceful stop while uploading ends within record_stop_timeout; the upload finishes after the next start', async (t) => {
  await createBucket(swift.s3, 'stop');
  const clip = await bigClip();
  const conf = ROTATE_10 + 'record_stop_timeout=4\n' + archiveConf(swift.store, 'stop', { archive_max_bandwidth: 1_000_000, archive_concurrency: 2 });
  const s1 = await startService({ conf });
  t.after(() => s1.stop('SIGKILL'));
  const pub = publishRtmp(await rtmpPort(s1), 'big', clip);
  t.after(() => pub.stop('SIGKILL'));
  await uploadPast(s1, 1_000_000, 60_000);
  const t0 = Date.now();
  await s1.proc.stop('SIGTERM', 30_000);
  const took = Date.now() - t0;
  t.diagnostic(`stopped in ${took} ms with uploads running`);
  assert.ok(took <= 4000, `stopped in ${took} ms (record_stop_timeout=4 s)`);
  assert.equal((await s1.proc.exited).code, 0);
  await pub.stop('SIGKILL');
  const s2 = await startService({ dir: s1.dir });
  t.after(() => s2.stop());
  const rows = await waitFor('finished rows', async () => {
    const r = await allRows(s2);
    return r.length >= 1 && r.every((x) => x.state === 'complete' || x.state === 'recovered') ? r : null;
  }, 60_000, 250);
  s2.writeConf(s2.confPath ? (await import('node:fs')).readFileSync(s2.confPath, 'utf8').replace('archive_max_bandwidth=1000000', 'archive_max_bandwidth=0') : '');
  const done = await allArchived(s2, rows.length, 120_000);
  await assertBucketMatches(swift.s3, 'stop', done, s2.recordDir);
});
