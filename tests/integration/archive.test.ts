import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  allArchived,
  allRows,
  archiveConf,
  archiveHealth,
  createBucket,
  fileMd5,
  listMultipart,
  listObjects,
  md5,
  objectMd5,
  publishRtmp,
  swiftForFile,
} from '../helpers/archive';
import { makeClip, probe } from '../helpers/media';
import { type Proc, waitFor } from '../helpers/proc';
import { baseConf, rtmpPort, startService } from '../helpers/service';
import { SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY } from '../helpers/swift';

// Issue 16: finished files go to a real S3-compatible store (OpenStack Swift + s3api) and stay readable at their URL.

const swift = swiftForFile();

function mediaFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.(mp4|ts|webm)$/.test(f) && !f.startsWith('.')) : [];
}

test('3 RTMP publishers, rotation 5 s, 30 s: every file in the bucket under its key, byte-identical, rows archived; keep_local_days=0 then serves them from the bucket', async (t) => {
  await createBucket(swift.s3, 'main');
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 30 });
  const extra = 'stream_record_policy_template={streamName}\nrecord_rotation=5\n';
  const s = await startService({ conf: extra + archiveConf(swift.store, 'main') });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const pubs: Proc[] = ['cam1', 'cam2', 'cam3'].map((n) => publishRtmp(port, n, clip));
  t.after(() => Promise.all(pubs.map((p) => p.stop('SIGKILL'))));
  await Promise.all(pubs.map((p) => p.exited));

  const rows = await allArchived(s, 15, 90_000);
  // The last fragments finish when the publishers are gone: wait for the count to settle.
  await new Promise((r) => setTimeout(r, 2000));
  const settled = await allArchived(s, rows.length, 60_000);
  const objects = await listObjects(swift.s3, 'main');
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const localMd5 = new Map<string, string>();
  for (const r of settled) {
    const want = `testbox/${r.stream}/${day(r.start)}/${r.fileName}`;
    assert.equal(r.archive?.key, want, `key of ${r.fileName}`);
    assert.equal(r.archive?.local, true);
    const local = join(s.recordDir, r.fileName);
    const sum = fileMd5(local);
    localMd5.set(r.fileName, sum);
    assert.equal(objects.get(want), r.bytes, `size of ${want} in the bucket`);
    assert.equal(await objectMd5(swift.s3, 'main', want), sum, `${want} is byte-identical to ${r.fileName}`);
  }
  assert.equal(objects.size, settled.length, `one object per file, no other: ${[...objects.keys()].join(', ')}`);
  for (const n of ['cam1', 'cam2', 'cam3']) assert.ok(settled.filter((r) => r.stream === n).length >= 5, `${n} has ≥ 5 files of 5 s`);
  assert.deepEqual(await listMultipart(swift.s3, 'main'), []);
  const h = await archiveHealth(s);
  assert.equal(h.status, 'ok');
  assert.equal(h.backlog.files, 0);
  const metrics = (await s.json('/metrics')).body as string;
  assert.match(metrics, new RegExp(`^edgerec_archive_uploaded_files_total ${settled.length}$`, 'm'));
  assert.match(metrics, /^edgerec_archive_backlog_files 0$/m);
  assert.equal(JSON.stringify(h).includes('testing'), false, 'the secret is not in health');

  // archive_keep_local_days=0, applied live: the archived local copies go, their rows and URLs stay.
  s.writeConf(baseConf(s.dir) + extra + archiveConf(swift.store, 'main', { archive_keep_local_days: 0 }));
  await waitFor('the local copies to be deleted', () => mediaFiles(s.recordDir).length === 0, 20_000, 200);
  const gone = await allRows(s);
  assert.equal(gone.length, settled.length, 'every row kept');
  assert.ok(gone.every((r) => r.archive?.state === 'archived' && r.archive.local === false));
  const first = settled[0];
  assert.ok(first);
  const whole = await fetch(`${s.base}/client/records/${encodeURIComponent(first.fileName)}`);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('x-edgerec-source'), 'archive');
  assert.equal(whole.headers.get('content-type'), 'video/mp4');
  const body = new Uint8Array(await whole.arrayBuffer());
  assert.equal(body.length, first.bytes);
  assert.equal(md5(body), localMd5.get(first.fileName), 'whole file from the bucket is the recorded file');
  const ranged = await fetch(`${s.base}/client/records/${encodeURIComponent(first.fileName)}`, { headers: { Range: 'bytes=100-1123' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 100-1123/${first.bytes}`);
  const part = new Uint8Array(await ranged.arrayBuffer());
  assert.deepEqual(part, body.subarray(100, 1124));
  const head = await fetch(`${s.base}/client/records/${encodeURIComponent(first.fileName)}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(first.bytes));
  const cut = await fetch(`${s.base}/client/records/${encodeURIComponent(first.fileName)}?start=1&end=3`);
  assert.equal(cut.status, 200, await cut.clone().text().catch(() => ''));
  const cutName = /filename="([^"]+)"/.exec(cut.headers.get('content-disposition') ?? '')?.[1] ?? '';
  assert.match(cutName, /-s1-e3\.mp4$/);
  const cutBytes = new Uint8Array(await cut.arrayBuffer());
  assert.ok(cutBytes.length > 1000 && cutBytes.length < first.bytes, `cut size ${cutBytes.length}`);
  const p = await probe(join(s.recordDir, cutName));
  const dur = Number(p.format.duration);
  assert.ok(dur >= 1.5 && dur <= 3.6, `cut duration ${dur}`);
  const missing = await fetch(`${s.base}/client/records/nope.mp4`);
  assert.equal(missing.status, 404);

  // Archiving switched off: a file only in the archive is a clear 502, not a 404 nor a crash.
  const applied = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(baseConf(s.dir) + extra);
  await waitFor('the edit to apply', () => s.logs().filter((l) => l.msg === 'config applied').length > applied, 10_000, 100);
  const off = await s.json(`/client/records/${encodeURIComponent(first.fileName)}`);
  assert.equal(off.status, 502);
  const err = off.body as { code: string; error: string };
  assert.equal(err.code, 'ARCHIVE_UNAVAILABLE');
  assert.match(err.error, /only in the archive.*archive_s3_/);
  assert.equal(err.error.includes(s.dir), false, 'no absolute path in the answer');
  const stillListed = await allRows(s);
  assert.equal(stillListed.find((r) => r.id === first.id)?.archive?.state, 'archived', 'archived rows still show their archive part');
});

