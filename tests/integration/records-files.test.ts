import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { cachedFile, makeClip, probe } from '../helpers/media';
import { waitFor } from '../helpers/proc';
import { baseConf, type Service, startService } from '../helpers/service';

// The file server of the real service: traversal attempts, byte ranges, conditional requests, time-range cuts.

const run = promisify(execFile);
const MARKER = `EDGEREC-SECRET-${process.pid}-${Date.now()}`;

/** Names a template can produce from a stream name: spaces, Latin-1, Cyrillic, '%', quotes. */
const UNUSUAL_NAMES = ['cam 2 (ä).mp4', 'камера-1.mp4', '100%-sure.mp4', 'say "hi".mp4'];

let s: Service;
let dir = '';
let cutDir = '';
let mp4 = ''; // a small clip in record_dir
let longMp4 = ''; // the 120 s clip in record_dir

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One request written byte for byte on a socket, so no client normalizes the path. */
function rawRequest(path: string, method = 'GET', headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(new Error(`no answer to ${method} ${path}`)), 10_000);
    sock.on('connect', () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      sock.write(Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`, 'latin1'));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP answer to ${method} ${path}: ${all.toString('latin1').slice(0, 200)}`));
      const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body: Buffer = all.subarray(end + 4);
      if (h['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers: h, body });
    });
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; i < 100_000 && off < b.length; i++) {
    const eol = b.indexOf('\r\n', off);
    const n = parseInt(b.subarray(off, eol).toString('latin1'), 16);
    if (!(n > 0)) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    off = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

/** Remux with GStreamer's mp4mux faststart (as the recorder finalizes): a plain, moov-first MP4. */
async function gstFaststart(src: string): Promise<string> {
  const name = basename(src).replace(/\.mp4$/, '-gst-fs.mp4');
  const desc = (tmp: string) => `filesrc location=${src} ! qtdemux name=d d.video_0 ! queue ! h264parse ! mp4mux name=m faststart=true ! filesink location=${tmp} d.audio_0 ! queue ! aacparse ! m.`;
  return cachedFile(name, ['gst-launch-1.0', desc('OUT')], (tmp) => run('gst-launch-1.0', ['-q', ...desc(tmp).split(' ')], { timeout: 60_000 }));
}

async function firstFrameIsKey(path: string): Promise<boolean> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_frames', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', path]);
  return stdout.trim().split(/[\n,]/)[0] === '1';
}

function cutsMade(file: string): number {
  return s.logs().filter((l) => l.msg === 'mp4 cut made' && l.file === file).length;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerec-files-'));
  cutDir = join(dir, 'cuts');
  const [small, ts, webm, long] = await Promise.all([
    makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180' }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 2, size: '320x180', container: 'ts' }),
    makeClip({ video: 'vp8', audio: 'opus', seconds: 2, size: '320x180' }),
    makeClip({ video: 'h264', audio: 'aac', seconds: 120, size: '320x180' }).then(gstFaststart),
  ]);
  s = await startService({ dir, conf: `mp4_cutter_dir=${cutDir}\n` });
  const rec = s.recordDir;
  mp4 = join(rec, 'clip.mp4');
  copyFileSync(small, mp4);
  for (const n of UNUSUAL_NAMES) copyFileSync(small, join(rec, n));
  copyFileSync(ts, join(rec, 'clip.ts'));
  copyFileSync(webm, join(rec, 'clip.webm'));
  longMp4 = join(rec, 'cam_1.mp4');
  copyFileSync(long, longMp4);
  // things that must never be served
  writeFileSync(join(dir, 'outside.mp4'), `${MARKER} outside record_dir`);
  writeFileSync(join(rec, 'secret.db'), `${MARKER} not a media file`);
  writeFileSync(join(rec, '.rec-123.part.mp4'), `${MARKER} a hidden partial file`);
  symlinkSync(join(dir, 'outside.mp4'), join(rec, 'link.mp4'));
  mkdirSync(join(rec, 'folder.mp4'));
  mkdirSync(join(rec, 'sub'));
  writeFileSync(join(rec, 'sub', 'inner.mp4'), `${MARKER} in a subfolder`);
  await waitFor('the index WAL file', () => existsSync(`${s.dir}/edgerec.db-wal`), 5000, 50);
});

