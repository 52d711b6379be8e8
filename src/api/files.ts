import { constants } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, extname, sep } from 'node:path';
import type { ArchivedOnly } from '../archive/archive-store';
import type { Conf } from '../conf/types';
import { AppError, clip } from '../lib/errors';
import { type Cutter, roundCutSeconds } from './cutter';
import { handle, queryParam, type Req, sendError } from './http';
import type { Router } from './server';

/** Content-Type by extension of the files we serve. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.ts': 'video/mp2t',
};

export type { Cutter } from './cutter';

/** What the file routes ask when a requested file is not on the local disk. */
export interface ArchiveReads {
  /** The archived-only file of that name, or null (then the request is a 404 as before). */
  find(name: string): ArchivedOnly | null;
  /** Answer GET/HEAD for it from the bucket: whole, a byte range passed through, or a ?start&end cut. */
  serve(req: Req, res: ServerResponse, file: ArchivedOnly, cut: { start: number | null; end: number | null } | null, c: Conf): Promise<void>;
}

/** A parsed Range header: [start, end] inclusive, or 'unsatisfiable', or null for "whole file". */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // malformed or multi-range: RFC 9110 lets us ignore it and send the whole file
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * Resolve a requested name to a served file inside record_dir, or throw NOT_FOUND: one path component, no
 * dotfiles (partials, the database), media extensions only, and the real path (symlinks resolved) still inside.
 */
export async function resolveRecordFile(recordDir: string, name: string): Promise<{ path: string; size: number; mtimeMs: number }> {
  const notFound = new AppError('NOT_FOUND', `no such file in records: ${name.slice(0, 200)}`);
  if (!name || name.includes('/') || name.includes('\\') || name.includes('\0') || name.startsWith('.')) throw notFound;
  if (!CONTENT_TYPES[extname(name).toLowerCase()]) throw notFound;
  let dirReal: string;
  let fileReal: string;
  try {
    dirReal = await realpath(recordDir);
    fileReal = await realpath(`${recordDir}${sep}${name}`);
  } catch {
    throw notFound;
  }
  if (!fileReal.startsWith(dirReal + sep) || fileReal.slice(dirReal.length + 1).includes(sep)) throw notFound;
  const st = await stat(fileReal).catch(() => null);
  if (!st || !st.isFile()) throw notFound;
  return { path: fileReal, size: st.size, mtimeMs: st.mtimeMs };
}

/** A ?start / ?end value: seconds 0–1e7, rounded to 0.1 s (what a cut name holds), null when absent. */
export function parseSeconds(v: string | undefined, what: string): number | null {
  if (v === undefined || v === '') return null;
  const n = /^\s*[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0 || n > 1e7) throw new AppError('BAD_REQUEST', `${what}: seconds from 0 to 10000000 expected, got "${clip(v, 32)}"`);
  return roundCutSeconds(n);
}

/** Open a file to serve: a regular file reached without following a symlink (O_NOFOLLOW), or NOT_FOUND. */
async function openRegular(path: string, name: string): Promise<{ fh: FileHandle; size: number; mtimeMs: number }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  if (!fh) throw new AppError('NOT_FOUND', `no such file in records: ${clip(name, 200)}`);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new AppError('NOT_FOUND', `no such file in records: ${clip(name, 200)}`);
  }
  return { fh, size: st.size, mtimeMs: st.mtimeMs };
}