test('wrong secret: a clear error in health within 10 s, logged once, nothing deleted locally; fixed by a config edit', async (t) => {
  await createBucket(swift.s3, 'wrongsecret');
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const extra = 'stream_record_policy_template={streamName}\nrecord_rotation=2\n';
  const bad = archiveConf(swift.store, 'wrongsecret', { archive_s3_secret_key: 'not-the-secret' });
  const s = await startService({ conf: extra + bad });
  t.after(() => s.stop());
  const t0 = Date.now();
  const h = await waitFor('a misconfiguration in health', async () => {
    const a = await archiveHealth(s);
    return a.status === 'misconfigured' ? a : null;
  }, 10_000, 200);
  assert.ok(Date.now() - t0 < 10_000);
  assert.match(h.lastError?.message ?? '', /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|403/);
  assert.equal(JSON.stringify(h).includes('not-the-secret'), false, 'the secret is not shown');
  const port = await rtmpPort(s);
  const pub = publishRtmp(port, 'cam', clip);
  t.after(() => pub.stop('SIGKILL'));
  await pub.exited;
  const rows = await waitFor('finished rows', async () => {
    const r = await allRows(s);
    return r.length >= 2 && r.every((x) => x.state === 'complete') ? r : null;
  }, 30_000, 250);
  // archive_keep_local_days=0 while nothing could be archived: retention runs at once on the edit and deletes nothing.
  const applied = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(baseConf(s.dir) + extra + archiveConf(swift.store, 'wrongsecret', { archive_s3_secret_key: 'not-the-secret', archive_keep_local_days: 0 }));
  await waitFor('the edit to apply', () => s.logs().filter((l) => l.msg === 'config applied').length > applied, 10_000, 100);
  await waitFor('a retention pass after the edit', async () => {
    const r = (await s.json('/rest-api/health')).body as { retention: { lastRun: { at: number } | null } };
    return (r.retention.lastRun?.at ?? 0) > Date.now() - 3000;
  }, 10_000, 200);
  await new Promise((r) => setTimeout(r, 6000)); // a few probe rounds with the bad secret
  assert.equal(mediaFiles(s.recordDir).length, rows.length, 'nothing deleted locally');
  assert.ok((await allRows(s)).every((r) => r.archive?.state !== 'archived'));
  const errLogs = s.logs().filter((l) => l.component === 'archive' && l.level === 50);
  assert.equal(errLogs.length, 1, `logged once per change: ${JSON.stringify(errLogs)}`);
  assert.equal(s.proc.output().includes('not-the-secret'), false, 'the secret is never logged');
  assert.equal((await objectsIn('wrongsecret')).size, 0);

  // The right secret, applied live: the backlog drains, and each verified file then leaves the disk (keep 0).
  s.writeConf(baseConf(s.dir) + extra + archiveConf(swift.store, 'wrongsecret', { archive_keep_local_days: 0 }));
  const done = await allArchived(s, rows.length, 60_000);
  assert.equal((await objectsIn('wrongsecret')).size, done.length);
  assert.equal((await archiveHealth(s)).status, 'ok');
  await waitFor('the local copies to go once archived', () => mediaFiles(s.recordDir).length === 0, 10_000, 100);
});

