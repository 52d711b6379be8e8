import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { holdBytes, pinBytes, releaseBytes, SlabPool } from '../../../src/lib/slab-pool';
import { MediaHost } from '../../../src/pipeline/media-host';

// Issue 15, session 8: tag bytes are cut from reused slabs. MediaHost holds each pushed buffer until the channel
// write that carries it has completed: a slab cut again while its bytes wait in the pipe's queue would send other
// bytes than were pushed. A fake media host (the real channel, a worker that stops reading for a while) records the
// MD5 of every pushed chunk as it arrives.

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** A worker that answers pings and starts, stops reading the channel for `pauseMs` at the first push, and writes the MD5 of every pushed chunk to FAKE_HOST_OUT at eos. */
function fakeWorker(dir: string, pauseMs: number): string {
  const path = join(dir, 'fake-host.js');
  const channelJs = join(__dirname, '..', '..', '..', 'src', 'pipeline', 'host-channel.js');
  writeFileSync(
    path,
    `'use strict';
const { Socket } = require('node:net');
const { createHash } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const { FrameReader } = require(${JSON.stringify(channelJs)});
const ch = new Socket({ fd: Number(process.env.EDGEREC_HOST_CHANNEL), readable: true, writable: false });
const reader = new FrameReader();
const hashes = [];
let paused = false;
ch.on('data', (chunk) => {
  for (const f of reader.push(chunk)) {
    if (f.kind === 'push') {
      let o = 0;
      for (const l of f.lengths) { hashes.push(createHash('md5').update(f.data.subarray(o, o + l)).digest('hex')); o += l; }
      if (!paused) { paused = true; ch.pause(); setTimeout(() => ch.resume(), ${pauseMs}); }
      continue;
    }
    const r = f.req;
    if (r.t === 'ping') process.send({ t: 'pong', seq: r.seq, pipelines: 0, memory: { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 } });
    else if (r.t === 'start') process.send({ t: 'started', id: r.id });
    else if (r.t === 'eos' || r.t === 'stop') {
      writeFileSync(process.env.FAKE_HOST_OUT, JSON.stringify(hashes));
      process.send({ t: 'eos', id: r.id });
      process.send({ t: 'stopped', id: r.id });
    }
  }
});
process.on('disconnect', () => process.exit(0));
`,
  );
  return path;
}

test('a pushed slab buffer is not cut again before the channel write carrying it completed (host slow to read)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-slabs-'));
  const out = join(dir, 'hashes.json');
  process.env.FAKE_HOST_OUT = out;
  const host = new MediaHost({ workerPath: fakeWorker(dir, 400), pushBatchMs: 20 });
  t.after(async () => {
    host.kill();
    await host.close(1000).catch(() => {});
    delete process.env.FAKE_HOST_OUT;
    rmSync(dir, { recursive: true, force: true });
  });
  await host.start();
  const h = host.run('p1', 'fake');
  await new Promise<void>((resolve) => h.once('started', () => resolve()));
  // small slabs, so that the ~3 MB pushed cycle through them many times
  const pool = new SlabPool(64 * 1024, 4, 16 * 1024);
  const expected: string[] = [];
  const started = Date.now();
  for (let i = 0; i < 400; i++) {
    const b = pool.alloc(8000 + (i % 7) * 100);
    randomFillSync(b);
    expected.push(md5(b));
    assert.equal(h.push('src', b), true, `push ${i} accepted`);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 25));
  }
  const s = pool.stats();
  // the test means something only if slabs were cut again while the host was not reading, and after
  assert.ok(s.reused > 10, `slabs reused during the run: ${JSON.stringify(s)}`);
  assert.ok(s.created < 60, `released slabs are reused, not re-created: ${JSON.stringify(s)}`);
  const exit = new Promise((resolve) => h.once('exit', resolve));
  h.eos();
  assert.deepEqual(await exit, { reason: 'eos' });
  const got = JSON.parse(readFileSync(out, 'utf8')) as string[];
  assert.equal(got.length, expected.length, 'every push arrived');
  const bad = got.findIndex((x, i) => x !== expected[i]);
  assert.equal(bad, -1, `push ${bad} arrived with other bytes than were pushed (its slab was cut again before its write completed); ${Date.now() - started} ms`);
});

test('a slab is cut again only once every holder released it', () => {
  const pool = new SlabPool(1024, 8, 256);
  const a = pool.alloc(200).fill(0xcd);
  holdBytes(a);
  const shares = (n: number) => {
    let same = 0;
    for (let i = 0; i < n; i++) {
      const b = pool.alloc(200).fill(0);
      if (b.buffer === a.buffer) same++;
    }
    return same;
  };
  assert.equal(shares(4), 4, "the rest of a's slab is cut while it is the current one");
  assert.equal(shares(50), 0, "a held slab is not cut again");
  assert.ok(a.every((x) => x === 0xcd), 'the held bytes are intact');
  assert.ok(pool.stats().reused >= 8, 'the slabs nobody holds are cut again');
  releaseBytes(a);
  // released, it waits among the free slabs: cut again before any new slab is made
  const created = pool.stats().created;
  const next = Array.from({ length: 20 }, () => {
    const b = pool.alloc(200);
    holdBytes(b);
    return b;
  });
  assert.ok(next.some((b) => b.buffer === a.buffer), 'released, it is cut again');
  assert.ok(pool.stats().created <= created + 2);
  // a buffer over maxCut is a buffer of its own; hold/release/pin of a foreign buffer do nothing
  assert.notEqual(pool.alloc(300).buffer.byteLength, 1024);
  holdBytes(Buffer.alloc(10));
  releaseBytes(Buffer.alloc(10));
  pinBytes(Buffer.alloc(10));
});

test('a pinned buffer (kept by someone that does not release) keeps its bytes while the pool cycles', () => {
  const pool = new SlabPool(1024, 8, 256);
  const kept = pool.alloc(200).fill(0xab);
  pinBytes(kept);
  for (let i = 0; i < 100; i++) pool.alloc(200).fill(0);
  assert.ok(pool.stats().reused > 10, 'the other slabs were cut again');
  assert.ok(kept.every((x) => x === 0xab), 'the pinned buffer was not cut again');
});
