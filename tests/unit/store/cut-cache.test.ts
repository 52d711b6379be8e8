import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConf } from '../../../src/conf/parse';
import type { Conf } from '../../../src/conf/types';
import { CutCache, quotaBytes } from '../../../src/store/cut-cache';
import { chooseCutEvictions, type CutRow, CutsStore } from '../../../src/store/cuts';
import { closeDb, openDb } from '../../../src/store/db';

function row(id: number, bytes: number): CutRow {
  return { id, sourcePath: '/r/a.mp4', startDs: id, endDs: -1, path: `/c/${id}.mp4`, bytes, ino: id, ctimeMs: 0, createdMs: 0, usedMs: id };
}

test('chooseCutEvictions: least recently used first, until the incoming cut fits by bytes and by count', () => {
  const lru = [row(1, 100), row(2, 100), row(3, 100)];
  const total = { count: 3, bytes: 300 };
  assert.deepEqual(chooseCutEvictions(lru, total, { maxBytes: 400, maxCount: 10 }, { bytes: 100, count: 1 }), []);
  assert.deepEqual(chooseCutEvictions(lru, total, { maxBytes: 400, maxCount: 10 }, { bytes: 150, count: 1 }).map((r) => r.id), [1]);
  assert.deepEqual(chooseCutEvictions(lru, total, { maxBytes: 250, maxCount: 10 }, { bytes: 0, count: 0 }).map((r) => r.id), [1]);
  assert.deepEqual(chooseCutEvictions(lru, total, { maxBytes: 1000, maxCount: 3 }, { bytes: 1, count: 1 }).map((r) => r.id), [1]);
  assert.deepEqual(chooseCutEvictions(lru, total, { maxBytes: 50, maxCount: 10 }, { bytes: 0, count: 0 }).map((r) => r.id), [1, 2, 3]);
});

test('quotaBytes: bytes as given, a percentage of the disk', () => {
  assert.equal(quotaBytes({ kind: 'bytes', bytes: 1234 }, 1e12), 1234);
  assert.equal(quotaBytes({ kind: 'percent', percent: 2 }, 1000_000), 20_000);
});

