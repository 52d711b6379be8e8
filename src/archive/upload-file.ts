import { stat, unlink } from 'node:fs/promises';
import { AppError, errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import type { RecordingRow } from '../store/recordings';
import { normalizeEtag } from './etag';
import type { S3Store } from './s3-store';

const log = rootLog.child({ component: 'archive' });

/** How uploadVerified runs. */
export interface UploadFileOptions {
  readonly boxId: string;
  /** an earlier attempt may have left an unfinished multipart upload under the key */
  readonly retried: boolean;
  readonly signal: AbortSignal;
  readonly onBytes?: (sent: number) => void;
}

/**
 * Upload one finished file to `key` and verify it: the size the store reports and the ETag it computed against the
 * bytes sent (MD5, or MD5 of the parts' MD5s). Throws with the reason; an ENOENT means the local file is gone.
 */
export async function uploadVerified(s3: S3Store, row: RecordingRow, key: string, o: UploadFileOptions): Promise<{ etag: string; bytes: number }> {
  const st = await stat(row.path);
  if (!st.isFile()) throw Object.assign(new Error(`not a file: ${row.fileName}`), { code: 'ENOENT' });
  if (o.retried) {
    // A retry (or a resume after a crash): drop the parts a dead attempt left behind; the same key is written again.
    const aborted = await s3.abortOrphans(key, o.signal);
    if (aborted) log.info({ file: row.fileName, key, aborted }, 'aborted unfinished multipart uploads of an earlier attempt');
  }
  const meta = { 'edgerec-box': o.boxId, 'edgerec-stream': encodeURIComponent(row.streamName).slice(0, 200) };
  const up = await s3.upload(key, row.path, o.signal, meta, o.onBytes);
  if (up.bytes !== st.size) throw new AppError('INTERNAL', `the local file changed size during the upload (${st.size} → ${up.bytes} bytes)`);
  const head = await s3.head(key, o.signal);
  if (!head) throw new AppError('INTERNAL', `verify: the object is missing after the upload [key:${key}]`);
  if (head.size !== up.bytes) throw new AppError('INTERNAL', `verify: size mismatch [key:${key}, local:${up.bytes}, store:${head.size}]`);
  if (normalizeEtag(head.etag) !== up.expectedEtag) throw new AppError('INTERNAL', `verify: checksum mismatch [key:${key}, local md5 etag:${up.expectedEtag}, store etag:${head.etag}]`);
  return { etag: head.etag, bytes: up.bytes };
}

/** archive_keep_local_days=0: delete the verified local copy (only if it is still the file that was sent). True when deleted. */
export async function dropLocal(row: RecordingRow, size: number): Promise<boolean> {
  try {
    const st = await stat(row.path);
    if (st.size !== size) return false;
    await unlink(row.path);
    log.info({ file: row.fileName, reason: 'archive_keep_local_days=0' }, 'local copy deleted; the file is served from the archive');
    return true;
  } catch (err) {
    log.warn({ file: row.fileName, reason: errMessage(err) }, 'could not delete the local copy of an archived file');
    return false;
  }
}
