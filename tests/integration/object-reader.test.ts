import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DATA_BLOCK, ObjectReader, objectReads, PARSE_BLOCK } from '../../src/archive/object-reader';
import { S3Store } from '../../src/archive/s3-store';
import { Throttle } from '../../src/archive/throttle';
import { AppError } from '../../src/lib/errors';
import { openSource, openSourceFrom } from '../../src/mp4/source';
import { createBucket, testClient } from '../helpers/archive';
import { makeClip } from '../helpers/media';
import { startSwift, SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY, type SwiftStore } from '../helpers/swift';

// The reader playback uses for files only in the archive: positioned reads of an object through ranged GETs, on a
// real S3-compatible store (Swift + s3api).

const FIXTURE = resolve(__dirname, '..', '..', '..', 'tests', 'fixtures', 'playback-1s.mp4');
let store: SwiftStore;
let admin: S3Client;
let s3: S3Store;

before(async () => {
  store = await startSwift();
  admin = testClient(store);
  await createBucket(admin, 'reader');
  s3 = new S3Store({ endpoint: store.endpoint, region: 'us-east-1', forcePathStyle: true, bucket: 'reader', accessKeyId: SWIFT_ACCESS_KEY, secretAccessKey: SWIFT_SECRET_KEY }, new Throttle(0));
});
after(async () => {
  s3?.destroy();
  admin?.destroy();
  await store?.stop();
});

test('a box walk from the bucket finds what the local walk finds, in 2 GETs; reads anywhere return the file\'s bytes', async () => {
  // a moov-last MP4 larger than a few media blocks
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 20, size: '1280x720' });
  const body = readFileSync(clip);
  assert.ok(body.length > 2 * DATA_BLOCK, `the clip (${body.length} bytes) spans several media blocks`);
  await admin.send(new PutObjectCommand({ Bucket: 'reader', Key: 'a/clip.mp4', Body: body }));
  const local = await openSource(clip);
  await local.fh.close();

  const g0 = objectReads.gets;
  const remote = await openSourceFrom(new ObjectReader(s3, 'a/clip.mp4', body.length, 'clip.mp4', undefined, PARSE_BLOCK), body.length);
  await remote.fh.close();
  const gets = objectReads.gets - g0;
  assert.ok(gets >= 1 && gets <= 2, `the walk took ${gets} GETs`);
  assert.equal(remote.fragmented, false);
  assert.deepEqual(remote.tracks.map((t) => [t.handler, t.table.count]), local.tracks.map((t) => [t.handler, t.table.count]));
  for (const [k, t] of remote.tracks.entries()) {
    assert.deepEqual(Array.from(t.table.offset), Array.from(local.tracks[k]?.table.offset ?? []), `${t.handler} sample offsets`);
    assert.deepEqual(Array.from(t.table.size), Array.from(local.tracks[k]?.table.size ?? []), `${t.handler} sample sizes`);
  }

  // sequential 1 MiB reads (a copy), then reads at scattered places, against the file's bytes
  const r = new ObjectReader(s3, 'a/clip.mp4', body.length, 'clip.mp4');
  const buf = Buffer.alloc(1024 * 1024);
  const g1 = objectReads.gets;
  for (let at = 0; at < body.length; at += buf.length) {
    const n = Math.min(buf.length, body.length - at);
    assert.equal((await r.read(buf, 0, n, at)).bytesRead, n);
    assert.ok(buf.subarray(0, n).equals(body.subarray(at, at + n)), `bytes at ${at}`);
  }
  const blocks = Math.ceil(body.length / DATA_BLOCK);
  assert.ok(objectReads.gets - g1 <= blocks + 1, `a sequential copy of ${body.length} bytes took ${objectReads.gets - g1} GETs (${blocks} blocks)`);
  let seed = 7;
  for (let i = 0; i < 40; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const at = seed % body.length;
    const n = Math.min(1 + (seed % (3 * DATA_BLOCK)), body.length - at);
    const into = Buffer.alloc(n + 3);
    assert.equal((await r.read(into, 3, n, at)).bytesRead, n);
    assert.ok(into.subarray(3).equals(body.subarray(at, at + n)), `${n} bytes at ${at}`);
  }
  assert.equal((await r.read(buf, 0, 10, body.length)).bytesRead, 0, 'nothing past the end');
  await r.close();
});

test('an object shorter than the index says, a missing object and a dead store are ARCHIVE_UNAVAILABLE naming the file', async () => {
  const body = readFileSync(FIXTURE);
  await admin.send(new PutObjectCommand({ Bucket: 'reader', Key: 'b/short.mp4', Body: body }));
  const isUnavailable = (re: RegExp) => (err: unknown) => err instanceof AppError && err.code === 'ARCHIVE_UNAVAILABLE' && re.test(err.message);
  const buf = Buffer.alloc(64);
  // the index says 1000 bytes more: the last bytes cannot be read
  const longer = new ObjectReader(s3, 'b/short.mp4', body.length + 1000, 'short.mp4', undefined, PARSE_BLOCK);
  await assert.rejects(longer.read(buf, 0, 64, body.length + 500), isUnavailable(/short\.mp4 .*(did not answer|bytes)/));
  await assert.rejects(new ObjectReader(s3, 'b/none.mp4', 5000, 'none.mp4').read(buf, 0, 64, 0), isUnavailable(/none\.mp4 is only in the archive, and the archive store did not answer/));
  await store.kill();
  const t0 = Date.now();
  await assert.rejects(new ObjectReader(s3, 'b/short.mp4', body.length, 'short.mp4').read(buf, 0, 64, 0), isUnavailable(/short\.mp4 is only in the archive, and the archive store did not answer/));
  assert.ok(Date.now() - t0 < 15_000, `failed in ${Date.now() - t0} ms`);
});