function setup(t: TestContext, extra = ''): { dir: string; cuts: string; rec: string; cache: CutCache; store: CutsStore; setConf: (s: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-cutcache-'));
  const rec = join(dir, 'rec');
  const cuts = join(dir, 'cuts');
  mkdirSync(rec);
  mkdirSync(cuts);
  const db = openDb(join(dir, 'index.db'));
  t.after(() => {
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
  });
  let conf: Conf = parseConf(`record_dir=${rec}\nmp4_cutter_dir=${cuts}\n${extra}`, { installDir: dir }).conf;
  const store = new CutsStore(db);
  const cache = new CutCache(() => conf, store);
  const setConf = (s: string) => {
    conf = parseConf(`record_dir=${rec}\nmp4_cutter_dir=${cuts}\n${s}`, { installDir: dir }).conf;
  };
  return { dir, cuts, rec, cache, store, setConf };
}

/** A cut file as the cutter leaves it, indexed. */
function addCut(c: ReturnType<typeof setup>, src: string, startDs: number, bytes: number, createdMs = Date.now()): string {
  const path = join(c.cuts, `${basename(src, '.mp4')}-${startDs}.mp4`);
  writeFileSync(path, Buffer.alloc(bytes, 1));
  const st = lstatSync(path);
  assert.ok(c.cache.add({ sourcePath: src, startDs, endDs: -1, path, bytes, ino: st.ino, ctimeMs: st.ctimeMs, createdMs }));
  return path;
}

test('reserve: evicts least recently used cuts to fit, refuses a cut larger than the cache', async (t) => {
  const c = setup(t, 'mp4_cutter_max_bytes=1000\n');
  const src = join(c.rec, 'a.mp4');
  writeFileSync(src, 'x');
  utimesSync(src, 1, 1);
  const p1 = addCut(c, src, 1, 400);
  const p2 = addCut(c, src, 2, 400);
  // p1 used more recently than p2
  const hit = await c.cache.lookup(src, 1, -1, 0);
  assert.ok(hit);
  await hit.fh.close();
  const release = await c.cache.reserve(300);
  assert.ok(existsSync(p1), 'the recently used cut stays');
  assert.ok(!existsSync(p2), 'the least recently used cut went');
  release();
  await assert.rejects(c.cache.reserve(1001), /mp4_cutter_max_bytes/);
});

test('lookup refuses what is not the cut it indexed; evict never deletes a file edgerec did not make', async (t) => {
  const c = setup(t);
  const src = join(c.rec, 'a.mp4');
  writeFileSync(src, 'x');
  utimesSync(src, 1, 1);
  const outside = join(c.dir, 'outside.txt');
  writeFileSync(outside, 'secret');
  const p = addCut(c, src, 5, 10);
  rmSync(p);
  symlinkSync(outside, p);
  assert.equal(await c.cache.lookup(src, 5, -1, 0), null, 'a symlink is not served');
  assert.ok(lstatSync(p).isSymbolicLink(), 'and not deleted either');
  assert.equal(c.store.get(src, 5, -1), null, 'the row went');
  const q = addCut(c, src, 6, 10);
  rmSync(q);
  writeFileSync(q, Buffer.alloc(10, 2)); // same size, another inode
  assert.equal(await c.cache.lookup(src, 6, -1, 0), null);
  assert.ok(existsSync(q), 'a foreign regular file is left alone');
  // a source changed after the cut: stale
  const r = addCut(c, src, 7, 10);
  assert.equal(await c.cache.lookup(src, 7, -1, Date.now() + 10_000), null);
  assert.ok(!existsSync(r), 'our stale cut is removed');
  // the whole folder removed by hand: a miss (the cut is rebuilt), not an error
  addCut(c, src, 8, 10);
  rmSync(c.cuts, { recursive: true });
  assert.equal(await c.cache.lookup(src, 8, -1, 0), null);
  assert.equal(c.store.get(src, 8, -1), null);
});

test('sweep: cuts of deleted sources, cuts older than record_retention_days, a smaller quota', async (t) => {
  const c = setup(t);
  const a = join(c.rec, 'a.mp4');
  const b = join(c.rec, 'b.mp4');
  writeFileSync(a, 'x');
  writeFileSync(b, 'y');
  const pa = addCut(c, a, 1, 100);
  const pb = addCut(c, b, 1, 100);
  const old = addCut(c, b, 2, 100, Date.now() - 3 * 86_400_000);
  const fresh = addCut(c, b, 3, 100);
  rmSync(a); // retention deleted the recording
  assert.equal(await c.cache.sweep(), 1);
  assert.ok(!existsSync(pa) && existsSync(pb) && existsSync(old));
  c.setConf('record_retention_days=2\n');
  assert.equal(await c.cache.sweep(), 1);
  assert.ok(!existsSync(old) && existsSync(fresh));
  c.setConf('mp4_cutter_max_bytes=150\n');
  assert.equal(await c.cache.sweep(), 1);
  assert.ok(!existsSync(pb) && existsSync(fresh), 'the least recently used went');
  assert.deepEqual(c.store.totals(), { count: 1, bytes: 100 });
  // a disk below record_min_free_percent: cuts go (before retention deletes recordings)
  const more = addCut(c, b, 4, 40);
  assert.equal(await c.cache.sweep(Date.now(), { totalBytes: 10_000, freeBytes: 10_000 }), 0, 'room enough: nothing');
  assert.equal(await c.cache.sweep(Date.now(), { totalBytes: 10_000, freeBytes: 960 }), 1, 'short of 40 bytes: the LRU cut goes');
  assert.ok(!existsSync(fresh) && existsSync(more));
});
