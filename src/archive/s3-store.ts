import { createReadStream } from 'node:fs';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PartHasher } from './etag';
import type { S3Settings } from './s3-settings';
import type { Throttle } from './throttle';

/** Part size of multipart uploads; a file up to this size goes up in one PUT. */
export const PART_SIZE = 8 * 1024 * 1024;

/** What upload() verified. */
export interface Uploaded {
  /** the ETag the store answered (no quotes) */
  readonly etag: string;
  readonly bytes: number;
}

/** An object as HeadObject shows it. */
export interface ObjectHead {
  readonly size: number;
  readonly etag: string;
}

/** The S3 operations of the archiver, on one client (AWS SDK v3; lib-storage for multipart). */
export class S3Store {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(settings: S3Settings, private readonly throttle: Throttle, readonly partSize = PART_SIZE) {
    this.bucket = settings.bucket;
    const agentOpts = { keepAlive: true, maxSockets: 32 };
    this.client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      // Streaming uploads with the default (aws-chunked trailing checksums) fail on stores without it (Swift: 501);
      // integrity is checked through the ETag the store computes instead (see verify in the archiver).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000, httpAgent: new Agent(agentOpts), httpsAgent: new HttpsAgent(agentOpts) },
    });
  }

  /** One cheap signed request on the bucket: fails with the store's code on bad credentials or bucket. */
  async probe(signal?: AbortSignal): Promise<void> {
    await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }), { abortSignal: signal });
  }

  /** The object at `key`, or null when there is none. */
  async head(key: string, signal?: AbortSignal): Promise<ObjectHead | null> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
      return { size: h.ContentLength ?? -1, etag: (h.ETag ?? '').replace(/"/g, '').toLowerCase() };
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return null;
      throw err;
    }
  }

  /** Abort every unfinished multipart upload of exactly `key` (left by a crash or a store that died mid-upload). */
  async abortOrphans(key: string, signal?: AbortSignal): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        { abortSignal: signal },
      );
      for (const u of r.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: u.UploadId }), { abortSignal: signal });
        aborted++;
      }
      if (!r.IsTruncated) break;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
    return aborted;
  }

  /**
   * Upload the file at `path` to `key` (one PUT up to partSize, else multipart; a failed multipart upload is aborted
   * by lib-storage when the store still answers), at the shared bandwidth limit, hashing what goes out. Resolves with
   * the ETag expected from those bytes and the byte count; `onBytes` sees progress.
   */
  async upload(key: string, path: string, signal: AbortSignal, meta: Record<string, string>, onBytes?: (n: number) => void): Promise<{ expectedEtag: string; md5: string; bytes: number }> {
    const hasher = new PartHasher(this.partSize);
    const body = new PassThrough();
    hasher.onBytes = onBytes;
    // 1 MiB reads: fewer chunks through the throttle, the hasher and lib-storage's part buffer
    const feeding = pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), this.throttle.stream(signal), hasher, body, { signal });
    const up = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType(key), Metadata: meta },
      partSize: this.partSize,
      queueSize: 1,
      leavePartsOnError: false,
    });
    const onAbort = () => void up.abort().catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.all([feeding, up.done()]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    const r = hasher.result();
    return { expectedEtag: r.etag, md5: r.md5, bytes: r.bytes };
  }

  /** GET the object (a Range header passed through as is). */
  get(key: string, range: string | undefined, signal?: AbortSignal): Promise<GetObjectCommandOutput> {
    return this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }), { abortSignal: signal });
  }

  destroy(): void {
    this.client.destroy();
  }
}

function contentType(key: string): string {
  const ext = key.slice(key.lastIndexOf('.')).toLowerCase();
  return ext === '.mp4' ? 'video/mp4' : ext === '.webm' ? 'video/webm' : ext === '.ts' ? 'video/mp2t' : 'application/octet-stream';
}
