import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { log } from '../../../src/lib/log';
import { Finalizer } from '../../../src/recorder/finalize';
import { waitFor } from '../../helpers/proc';

const quiet = log.child({ component: 'finalize-test' }, { level: 'silent' });

function tempDir(t: { after: (fn: () => void) => void }, parent = tmpdir()): string {
  const d = mkdtempSync(join(parent, 'edgerec-fin-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function makeSrc(dir: string, name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

test('same file system: the file is moved (same inode), the tmp file is gone, nothing hidden is left', async (t) => {
  const tmp = tempDir(t);
  const rec = join(tmp, 'records');
  const src = makeSrc(tmp, 'seg-00001.mp4', 'media bytes');
  const ino = statSync(src).ino;
  const f = new Finalizer({ concurrency: 2, log: quiet });
  const res = await f.finalize({ src, dst: join(rec, 'cam1_1.mp4') });
  assert.deepEqual(res, { path: join(rec, 'cam1_1.mp4'), bytes: 11 });
  assert.equal(statSync(res.path).ino, ino);
  assert.equal(readFileSync(res.path, 'utf8'), 'media bytes');
  assert.equal(existsSync(src), false);
  assert.deepEqual(readdirSync(rec), ['cam1_1.mp4']);
});

test('other file system (/dev/shm → /tmp): copied through a hidden partial, synced, tmp file removed', async (t) => {
  if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(tmpdir()).dev) {
    t.skip('/dev/shm and the temp folder are on the same file system here');
    return;
  }
  const shm = tempDir(t, '/dev/shm');
  const rec = tempDir(t);
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const src = makeSrc(shm, 'seg.ts', data);
  const f = new Finalizer({ concurrency: 1, log: quiet });
  const res = await f.finalize({ src, dst: join(rec, 'cam.ts') });
  assert.equal(res.path, join(rec, 'cam.ts'));
  assert.equal(res.bytes, data.length);
  assert.ok(readFileSync(res.path).equals(data));
  assert.notEqual(statSync(res.path).dev, statSync(shm).dev);
  assert.equal(existsSync(src), false);
  assert.deepEqual(readdirSync(rec), ['cam.ts']);
});

test('an existing file is never overwritten: <base>(1).<ext>, (2)…', async (t) => {
  const tmp = tempDir(t);
  const dst = join(tmp, 'rec', 'lobby.mp4');
  const f = new Finalizer({ concurrency: 4, log: quiet });
  await f.finalize({ src: makeSrc(tmp, 'a', 'first'), dst });
  const [r1, r2] = await Promise.all([
    f.finalize({ src: makeSrc(tmp, 'b', 'second'), dst }),
    f.finalize({ src: makeSrc(tmp, 'c', 'third'), dst }),
  ]);
  assert.equal(readFileSync(dst, 'utf8'), 'first');
  assert.deepEqual([basename(r1.path), basename(r2.path)].sort(), ['lobby(1).mp4', 'lobby(2).mp4']);
  assert.deepEqual([readFileSync(r1.path, 'utf8'), readFileSync(r2.path, 'utf8')].sort(), ['second', 'third']);
  // a 255-byte name stays within 255 bytes with its (N)
  const long = join(tmp, 'rec', `${'x'.repeat(251)}.mp4`);
  await f.finalize({ src: makeSrc(tmp, 'd', '1'), dst: long });
  const r3 = await f.finalize({ src: makeSrc(tmp, 'e', '2'), dst: long });
  assert.equal(basename(r3.path), `${'x'.repeat(248)}(1).mp4`);
});

test('transform writes a hidden partial in the destination folder; the result gets the final name', async (t) => {
  const tmp = tempDir(t);
  const rec = join(tmp, 'records');
  const src = makeSrc(tmp, 'seg.mkv', 'raw media');
  let seen = '';
  const f = new Finalizer({ concurrency: 1, log: quiet });
  const res = await f.finalize({
    src,
    dst: join(rec, 'out.mp4'),
    transform: async (from, to) => {
      seen = to;
      await writeFile(to, (await readFile(from, 'utf8')).toUpperCase());
    },
  });
  assert.equal(dirname(seen), rec);
  assert.ok(basename(seen).startsWith('.') && seen.endsWith('.part'), seen);
  assert.equal(readFileSync(res.path, 'utf8'), 'RAW MEDIA');
  assert.equal(res.bytes, 9);
  assert.equal(existsSync(src), false);
  assert.deepEqual(readdirSync(rec), ['out.mp4']);
});

test('a failing transform rejects with the reason, keeps the tmp file and removes the partial', async (t) => {
  const tmp = tempDir(t);
  const rec = join(tmp, 'records');
  const src = makeSrc(tmp, 'seg.mp4', 'precious');
  const f = new Finalizer({ concurrency: 1, log: quiet });
  await assert.rejects(
    f.finalize({
      src,
      dst: join(rec, 'x.mp4'),
      transform: async (_from, to) => {
        await writeFile(to, 'half');
        throw new Error('remux exploded');
      },
    }),
    /finalize failed \[src:.*seg\.mp4, dst:.*x\.mp4, reason:remux exploded\]; the tmp file is kept/,
  );
  await assert.rejects(f.finalize({ src, dst: join(rec, 'y.mp4'), transform: async () => undefined }), /the transform wrote no file/);
  await assert.rejects(f.finalize({ src: join(tmp, 'missing.mp4'), dst: join(rec, 'z.mp4') }), /ENOENT/);
  assert.equal(readFileSync(src, 'utf8'), 'precious');
  assert.deepEqual(readdirSync(rec), []);
});

test('a full destination (ENOSPC while copying) rejects, keeps the tmp file, leaves no partial', async (t) => {
  const small = mkdtempSync(join(tmpdir(), 'edgerec-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small], { stdio: 'ignore' });
  } catch {
    rmSync(small, { recursive: true, force: true });
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  t.after(() => {
    execFileSync('umount', [small]);
    rmSync(small, { recursive: true, force: true });
  });
  const shm = tempDir(t, '/dev/shm');
  const src = makeSrc(shm, 'big.ts', Buffer.alloc(512 * 1024, 1));
  const f = new Finalizer({ concurrency: 1, log: quiet });
  await assert.rejects(f.finalize({ src, dst: join(small, 'big.ts') }), /reason:no space left on the device of .*edgerec-full-\w+\]; the tmp file is kept/);
  assert.equal(statSync(src).size, 512 * 1024);
  assert.deepEqual(readdirSync(small), []);
});

test('at most `concurrency` jobs run at once, in FIFO order; setConcurrency applies live; idle()', async (t) => {
  const tmp = tempDir(t);
  const rec = join(tmp, 'records');
  const f = new Finalizer({ concurrency: 2, log: quiet });
  let inFlight = 0;
  let maxInFlight = 0;
  const started: number[] = [];
  const gates = new Map<number, () => void>();
  const job = (i: number) =>
    f.finalize({
      src: makeSrc(tmp, `s${i}`, `m${i}`),
      dst: join(rec, `f${i}.mp4`),
      transform: async (from, to) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        started.push(i);
        await new Promise<void>((r) => gates.set(i, r));
        await writeFile(to, await readFile(from));
        inFlight--;
      },
    });
  const all = Array.from({ length: 7 }, (_, i) => job(i));
  let idle = false;
  void f.idle().then(() => (idle = true));
  await waitFor('two jobs started', () => started.length === 2);
  // 0 and 1 leave the queue together; their transforms start after async preparation, in either order
  assert.deepEqual([...started].sort(), [0, 1]);
  assert.equal(f.waiting, 5);
  gates.get(0)?.();
  await waitFor('job 2 started', () => started.length === 3);
  assert.equal(started[2], 2, 'the next in line takes the freed slot');
  f.setConcurrency(4);
  await waitFor('four running', () => started.length === 5);
  // 3 and 4 leave the queue together; their transforms start after async preparation, in either order
  assert.deepEqual([...started.slice(0, 2)].sort(), [0, 1]); // in either order (above)
  assert.equal(started[2], 2);
  assert.deepEqual([...started.slice(3)].sort(), [3, 4]);
  assert.equal(f.active, 4);
  assert.equal(idle, false);
  for (let k = 0; k < 100 && (started.length < 7 || gates.size > 0); k++) {
    for (const [i, open] of gates) {
      gates.delete(i);
      open();
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const results = await Promise.all(all);
  await f.idle();
  assert.equal(idle, true);
  assert.deepEqual([...started.slice(0, 2)].sort(), [0, 1]); // in either order (above)
  assert.equal(started[2], 2);
  assert.deepEqual([...started].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.ok(started.indexOf(5) > started.indexOf(3) && started.indexOf(6) > started.indexOf(4), `queued jobs start after earlier ones: ${started.join(',')}`);
  assert.equal(maxInFlight, 4);
  assert.deepEqual(results.map((r) => readFileSync(r.path, 'utf8')), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  assert.throws(() => f.setConcurrency(0), /concurrency 0 is not allowed/);
});
