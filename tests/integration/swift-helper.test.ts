import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { alive } from '../helpers/service';
import { startSwift, SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY } from '../helpers/swift';

// The test store itself: real Swift + s3api starts, takes an object, gives it back, and is stopped by PID.

test('swift helper: starts on OS-chosen ports, stores an object through s3api, stops every server', async (t) => {
  const store = await startSwift();
  t.after(() => store.stop());
  const s3 = new S3Client({
    endpoint: store.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: SWIFT_ACCESS_KEY, secretAccessKey: SWIFT_SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  t.after(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'probe' }));
  await s3.send(new PutObjectCommand({ Bucket: 'probe', Key: 'a/b.txt', Body: 'hello' }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'probe', Key: 'a/b.txt' }));
  assert.equal(head.ContentLength, 5);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'probe', Key: 'a/b.txt' }));
  assert.equal(await got.Body?.transformToString(), 'hello');
  const pids = store.pids();
  assert.equal(pids.length, 4);
  await store.stop();
  for (const p of pids) assert.equal(alive(p), false, `swift server ${p} stopped`);
});
