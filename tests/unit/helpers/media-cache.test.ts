import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

// The media cache of the tests (needs ffmpeg): concurrent builders on an empty cache, as on a fresh machine.

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'edgerec-media-cache-'));
process.env.EDGEREC_TEST_MEDIA = dir;
type Media = typeof import('../../helpers/media');
let media: Media;

before(async () => {
  media = await import('../../helpers/media');
  assert.equal(media.MEDIA_DIR, dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under the cache, relative names. */
function files(): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

const tiny = { video: 'h264', audio: 'aac', seconds: 1, size: '160x120' } as const;

test('two concurrent makeClip calls on an empty cache share one whole file', async () => {
  const [a, b, c] = await Promise.all([media.makeClip(tiny), media.makeClip(tiny), media.makeClip(tiny)]);
  assert.equal(a, b);
  assert.equal(a, c);
  const p = await media.probe(a);
  assert.ok(Math.abs(Number(p.format.duration) - 1) < 0.2, `duration ${p.format.duration}`);
  assert.deepEqual(files().filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
});

test('makeClip from several processes at once: each gets a whole file, nothing half-written is cached', async () => {
  const opts = { ...tiny, seconds: 2 };
  const script = `require(${JSON.stringify(join(__dirname, '../../helpers/media.js'))}).makeClip(${JSON.stringify(opts)}).then((p) => process.stdout.write(p))`;
  const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, ['-e', script], { env: { ...process.env, EDGEREC_TEST_MEDIA: dir }, timeout: 120_000 })));
  const paths = new Set(outs.map((o) => o.stdout));
  assert.equal(paths.size, 1, `one cache path: ${[...paths].join(', ')}`);
  const [path = ''] = paths;
  assert.equal(await media.decodeErrors(path), '');
  assert.equal(path, await media.makeClip(opts), 'this process finds the same cached file');
  assert.deepEqual(files().filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
});

test('several processes asking for one file on an empty cache: one builds it, the others wait for it', async () => {
  const count = join(dir, 'builds.txt');
  // each build appends a line and takes a while, so that every process asks while the first one is building
  const build = `async (tmp) => { require('fs').appendFileSync(${JSON.stringify(count)}, 'x\\n'); await new Promise((r) => setTimeout(r, 1500)); require('fs').writeFileSync(tmp, 'whole'); }`;
  const script = `require(${JSON.stringify(join(__dirname, '../../helpers/media.js'))}).cachedFile('shared.bin', ['shared'], ${build}).then((p) => process.stdout.write(p))`;
  const outs = await Promise.all([1, 2, 3, 4].map(() => run(process.execPath, ['-e', script], { env: { ...process.env, EDGEREC_TEST_MEDIA: dir }, timeout: 60_000 })));
  assert.equal(new Set(outs.map((o) => o.stdout)).size, 1, 'one cache path');
  assert.equal(readFileSync(count, 'utf8'), 'x\n', 'built once');
  assert.equal(readFileSync(outs[0]?.stdout ?? '', 'utf8'), 'whole');
  assert.deepEqual(files().filter((f) => f.includes('shared') && f !== relative(dir, outs[0]?.stdout ?? '')), [], 'no lock or temporary file left');
});

test('a lock left by a builder that died is taken over', async () => {
  const first = await media.cachedFile('orphan.bin', ['orphan'], async (tmp) => run('sh', ['-c', `printf a > "${tmp}"`]));
  rmSync(first);
  // a process that held the lock and is gone (its pid no longer runs)
  const dead = await run(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  writeFileSync(`${first}.lock`, dead.stdout);
  const t0 = Date.now();
  const again = await media.cachedFile('orphan.bin', ['orphan'], async (tmp) => run('sh', ['-c', `printf b > "${tmp}"`]));
  assert.equal(again, first);
  assert.equal(readFileSync(again, 'utf8'), 'b', 'rebuilt');
  assert.ok(Date.now() - t0 < 5000, 'without waiting for the lock to time out');
  assert.ok(!existsSync(`${first}.lock`), 'lock released');
});

test('the cache key covers the arguments: other encoder options never reuse a clip', async () => {
  const a = await media.makeClip(tiny);
  const b = await media.makeClip({ ...tiny, gop: 5 });
  assert.notEqual(a, b);
  const x = await media.cachedFile('same-name.bin', ['one'], async (tmp) => run('sh', ['-c', `printf one > "${tmp}"`]));
  const y = await media.cachedFile('same-name.bin', ['two'], async (tmp) => run('sh', ['-c', `printf two > "${tmp}"`]));
  assert.notEqual(x, y, 'same name, other key, other file');
});

test('a failed or empty build caches nothing and the next call builds again', async () => {
  let calls = 0;
  await assert.rejects(
    media.cachedFile('broken.bin', ['k'], async (tmp) => {
      calls++;
      await run('sh', ['-c', `printf half > "${tmp}"; exit 3`]);
    }),
  );
  await assert.rejects(media.cachedFile('broken.bin', ['k'], async () => { calls++; }), /ENOENT/);
  await assert.rejects(media.cachedFile('broken.bin', ['k'], async (tmp) => { calls++; await run('touch', [tmp]); }), /empty file/);
  assert.equal(calls, 3);
  assert.deepEqual(files().filter((f) => f.includes('broken')), [], 'nothing cached, no temporary file left');
  const ok = await media.cachedFile('broken.bin', ['k'], async (tmp) => run('sh', ['-c', `printf whole > "${tmp}"`]));
  assert.equal(statSync(ok).size, 5);
});
