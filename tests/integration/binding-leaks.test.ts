/**
 * The GStreamer binding as patched by scripts/patches (applied at `npm ci`): reading or setting a property many
 * times must not grow native memory. Unpatched, every read of a 64-bit property (appsrc's current-level-bytes,
 * read by the media host several times a second per source) leaked its string form (~32 B), and every caps set
 * leaked the caps (~500 B): months of recording turn that into hundreds of MB.
 * Measured in a child started with --expose-gc: RSS outside V8's heap after a forced GC, between batches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ROOT } from '../helpers/service';

const PROBE = `
const gst = require('gstreamer-superficial');
const native = () => { global.gc(); global.gc(); const m = process.memoryUsage(); return m.rss - m.heapTotal; };
const p = new gst.Pipeline('appsrc name=a is-live=true format=time ! fakesink');
p.play();
const a = p.findChild('a');
const ops = {
  'uint64 get': () => a['current-level-bytes'],
  'string get': () => a['name'],
  'caps set': () => { a['caps'] = 'video/x-h264,stream-format=byte-stream,alignment=au'; },
};
const N = { 'uint64 get': 200000, 'string get': 200000, 'caps set': 40000 };
const out = {};
for (const [name, fn] of Object.entries(ops)) {
  for (let i = 0; i < N[name]; i++) fn(); // warm-up batch: JIT, allocator pools
  const before = native();
  for (let b = 0; b < 2; b++) for (let i = 0; i < N[name]; i++) fn();
  out[name] = { ops: 2 * N[name], grewBytes: native() - before };
}
p.stop();
console.log(JSON.stringify(out));
`;

test('binding: property reads and caps sets do not grow native memory', () => {
  const text = execFileSync(process.execPath, ['--expose-gc', '-e', PROBE], { cwd: ROOT, timeout: 60_000, encoding: 'utf8' });
  const out = JSON.parse(text.trim().split('\n').pop() ?? '{}') as Record<string, { ops: number; grewBytes: number }>;
  for (const [name, r] of Object.entries(out)) {
    console.log(`  ${name}: ${r.ops} ops, native memory ${(r.grewBytes / 1e6).toFixed(2)} MB (${(r.grewBytes / r.ops).toFixed(1)} B/op)`);
  }
  assert.deepEqual(Object.keys(out).sort(), ['caps set', 'string get', 'uint64 get']);
  // unpatched: ~32 B/op (12.8 MB), ~30 B/op, ~500 B/op (40 MB); patched: flat within allocator noise
  for (const [name, r] of Object.entries(out)) assert.ok(r.grewBytes < 3e6, `${name}: native memory grew ${(r.grewBytes / 1e6).toFixed(1)} MB over ${r.ops} ops`);
});

const TRIM_PROBE = `
const gst = require('gstreamer-superficial');
const rss = () => process.memoryUsage.rss();
// 64 KB blocks (below glibc's mmap threshold: on the heap) between small ones that stay: once the big ones are
// freed, the heap is full of holes that free() never returns (the media host's frames: malloc'd here, freed on
// GStreamer's threads, between longer-lived blocks)
const keep = [];
let big = [];
for (let i = 0; i < 1500; i++) {
  big.push(Buffer.allocUnsafeSlow(64 * 1024).fill(1));
  keep.push(Buffer.allocUnsafeSlow(8 * 1024).fill(2));
}
const full = rss();
big = null;
global.gc(); global.gc();
const freed = rss();
const released = gst.mallocTrim();
console.log(JSON.stringify({ full, freed, trimmed: rss(), released, keep: keep.length }));
`;

test('binding: mallocTrim() gives the C heap\'s freed pages back to the system', () => {
  const text = execFileSync(process.execPath, ['--expose-gc', '-e', TRIM_PROBE], { cwd: ROOT, timeout: 60_000, encoding: 'utf8' });
  const r = JSON.parse(text.trim().split('\n').pop() ?? '{}') as { full: number; freed: number; trimmed: number; released: boolean };
  const mb = (b: number) => (b / 1e6).toFixed(1);
  console.log(`  RSS ${mb(r.full)} MB with 96 MB of blocks, ${mb(r.freed)} MB once they are freed, ${mb(r.trimmed)} MB after mallocTrim()`);
  assert.equal(r.released, true);
  assert.ok(r.freed - r.trimmed > 50e6, `mallocTrim() gave back only ${mb(r.freed - r.trimmed)} MB of ~96 MB freed`);
});