async function objectsIn(bucket: string): Promise<Map<string, number>> {
  return listObjects(swift.s3, bucket);
}

test('no such bucket: shown in health and the log at once', async (t) => {
  const s = await startService({ conf: archiveConf(swift.store, 'no-such-bucket') });
  t.after(() => s.stop());
  const h = await waitFor('a misconfiguration in health', async () => {
    const a = await archiveHealth(s);
    return a.status === 'misconfigured' ? a : null;
  }, 10_000, 200);
  assert.match(h.lastError?.message ?? '', /NoSuchBucket/);
  await waitFor('the log line', () => s.logs().some((l) => l.component === 'archive' && l.level === 50 && String(l.reason).includes('NoSuchBucket')), 5000, 100);
});

test('archive_s3_credentials_file: the keys come from the file (a systemd credential), never from the log', async (t) => {
  await createBucket(swift.s3, 'credfile');
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-cred-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cred = join(dir, 's3.credentials');
  writeFileSync(cred, `# systemd LoadCredential\naccess_key = ${SWIFT_ACCESS_KEY}\nsecret_key = ${SWIFT_SECRET_KEY}\n`);
  const conf = archiveConf(swift.store, 'credfile', { archive_s3_access_key: '', archive_s3_secret_key: '', archive_s3_credentials_file: cred });
  const s = await startService({ conf });
  t.after(() => s.stop());
  const h = await waitFor('the store to answer', async () => {
    const a = await archiveHealth(s);
    return a.status === 'ok' ? a : null;
  }, 10_000, 200);
  assert.equal(h.configError, null);
  assert.equal(s.proc.output().includes(SWIFT_SECRET_KEY), false, 'the secret is never logged');
  // A file without the secret: the misconfiguration names the key and what the file must hold.
  writeFileSync(cred, `access_key=${SWIFT_ACCESS_KEY}\n`);
  s.writeConf(baseConf(s.dir) + archiveConf(swift.store, 'credfile', { archive_s3_access_key: '', archive_s3_secret_key: '', archive_s3_credentials_file: cred, archive_concurrency: 3 }));
  const bad = await waitFor('the misconfiguration', async () => {
    const a = await archiveHealth(s);
    return a.status === 'misconfigured' ? a : null;
  }, 10_000, 200);
  assert.match(String(bad.configError), /archive_s3_credentials_file: it must hold secret_key=/);
  // The file fixed, no config edit: picked up by itself within a few seconds.
  writeFileSync(cred, `access_key=${SWIFT_ACCESS_KEY}\nsecret_key=${SWIFT_SECRET_KEY}\n`);
  await waitFor('the fixed credentials to be used', async () => (await archiveHealth(s)).status === 'ok', 15_000, 200);
});