/** GET/HEAD /client/records/<file>, with byte ranges, conditional requests and MP4 time-range cuts. */
export function registerFileRoutes(r: Router, conf: () => Conf, cutter: Cutter | null, archive: ArchiveReads | null = null): void {
  const serve = handle(async (req: Req, res: ServerResponse) => {
    const c = conf();
    let raw = req.params?.file ?? '';
    try {
      raw = decodeURIComponent(raw);
    } catch {
      throw new AppError('NOT_FOUND', 'no such file in records');
    }
    const local = await resolveRecordFile(c.record_dir, raw).catch((err: unknown) => {
      // The local copy is gone: a file in the archive is streamed from the bucket (src/api/archive-reads.ts).
      const archived = archive && err instanceof AppError && err.code === 'NOT_FOUND' ? archive.find(raw) : null;
      if (!archived) throw err;
      return archived;
    });
    const start = parseSeconds(queryParam(req, 'start'), 'start');
    const end = parseSeconds(queryParam(req, 'end'), 'end');
    // a cut applies to MP4 only (other containers are served whole, whatever the range)
    const cut = (start !== null || end !== null) && extname(raw).toLowerCase() === '.mp4' && cutter !== null;
    if (cut && end !== null && end <= (start ?? 0)) {
      throw new AppError('BAD_REQUEST', `the range is empty: end (${end}) must be after start (${start ?? 0}); both are rounded to 0.1 s`);
    }
    if (archive && !('path' in local)) {
      await archive.serve(req, res, local, cut ? { start, end } : null, c);
      return;
    }
    const file = local as { path: string; size: number; mtimeMs: number };
    if (cut && cutter) {
      const cut = await cutter(file.path, start, end);
      // the cutter verified the cut as its own; it must also sit directly in the real mp4_cutter_dir
      const dirReal = await realpath(c.mp4_cutter_dir).catch(() => null);
      if (dirname(cut.path) !== dirReal) {
        await cut.fh.close();
        throw new AppError('NOT_FOUND', 'the cut is not in mp4_cutter_dir (was it changed just now?); try again');
      }
      await sendFile(req, res, cut, cut.name, c.record_response_content_disposition_header_value);
      return;
    }
    await sendFile(req, res, await openRegular(file.path, raw), raw, c.record_response_content_disposition_header_value);
  });
  r.get('/client/records/:file', serve);
  r.head('/client/records/:file', serve);
}

/**
 * `<inline|attachment>;filename="<name>"`; a name that is not plain printable ASCII (or has a quote or backslash)
 * gets an ASCII fallback plus RFC 6266 `filename*=UTF-8''…` (a raw non-Latin-1 header value would throw).
 */
function contentDisposition(disposition: string, name: string): string {
  if (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name)) return `${disposition};filename="${name}"`;
  const fallback = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const star = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${disposition};filename="${fallback}";filename*=UTF-8''${star}`;
}

/** Answer GET/HEAD with an opened file (closed here, whatever happens): conditional requests, one byte range. */
export async function sendFile(req: Req, res: ServerResponse, f: { fh: FileHandle; size: number; mtimeMs: number }, name: string, disposition: string): Promise<void> {
  let streaming = false;
  try {
    streaming = sendOpened(req, res, f, name, disposition);
  } finally {
    if (!streaming) await f.fh.close();
  }
}

/** Headers, then the bytes from the handle; true when a stream now owns (and will close) the handle. */
function sendOpened(req: Req, res: ServerResponse, f: { fh: FileHandle; size: number; mtimeMs: number }, name: string, disposition: string): boolean {
  const etag = `"${f.size.toString(16)}-${Math.floor(f.mtimeMs).toString(16)}"`;
  const lastModified = new Date(Math.floor(f.mtimeMs / 1000) * 1000).toUTCString();
  const headers: Record<string, string | number> = {
    'Content-Type': CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
    'Content-Disposition': contentDisposition(disposition, name),
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Last-Modified': lastModified,
    'Cache-Control': 'no-cache',
  };
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  if ((inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) || (!inm && ims && Date.parse(ims) >= Date.parse(lastModified))) {
    res.writeHead(304, { ETag: etag, 'Last-Modified': lastModified });
    res.end();
    return false;
  }
  const ifRange = req.headers['if-range'];
  const rangeAllowed = !ifRange || ifRange === etag || ifRange === lastModified;
  const range = rangeAllowed ? parseRange(req.headers.range, f.size) : null;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${f.size}`, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 416, error: `requested range is outside the file (size ${f.size})`, code: 'RANGE_NOT_SATISFIABLE' }));
    return false;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : f.size - 1;
  const length = f.size === 0 ? 0 : end - start + 1;
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${f.size}`;
  headers['Content-Length'] = length;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return false;
  }
  const stream = f.fh.createReadStream({ start, end, autoClose: true });
  stream.on('error', (err) => {
    if (!res.headersSent) sendError(res, err);
    else res.destroy(err);
  });
  res.on('close', () => stream.destroy());
  stream.pipe(res);
  return true;
}
