import { readFileSync } from 'node:fs';
import type { Conf } from '../conf/types';
import { AppError, errMessage, errnoOf } from '../lib/errors';

/** Everything the archiver needs to reach the store; secrets stay in here and never reach a log or an answer. */
export interface S3Settings {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** Archiving off, misconfigured (with why), or ready. */
export type S3SettingsResult = { readonly kind: 'off' } | { readonly kind: 'invalid'; readonly error: string } | { readonly kind: 'ok'; readonly settings: S3Settings };

const ACCESS_NAMES = ['access_key', 'aws_access_key_id', 'archive_s3_access_key'];
const SECRET_NAMES = ['secret_key', 'aws_secret_access_key', 'archive_s3_secret_key'];

/**
 * Read a credentials file (pure on its text): `name = value` lines, `#`/`;` comments and `[section]` lines ignored;
 * access_key / aws_access_key_id and secret_key / aws_secret_access_key. Errors never quote a value.
 */
export function parseCredentials(text: string): { accessKeyId: string; secretAccessKey: string } {
  let accessKeyId = '';
  let secretAccessKey = '';
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq).trim().toLowerCase();
    const v = line.slice(eq + 1).trim();
    if (ACCESS_NAMES.includes(k)) accessKeyId = v;
    if (SECRET_NAMES.includes(k)) secretAccessKey = v;
  }
  if (!accessKeyId || !secretAccessKey) {
    throw new AppError('BAD_CONFIG', `it must hold ${!accessKeyId ? 'access_key=...' : ''}${!accessKeyId && !secretAccessKey ? ' and ' : ''}${!secretAccessKey ? 'secret_key=...' : ''} (or aws_access_key_id / aws_secret_access_key)`);
  }
  return { accessKeyId, secretAccessKey };
}

/** The store settings from the config (reads archive_s3_credentials_file when set). */
export function s3Settings(c: Conf, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): S3SettingsResult {
  if (!c.archive_s3_endpoint) return { kind: 'off' };
  if (!c.archive_s3_bucket) return { kind: 'invalid', error: 'archive_s3_bucket is empty: set the bucket the files go to (archive_s3_endpoint is set)' };
  let accessKeyId = c.archive_s3_access_key;
  let secretAccessKey = c.archive_s3_secret_key;
  if (c.archive_s3_credentials_file) {
    try {
      ({ accessKeyId, secretAccessKey } = parseCredentials(readFile(c.archive_s3_credentials_file)));
    } catch (err) {
      const errno = errnoOf(err);
      const why = errno ? `cannot read it (${errno})` : errMessage(err);
      return { kind: 'invalid', error: `archive_s3_credentials_file: ${why}` };
    }
  }
  if (!accessKeyId || !secretAccessKey) {
    return { kind: 'invalid', error: 'no credentials: set archive_s3_access_key and archive_s3_secret_key, or archive_s3_credentials_file' };
  }
  return {
    kind: 'ok',
    settings: { endpoint: c.archive_s3_endpoint, bucket: c.archive_s3_bucket, region: c.archive_s3_region, forcePathStyle: c.archive_s3_force_path_style, accessKeyId, secretAccessKey },
  };
}

/** How an upload error is handled. */
export type ErrorKind =
  /** credentials, bucket or permissions: the whole queue waits until the config changes or a probe succeeds */
  | 'config'
  /** the store does not answer or answers 5xx: the whole queue waits with a growing delay */
  | 'unreachable'
  /** this file only (checksum mismatch, a 4xx about the object): retried later with a growing delay */
  | 'file'
  /** the local file is gone: not retried */
  | 'gone';

const CONFIG_CODES = new Set([
  'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket', 'AccessDenied', 'AllAccessDisabled', 'InvalidBucketName',
  'AuthorizationHeaderMalformed', 'InvalidToken', 'ExpiredToken', 'AccountProblem', 'PermanentRedirect', 'InvalidRequest',
]);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Classify an error from the SDK or the file system (pure: looks at name, code, status). */
export function classifyError(err: unknown): ErrorKind {
  const e = err as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (e?.code === 'ENOENT') return 'gone';
  const name = e?.Code ?? e?.name ?? '';
  if (CONFIG_CODES.has(name)) return 'config';
  const status = e?.$metadata?.httpStatusCode;
  if (status === 401 || status === 403) return 'config';
  if (status === 404 && /bucket/i.test(errMessage(err))) return 'config';
  if (status !== undefined) return status >= 500 ? 'unreachable' : 'file';
  // No HTTP answer at all: the store did not answer (refused, reset, timed out).
  if (NETWORK_CODES.has(e?.code ?? '') || name === 'TimeoutError' || name === 'RequestTimeout' || e?.$metadata !== undefined) return 'unreachable';
  if (/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|timed? ?out/i.test(errMessage(err))) return 'unreachable';
  return 'file';
}

/** A one-line description of an SDK error for health and logs: code, HTTP status and message (never a secret). */
export function describeError(err: unknown): string {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  const code = e?.Code ?? e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const msg = errMessage(err).replace(/\s+/g, ' ').slice(0, 300);
  return `${code}${status ? ` (HTTP ${status})` : ''}: ${msg}`;
}
