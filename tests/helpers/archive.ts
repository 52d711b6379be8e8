import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { after, before } from 'node:test';
import { type Proc, start, waitFor } from './proc';
import type { Service } from './service';
import { startSwift, SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY, type SwiftStore } from './swift';

/** A recording as /rest-api/recordings shows it, with its archive part. */
export interface ArchivedRow {
  id: number;
  fileName: string;
  stream: string;
  state: string;
  bytes: number;
  start: number;
  archive: { state: string; key: string | null; at: number; error: string | null; attempts: number; local: boolean } | null;
}

/** A test-side S3 client on the store (to check what the service put there). */
export function testClient(store: SwiftStore): S3Client {
  return new S3Client({
    endpoint: store.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: SWIFT_ACCESS_KEY, secretAccessKey: SWIFT_SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

/**
 * One Swift store for the whole test file and a test S3 client on it, with `buckets` created: started in before(),
 * stopped in after(). Call at the top level of the file; read `.store` and `.s3` inside tests. (A second top-level
 * before() of the file is not awaited after this one on node 20: create what the file needs through `buckets`.)
 */
export function swiftForFile(o: { buckets?: readonly string[] } = {}): { readonly store: SwiftStore; readonly s3: S3Client } {
  let store: SwiftStore | undefined;
  let s3: S3Client | undefined;
  before(async () => {
    store = await startSwift();
    s3 = testClient(store);
    for (const b of o.buckets ?? []) await createBucket(s3, b);
  });
  after(async () => {
    s3?.destroy();
    await store?.stop();
  });
  const notYet = (): never => {
    throw new Error('the Swift store is not started yet: call swiftForFile() at the top level of the test file');
  };
  return {
    get store() {
      return store ?? notYet();
    },
    get s3() {
      return s3 ?? notYet();
    },
  };
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** The properties lines that point the service at the store. */
export function archiveConf(store: SwiftStore, bucket: string, extra: Record<string, string | number> = {}): string {
  const lines: Record<string, string | number> = {
    archive_s3_endpoint: store.endpoint,
    archive_s3_bucket: bucket,
    archive_s3_access_key: SWIFT_ACCESS_KEY,
    archive_s3_secret_key: SWIFT_SECRET_KEY,
    box_id: 'testbox',
    ...extra,
  };
  return `${Object.entries(lines)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** Every object in the bucket: key → size. */
export async function listObjects(s3: S3Client, bucket: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  for (let i = 0; i < 100; i++) {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of r.Contents ?? []) if (o.Key) out.set(o.Key, o.Size ?? -1);
    if (!r.IsTruncated) break;
    token = r.NextContinuationToken;
  }
  return out;
}

/** Unfinished multipart uploads in the bucket. */
export async function listMultipart(s3: S3Client, bucket: string): Promise<{ key: string; id: string }[]> {
  const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => ({ key: u.Key ?? '', id: u.UploadId ?? '' }));
}

/** MD5 hex of an object's bytes. */
export async function objectMd5(s3: S3Client, bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = await r.Body?.transformToByteArray();
  return createHash('md5').update(bytes ?? new Uint8Array()).digest('hex');
}

export function md5(buf: Uint8Array): string {
  return createHash('md5').update(buf).digest('hex');
}

export function fileMd5(path: string): string {
  return md5(readFileSync(path));
}

/** Every recording row (up to 1000). */
export async function allRows(s: Service, stream?: string): Promise<ArchivedRow[]> {
  const r = await s.json(`/rest-api/recordings?limit=1000${stream ? `&stream=${encodeURIComponent(stream)}` : ''}`);
  if (r.status !== 200) throw new Error(`recordings: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { recordings: ArchivedRow[] }).recordings;
}

/** The archive section of health. */
export async function archiveHealth(s: Service): Promise<Record<string, unknown> & { backlog: { files: number; bytes: number; oldestMs: number | null }; status: string; lastError: { kind: string; message: string } | null }> {
  const r = await s.json('/rest-api/health');
  return (r.body as { archive: never }).archive;
}

/** ffmpeg publishing `clip` over RTMP in real time (loops when `loop`). */
export function publishRtmp(port: number, name: string, clip: string, loop = false): Proc {
  return start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...(loop ? ['-stream_loop', '-1'] : []), '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/${name}`]);
}

/** Wait until every row of the service is finished and archived (and at least `min` rows). */
export function allArchived(s: Service, min: number, timeoutMs: number): Promise<ArchivedRow[]> {
  return waitFor(
    `at least ${min} recordings, all archived`,
    async () => {
      const rows = await allRows(s);
      return rows.length >= min && rows.every((r) => (r.state === 'complete' || r.state === 'recovered') && r.archive?.state === 'archived') ? rows : null;
    },
    timeoutMs,
    250,
  );
}

/** A 20 s 1280x720 H.264 (~11 Mbit/s, qp 8) + AAC clip, so that 10 s files go up in several parts (cached). */
export async function bigClip(): Promise<string> {
  const { cachedFile } = await import('./media');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '20', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '8', '-pix_fmt', 'yuv420p', '-g', '50', '-keyint_min', '50', '-bf', '0', '-sc_threshold', '0',
    '-c:a', 'aac', '-ar', '44100', '-ac', '2',
  ];
  return cachedFile('clip-archive-big-720p-qp8-20s.mp4', ['ffmpeg', ...args], (tmp) => promisify(execFile)('ffmpeg', [...args, tmp], { timeout: 120_000 }));
}

/** Check the bucket against the rows: one object per row at its key, byte-identical to the local file, no multipart left. */
export async function assertBucketMatches(s3: S3Client, bucket: string, rows: ArchivedRow[], recordDir: string): Promise<void> {
  const objects = await listObjects(s3, bucket);
  const keys = rows.map((r) => r.archive?.key ?? '');
  assert.equal(new Set(keys).size, rows.length, 'one key per file');
  assert.equal(objects.size, rows.length, `one object per file, no duplicate: ${[...objects.keys()].join(', ')}`);
  for (const r of rows) {
    const key = r.archive?.key ?? '';
    assert.equal(objects.get(key), r.bytes, `size of ${key}`);
    assert.equal(await objectMd5(s3, bucket, key), fileMd5(join(recordDir, r.fileName)), `${key} byte-identical`);
  }
  assert.deepEqual(await listMultipart(s3, bucket), [], 'no unfinished multipart upload left');
}