after(async () => {
  await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('traversal attempts: 404 (or 400) and not one byte of the target', async () => {
  const dbName = 'edgerec.db'; // the index, next to record_dir in the test service
  const walHead = readFileSync(`${s.dir}/${dbName}-wal`).subarray(0, 16);
  const absOutside = encodeURIComponent(join(dir, 'outside.mp4'));
  const attempts = [
    `/client/records/../${dbName}`,
    `/client/records/..%2F${dbName}`,
    `/client/records/..%2f..%2f..%2fetc%2fpasswd`,
    `/client/records/%2e%2e%2f${dbName}`,
    `/client/records/%2e%2e/${dbName}`,
    `/client/records/%252e%252e%252f${dbName}`,
    `/client/records/..%255c${dbName}`,
    `/client/records/..%5C${dbName}`,
    `/client/records/..\\${dbName}`,
    `/client/records/..%5C..%5Coutside.mp4`,
    `/client/records/${absOutside}`,
    `/client/records//etc/passwd`,
    `/client/records/%2Fetc%2Fpasswd`,
    `/client/records/..%2F${dbName}-wal`,
    `/client/records/..%2F${dbName}-wal%00.mp4`,
    `/client/records/..%2Foutside.mp4`,
    `/client/records/link.mp4`,
    `/client/records/.rec-123.part.mp4`,
    `/client/records/%2Erec-123.part.mp4`,
    `/client/records/secret.db`,
    `/client/records/secret.db%00.mp4`,
    `/client/records/secret.db?.mp4`,
    `/client/records/secret.db%3F.mp4`,
    `/client/records/%c0%ae%c0%ae%c0%af${dbName}`,
    `/client/records/%c0%ae%c0%ae/outside.mp4`,
    `/client/records/%ef%bc%8e%ef%bc%8e%ef%bc%8f${dbName}`,
    `/client/records/folder.mp4`,
    `/client/records/sub`,
    `/client/records/sub%2Finner.mp4`,
    `/client/records/sub/inner.mp4`,
    `/client/records/%2e%2e`,
    `/client/records/.`,
    `/client/records/`,
    `/client/records/%`,
    `/client/records/clip.mp4/../../${dbName}`,
    `/client/records/../../../../etc/passwd`,
  ];
  assert.ok(attempts.length >= 15);
  for (const path of attempts) {
    for (const [method, headers] of [['GET', {}], ['GET', { range: 'bytes=0-' }], ['HEAD', {}]] as const) {
      const r = await rawRequest(path, method, headers);
      assert.ok(r.status === 404 || r.status === 400, `${method} ${path} ${JSON.stringify(headers)}: status ${r.status}`);
      const text = r.body.toString('latin1');
      assert.ok(!text.includes(MARKER), `${path}: the body holds a secret file's bytes`);
      assert.ok(!text.includes('SQLite format 3'), `${path}: the body holds the database`);
      assert.ok(!r.body.includes(walHead), `${path}: the body holds the WAL`);
      assert.ok(!text.includes('root:x:0:0'), `${path}: the body holds /etc/passwd`);
      assert.ok(!/^video\//.test(r.headers['content-type'] ?? ''), `${path}: served as video`);
    }
  }
  // the service is still fine, and a legitimate file still served
  assert.equal((await rawRequest('/client/records/clip.mp4', 'HEAD')).status, 200);
});

test('ranges, HEAD, ETag, If-Range, Content-Type and Content-Disposition', async () => {
  const bytes = readFileSync(mp4);
  const size = bytes.length;
  const url = `${s.base}/client/records/clip.mp4`;
  const get = async (headers: Record<string, string> = {}, path = url) => {
    const r = await fetch(path, { headers });
    return { r, body: Buffer.from(await r.arrayBuffer()) };
  };

  const whole = await get();
  assert.equal(whole.r.status, 200);
  assert.ok(whole.body.equals(bytes), 'whole file');
  assert.equal(whole.r.headers.get('content-type'), 'video/mp4');
  assert.equal(whole.r.headers.get('content-disposition'), 'inline;filename="clip.mp4"');
  assert.equal(whole.r.headers.get('accept-ranges'), 'bytes');
  assert.equal(Number(whole.r.headers.get('content-length')), size);
  const etag = String(whole.r.headers.get('etag'));
  assert.match(etag, /^"[^"]+"$/);

  const cases: [string, number, number][] = [
    ['bytes=0-99', 0, 99],
    ['bytes=100-', 100, size - 1],
    ['bytes=-100', size - 100, size - 1],
    [`bytes=${size - 10}-${size + 500}`, size - 10, size - 1],
  ];
  for (const [range, a, b] of cases) {
    const { r, body } = await get({ range });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${size}`, range);
    assert.equal(Number(r.headers.get('content-length')), b - a + 1, range);
    assert.ok(body.equals(bytes.subarray(a, b + 1)), `${range}: the file's bytes`);
  }
  for (const range of [`bytes=${size}-`, `bytes=${size + 100}-${size + 200}`, 'bytes=-0']) {
    const { r } = await get({ range });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers.get('content-range'), `bytes */${size}`, range);
  }

  const head = await rawRequest('/client/records/clip.mp4', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), size);
  assert.equal(head.headers['content-type'], 'video/mp4');
  assert.equal(head.headers.etag, etag);
  assert.equal(head.body.length, 0, 'HEAD has no body');
  const headRange = await rawRequest('/client/records/clip.mp4', 'HEAD', { range: 'bytes=0-99' });
  assert.equal(headRange.status, 206);
  assert.equal(headRange.body.length, 0);

  const cached = await get({ 'if-none-match': etag });
  assert.equal(cached.r.status, 304);
  assert.equal(cached.body.length, 0);
  assert.equal((await get({ 'if-none-match': '"other"' })).r.status, 200);
  const stale = await get({ range: 'bytes=0-99', 'if-range': '"not-the-etag"' });
  assert.equal(stale.r.status, 200, 'If-Range mismatch: the whole file');
  assert.ok(stale.body.equals(bytes));
  const fresh = await get({ range: 'bytes=0-99', 'if-range': etag });
  assert.equal(fresh.r.status, 206);
  assert.ok(fresh.body.equals(bytes.subarray(0, 100)));

  for (const [name, type] of [['clip.ts', 'video/mp2t'], ['clip.webm', 'video/webm']] as const) {
    const { r, body } = await get({}, `${s.base}/client/records/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.headers.get('content-type'), type, name);
    assert.ok(body.equals(readFileSync(join(s.recordDir, name))), name);
  }

  s.writeConf(`${baseConf(dir)}mp4_cutter_dir=${cutDir}\nrecord_response_content_disposition_header_value=attachment\n`);
  await waitFor('attachment disposition', async () => (await get()).r.headers.get('content-disposition') === 'attachment;filename="clip.mp4"', 10_000, 100);
  s.writeConf(`${baseConf(dir)}mp4_cutter_dir=${cutDir}\n`);
  await waitFor('inline disposition again', async () => (await get()).r.headers.get('content-disposition') === 'inline;filename="clip.mp4"', 10_000, 100);
});

test('unusual file names are served, with a Content-Disposition a browser can read', async () => {
  for (const n of UNUSUAL_NAMES) {
    const r = await fetch(`${s.base}/client/records/${encodeURIComponent(n)}`);
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(r.status, 200, `${n}: ${body.toString().slice(0, 200)}`);
    assert.ok(body.equals(readFileSync(mp4)), n);
    const cd = String(r.headers.get('content-disposition'));
    assert.match(cd, /^inline;filename="[\x20-\x7e]+"/, `${n}: ASCII filename first: ${cd}`);
    // RFC 6266: the exact name in filename* when the plain one had to change
    const star = /filename\*=UTF-8''(\S+)$/.exec(cd);
    const plain = /filename="((?:[^"\\]|\\.)*)"/.exec(cd)?.[1]?.replace(/\\(.)/g, '$1');
    assert.equal(star ? decodeURIComponent(star[1] ?? '') : plain, n, `${n}: the name a browser saves: ${cd}`);
  }
});

test('?start=30&end=60 of an MP4: a playable cut from a keyframe, named <base>-s30-e60.mp4, built once and reused', async () => {
  const url = `${s.base}/client/records/cam_1.mp4?start=30&end=60`;
  const r1 = await fetch(url);
  const body1 = Buffer.from(await r1.arrayBuffer());
  assert.equal(r1.status, 200);
  assert.equal(r1.headers.get('content-type'), 'video/mp4');
  assert.equal(r1.headers.get('content-disposition'), 'inline;filename="cam_1-s30-e60.mp4"');
  const cutPath = join(cutDir, 'cam_1-s30-e60.mp4');
  assert.ok(existsSync(cutPath), 'the cut is kept in mp4_cutter_dir');
  assert.equal(existsSync(join(s.recordDir, 'cam_1-s30-e60.mp4')), false, 'not in record_dir');
  const got = join(dir, 'got-30-60.mp4');
  writeFileSync(got, body1);
  const p = await probe(got);
  const d = Number(p.format.duration);
  assert.ok(d >= 30 && d <= 32, `duration ${d} s`);
  assert.deepEqual(p.streams.map((x) => x.codec_name).sort(), ['aac', 'h264']);
  assert.equal(await firstFrameIsKey(got), true, 'first frame is a keyframe');
  assert.ok(body1.length < statSync(longMp4).size / 2, 'a cut, not the whole file');
  const built = statSync(cutPath);
  assert.equal(cutsMade('cam_1-s30-e60.mp4'), 1);

  await new Promise((res) => setTimeout(res, 50)); // a rebuild would have a later mtime
  const r2 = await fetch(url);
  const body2 = Buffer.from(await r2.arrayBuffer());
  assert.equal(r2.status, 200);
  assert.ok(body2.equals(body1), 'same cut');
  const kept = statSync(cutPath);
  assert.deepEqual([kept.ino, kept.mtimeMs, kept.ctimeMs], [built.ino, built.mtimeMs, built.ctimeMs], 'served from the kept cut: same inode, never rewritten');
  assert.equal(cutsMade('cam_1-s30-e60.mp4'), 1, 'not cut again');
  const ranged = await fetch(url, { headers: { range: 'bytes=0-99' } });
  assert.equal(ranged.status, 206);
  assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(body1.subarray(0, 100)), 'ranges apply to the cut');

  const both = await Promise.all([1, 2].map(async () => {
    const r = await fetch(`${s.base}/client/records/cam_1.mp4?start=10&end=20`);
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
  }));
  assert.deepEqual(both.map((x) => x.status), [200, 200]);
  assert.ok(both[0]?.body.equals(both[1]?.body ?? Buffer.alloc(0)), 'both got the same cut');
  assert.equal(cutsMade('cam_1-s10-e20.mp4'), 1, 'two concurrent requests build it once');
  const cut10 = statSync(join(cutDir, 'cam_1-s10-e20.mp4'));
  const again = await fetch(`${s.base}/client/records/cam_1.mp4?start=10&end=20`);
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(both[0]?.body ?? Buffer.alloc(0)));
  const cut10After = statSync(join(cutDir, 'cam_1-s10-e20.mp4'));
  assert.deepEqual([cut10After.ino, cut10After.mtimeMs], [cut10.ino, cut10.mtimeMs], 'the concurrent cut is kept and reused');
  assert.deepEqual(readdirSync(cutDir).filter((f) => f.includes('s10-e20')), ['cam_1-s10-e20.mp4'], 'one cut file, no partial left');

  const startOnly = await fetch(`${s.base}/client/records/cam_1.mp4?start=100`);
  await startOnly.arrayBuffer();
  assert.equal(startOnly.status, 200);
  assert.equal(startOnly.headers.get('content-disposition'), 'inline;filename="cam_1-s100.mp4"');

  for (const q of ['start=abc', 'start=-5', 'end=1e99', 'start=60&end=30', 'start=30&end=30']) {
    const r = await fetch(`${s.base}/client/records/cam_1.mp4?${q}`);
    const b = (await r.json()) as { status: number; error: string };
    assert.equal(r.status, 400, q);
    assert.match(b.error, /start|end/, q);
  }
});

test('?start= on WebM and TS gives the whole file', async () => {
  for (const name of ['clip.webm', 'clip.ts']) {
    const r = await fetch(`${s.base}/client/records/${name}?start=1&end=2`);
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(r.status, 200, name);
    assert.ok(body.equals(readFileSync(join(s.recordDir, name))), `${name}: whole file`);
    assert.equal(r.headers.get('content-disposition'), `inline;filename="${name}"`);
  }
  assert.equal(existsSync(join(cutDir, 'clip-s1-e2.webm')) || existsSync(join(cutDir, 'clip-s1-e2.mp4')), false);
});
