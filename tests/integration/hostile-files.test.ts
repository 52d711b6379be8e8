import assert from 'node:assert/strict';
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeClip, probe } from '../helpers/media';
import { waitFor } from '../helpers/proc';
import { baseConf, type Service, startService } from '../helpers/service';

// Issue 18 (files, cuts, answers): what an attacker with a client, or with write access to mp4_cutter_dir, tried.

const MARKER = `EDGEREC-HOSTILE-${process.pid}-${Date.now()}`;
const QUOTA = 3 * 1024 * 1024;

let s: Service;
let dir = '';
let cutDir = '';
let secret = ''; // a file outside record_dir and mp4_cutter_dir
let serviceLog = '';
let src120 = '';

interface Got {
  status: number;
  body: Buffer;
  headers: Headers;
}

async function get(path: string): Promise<Got> {
  const r = await fetch(`${s.base}${path}`);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

/** Sum of the sizes of the files in a folder (hidden partial files included). */
function folderBytes(d: string): number {
  return readdirSync(d).reduce((n, f) => {
    const st = lstatSync(join(d, f));
    return n + (st.isFile() ? st.size : 0);
  }, 0);
}

/** An answer that is a playable MP4 with video, not the secret. */
async function assertPlayableCut(g: Got, what: string): Promise<number> {
  assert.equal(g.status, 200, `${what}: ${g.body.toString().slice(0, 300)}`);
  assert.ok(!g.body.includes(MARKER), `${what}: served the file outside`);
  const f = join(dir, `got-${Date.now()}-${Math.random()}.mp4`);
  writeFileSync(f, g.body);
  const p = await probe(f);
  rmSync(f);
  assert.ok(p.streams.some((x) => x.codec_type === 'video'), `${what}: a video stream`);
  return Number(p.format.duration);
}

function assertNoPath(g: Got, what: string): void {
  const text = g.body.toString('utf8');
  assert.ok(!text.includes(dir) && !/"\/(tmp|home|var|work|root|etc)\//.test(text) && !text.includes('/records/'), `${what}: an absolute path in ${text.slice(0, 300)}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerec-hostile-files-'));
  cutDir = join(dir, 'cuts');
  const [small, long] = await Promise.all([
    makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180' }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 120, size: '320x180' }),
  ]);
  src120 = long;
  s = await startService({ dir, conf: `mp4_cutter_dir=${cutDir}\nmp4_cutter_max_bytes=${QUOTA}\n` });
  for (const n of ['V.mp4', 'B.mp4', 'H.mp4', 'S.mp4']) copyFileSync(small, join(s.recordDir, n));
  copyFileSync(long, join(s.recordDir, 'long.mp4'));
  secret = join(dir, 'secret.mp4');
  serviceLog = join(dir, 'service.log');
  writeFileSync(secret, `${MARKER} outside record_dir\n`.repeat(100));
  writeFileSync(serviceLog, `{"msg":"${MARKER} the service log"}\n`.repeat(100));
  // newer than any source, so that a check on the link target's mtime would take them for fresh cuts
  const future = Date.now() / 1000 + 3600;
  utimesSync(secret, future, future);
  utimesSync(serviceLog, future, future);
  mkdirSync(cutDir, { recursive: true });
});

after(async () => {
  await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a symlink planted at a cut path in mp4_cutter_dir is not served; the cut is rebuilt beside it; planted files and hard links neither', async () => {
  // form 1: <base>-s<S>-e<E>.mp4 in mp4_cutter_dir → a file outside
  const planted = join(cutDir, 'V-s1-e3.mp4');
  symlinkSync(secret, planted);
  const g = await get('/client/records/V.mp4?start=1&end=3');
  const d = await assertPlayableCut(g, 'V?start=1&end=3');
  assert.ok(d > 1 && d <= 3.2, `cut duration ${d}`);
  assert.equal(readlinkSync(planted), secret, 'the planted link is left alone');
  assert.match(String(g.headers.get('content-disposition')), /filename="V-s1-e3~1\.mp4"/);
  // again: now from the cache, still not the link
  await assertPlayableCut(await get('/client/records/V.mp4?start=1&end=3'), 'V again');

  // a regular file planted (not made by edgerec), and a hard link to a file outside
  writeFileSync(join(cutDir, 'H-s1-e3.mp4'), `${MARKER} planted regular file`);
  await assertPlayableCut(await get('/client/records/H.mp4?start=1&end=3'), 'H: planted regular file');
  linkSync(secret, join(cutDir, 'S-s1-e3.mp4'));
  await assertPlayableCut(await get('/client/records/S.mp4?start=1&end=3'), 'S: planted hard link');

  // a cut edgerec made, then swapped for a symlink: not served, rebuilt
  const first = await get('/client/records/V.mp4?start=0.5&end=2');
  await assertPlayableCut(first, 'V 0.5-2');
  const made = join(cutDir, 'V-s0.5-e2.mp4');
  assert.ok(lstatSync(made).isFile());
  rmSync(made);
  symlinkSync(secret, made);
  await assertPlayableCut(await get('/client/records/V.mp4?start=0.5&end=2'), 'V 0.5-2 after the swap');
  // swapped for another regular file of the same size: not ours either
  const again = join(cutDir, 'V-s0.5-e2~1.mp4');
  const size = statSync(again).size;
  rmSync(again);
  writeFileSync(again, Buffer.concat([Buffer.from(MARKER), Buffer.alloc(size - MARKER.length)]));
  await assertPlayableCut(await get('/client/records/V.mp4?start=0.5&end=2'), 'V 0.5-2 after a same-size swap');
});

test('mp4_cutter_dir = record_dir: B-e5.mp4 → the service log is not served by B.mp4?end=5 nor directly', async () => {
  s.writeConf(`${baseConf(dir)}mp4_cutter_max_bytes=${QUOTA}\n`);
  await waitFor('mp4_cutter_dir = record_dir', () => s.logs().some((l) => l.msg === 'config applied' && JSON.stringify(l.changed).includes('mp4_cutter_dir')), 10_000, 50);
  symlinkSync(serviceLog, join(s.recordDir, 'B-e5.mp4'));
  const b = await get('/client/records/B.mp4?end=5');
  await assertPlayableCut(b, 'B?end=5');
  assert.match(String(b.headers.get('content-disposition')), /filename="B-e5~1\.mp4"/);
  assert.ok(existsSync(join(s.recordDir, 'B-e5~1.mp4')), 'the cut is in record_dir');
  const direct = await get('/client/records/B-e5.mp4');
  assert.equal(direct.status, 404, 'the planted link itself is not served');
  assert.ok(!direct.body.includes(MARKER));
  s.writeConf(`${baseConf(dir)}mp4_cutter_dir=${cutDir}\nmp4_cutter_max_bytes=${QUOTA}\n`);
  await waitFor('mp4_cutter_dir = cuts again', () => s.logs().filter((l) => l.msg === 'config applied' && JSON.stringify(l.changed).includes('mp4_cutter_dir')).length >= 2, 10_000, 50);
});

test('100 distinct cut requests: the cut cache stays within mp4_cutter_max_bytes; ?start/?end rounded to 0.1 s', async () => {
  // a folder of its own: the files planted by the tests above are not the cache's and stay where they are
  cutDir = join(dir, 'cuts-quota');
  const applied = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(`${baseConf(dir)}mp4_cutter_dir=${cutDir}\nmp4_cutter_max_bytes=${QUOTA}\n`);
  await waitFor('the new mp4_cutter_dir', () => s.logs().filter((l) => l.msg === 'config applied').length > applied && existsSync(cutDir), 10_000, 50);
  let maxSeen = 0;
  for (let k = 0; k < 100; k++) {
    const g = await get(`/client/records/long.mp4?start=${k}&end=${k + 4}`);
    assert.equal(g.status, 200, `start=${k}: ${g.body.toString().slice(0, 200)}`);
    maxSeen = Math.max(maxSeen, folderBytes(cutDir));
    assert.ok(folderBytes(cutDir) <= QUOTA, `after start=${k}: ${folderBytes(cutDir)} bytes in the cut folder, quota ${QUOTA}`);
  }
  assert.ok(maxSeen > QUOTA / 2, `the test filled the cache (${maxSeen} bytes)`);
  assert.ok(s.logs().some((l) => l.msg === 'cut removed' || l.msg === 'mp4 cut made'), 'cuts were made');
  // the most recent cut is still there, the oldest went (LRU)
  assert.ok(existsSync(join(cutDir, 'long-s99-e103.mp4')));
  assert.ok(!existsSync(join(cutDir, 'long-s0-e4.mp4')));

  // 100 requests that differ below 0.1 s: one file
  const before = readdirSync(cutDir).length;
  for (let k = 0; k < 100; k++) {
    const q = `start=${(10 + k / 2000).toFixed(4)}&end=${(14 + k / 2000).toFixed(4)}`;
    const g = await get(`/client/records/long.mp4?${q}`);
    assert.equal(g.status, 200, q);
    assert.match(String(g.headers.get('content-disposition')), /filename="long-s10-e14\.mp4"/, q);
  }
  assert.ok(readdirSync(cutDir).length <= before + 1, 'at most one new file');

  // in parallel: every answer a cut or a clear 503, the quota held
  const all = await Promise.all(Array.from({ length: 40 }, (_, k) => get(`/client/records/long.mp4?start=${k + 0.5}&end=${k + 3.5}`)));
  for (const g of all) assert.ok(g.status === 200 || (g.status === 503 && /cuts are being made/.test(g.body.toString())), `${g.status} ${g.body.toString().slice(0, 200)}`);
  assert.ok(all.filter((g) => g.status === 200).length >= 10);
  assert.ok(folderBytes(cutDir) <= QUOTA, `after the parallel burst: ${folderBytes(cutDir)}`);

  const h = await s.json('/rest-api/health');
  const cache = (h.body as { cutCache?: { files: number; bytes: number; maxBytes: number } }).cutCache;
  assert.ok(cache && cache.bytes <= QUOTA && cache.maxBytes === QUOTA && cache.files > 0, JSON.stringify(cache));

  // a cut larger than the whole cache: 422 naming the key
  const big = await get('/client/records/long.mp4?start=1');
  assert.equal(big.status, 422, big.body.toString());
  assert.match(big.body.toString(), /mp4_cutter_max_bytes/);
  assertNoPath(big, 'too large');
});

test('client mistakes are 4xx with a message and no path: empty and bad ranges', async () => {
  const cases: Array<[string, number, RegExp]> = [
    ['V.mp4?end=0', 400, /range is empty: end \(0\) must be after start \(0\)/],
    ['V.mp4?end=1e-300', 400, /range is empty/],
    ['V.mp4?start=0.04&end=0.04', 400, /range is empty/],
    ['V.mp4?start=2&end=1.96', 400, /range is empty/],
    ['V.mp4?start=3&end=2', 400, /must be after start/],
    ['V.mp4?start=1e400', 400, /start: seconds/],
    ['V.mp4?end=0x10', 400, /end: seconds/],
    ['V.mp4?start=%20', 400, /start: seconds/],
    ['V.mp4?start=50', 400, /beyond the end of V\.mp4/],
  ];
  await expectErrors(cases);
});

test('a damaged, truncated or empty MP4 asked for a cut: 422 naming what is wrong, no path', async () => {
  const whole = readFileSync(src120);
  writeFileSync(join(s.recordDir, 'truncated.mp4'), whole.subarray(0, 200_000)); // moov last (ffmpeg): no moov at all
  writeFileSync(join(s.recordDir, 'junk.mp4'), Buffer.from('not an mp4 at all, only text'.repeat(10)));
  writeFileSync(join(s.recordDir, 'empty.mp4'), Buffer.alloc(0));
  await expectErrors([
    ['truncated.mp4?start=1&end=2', 422, /cannot be cut.*reason: no moov box/],
    ['junk.mp4?start=1&end=2', 422, /cannot be cut/],
    ['empty.mp4?end=2', 422, /cannot be cut/],
  ]);
});

test('a 250-byte recording name can be cut (the cut name is shortened to leave room for its suffix)', async () => {
  const long = `${'n'.repeat(246)}.mp4`;
  copyFileSync(join(s.recordDir, 'V.mp4'), join(s.recordDir, long));
  const g = await get(`/client/records/${long}?start=1&end=3`);
  assertNoPath(g, 'a 250-byte name');
  await assertPlayableCut(g, 'a 250-byte name');
  const cd = String(g.headers.get('content-disposition'));
  const name = /filename="([^"]+)"/.exec(cd)?.[1] ?? '';
  assert.ok(Buffer.byteLength(name) <= 250 && name.startsWith('nnnn') && name.endsWith('-s1-e3.mp4'), name);
});

test('a 1 MB name or value is not echoed back whole', async () => {
  const huge = 'x'.repeat(1_000_000);
  const f = await s.post('/rest-api/stream/find', { name: huge });
  assert.equal(f.status, 404);
  assert.ok(JSON.stringify(f.body).length < 1000, `find echo: ${JSON.stringify(f.body).length} characters`);
  assert.match(JSON.stringify(f.body), /xxxx…\(1000000 characters\)/);
  const rot = await s.post('/rest-api/stream/startRecording', { mediaSessionId: 'x', config: { rotation: huge.slice(0, 900_000) } });
  assert.equal(rot.status, 400);
  assert.ok(JSON.stringify(rot.body).length < 1000, `rotation echo: ${JSON.stringify(rot.body).length} characters`);
});

async function expectErrors(cases: Array<[string, number, RegExp]>): Promise<void> {
  for (const [q, status, re] of cases) {
    const g = await get(`/client/records/${q}`);
    const text = g.body.toString();
    assert.equal(g.status, status, `${q}: ${text.slice(0, 300)}`);
    assert.match((JSON.parse(text) as { error: string }).error, re, q);
    assertNoPath(g, q);
  }
}
