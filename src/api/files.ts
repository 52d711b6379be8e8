import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, sep } from 'node:path';
import type { Conf } from '../conf/types';
import { AppError } from '../lib/errors';
import type { ArchiveReads } from './archive-reads';
import { handle, queryParam, type Req, sendError } from './http';
import type { Router } from './server';

/** Content-Type by extension of the files we serve. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.ts': 'video/mp2t',
};

/** Makes (or reuses) a time-range cut of an MP4 and returns its absolute path. */
export type Cutter = (srcPath: string, startS: number | null, endS: number | null) => Promise<string>;

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

function parseSeconds(v: string | undefined, what: string): number | null {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1e7) throw new AppError('BAD_REQUEST', `${what}: seconds ≥ 0 expected, got "${v}"`);
  return n;
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
    let name = raw;
    const start = parseSeconds(queryParam(req, 'start'), 'start');
    const end = parseSeconds(queryParam(req, 'end'), 'end');
    if (archive && !('path' in local)) {
      if (start !== null && end !== null && end <= start) throw new AppError('BAD_REQUEST', `end (${end}) must be after start (${start})`);
      await archive.serve(req, res, local, start !== null || end !== null ? { start, end } : null, c);
      return;
    }
    let file = local as { path: string; size: number; mtimeMs: number };
    if ((start !== null || end !== null) && extname(name).toLowerCase() === '.mp4' && cutter) {
      if (start !== null && end !== null && end <= start) throw new AppError('BAD_REQUEST', `end (${end}) must be after start (${start})`);
      const cutPath = await cutter(file.path, start, end);
      const st = await stat(cutPath);
      name = cutPath.slice(cutPath.lastIndexOf(sep) + 1);
      file = { path: cutPath, size: st.size, mtimeMs: st.mtimeMs };
    }
    sendFile(req, res, file, name, c.record_response_content_disposition_header_value);
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

/** Answer GET/HEAD for a local file: conditional requests, one byte range, Content-Disposition. */
export function sendFile(req: Req, res: ServerResponse, f: { path: string; size: number; mtimeMs: number }, name: string, disposition: string): void {
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
    return;
  }
  const ifRange = req.headers['if-range'];
  const rangeAllowed = !ifRange || ifRange === etag || ifRange === lastModified;
  const range = rangeAllowed ? parseRange(req.headers.range, f.size) : null;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${f.size}`, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 416, error: `requested range is outside the file (size ${f.size})`, code: 'RANGE_NOT_SATISFIABLE' }));
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : f.size - 1;
  const length = f.size === 0 ? 0 : end - start + 1;
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${f.size}`;
  headers['Content-Length'] = length;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(f.path, { start, end });
  stream.on('error', (err) => {
    if (!res.headersSent) sendError(res, err);
    else res.destroy(err);
  });
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}
