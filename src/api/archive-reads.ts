import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Conf } from '../conf/types';
import { AppError, errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import type { ArchiveStore, ArchivedOnly } from '../archive/archive-store';
import type { S3Store } from '../archive/s3-store';
import type { CutFile } from './cutter';
import { type ArchiveReads, CONTENT_TYPES, type Cutter, sendFile } from './files';

const log = rootLog.child({ component: 'archive-reads' });
let fetchSeq = 0;

/** Serves files whose local copy is gone from the archive bucket (GET /client/records/<file> keeps working). */
export function createArchiveReads(store: ArchiveStore, client: () => S3Store | null, cutter: Cutter | null): ArchiveReads {
  const need = (): S3Store => {
    const s3 = client();
    if (!s3) throw new AppError('ARCHIVE_UNAVAILABLE', 'this file is only in the archive, and archiving is off or misconfigured (archive_s3_*); see /rest-api/health');
    return s3;
  };
  const unavailable = (err: unknown) => (err instanceof AppError ? err : storeFault(errMessage(err)));

  return {
    find: (name) => store.archivedOnly(name),
    async serve(req, res, file, cut, c) {
      const s3 = need();
      if (cut && extname(file.fileName).toLowerCase() === '.mp4' && cutter) {
        const cutFile = await cutFromArchive(s3, file, cut, c, cutter).catch((err: unknown) => {
          throw err instanceof AppError ? err : unavailable(err);
        });
        await sendFile(req, res, cutFile, cutFile.name, c.record_response_content_disposition_header_value);
        return;
      }
      const range = req.headers.range && /^bytes=\d*-\d*$/.test(req.headers.range.trim()) ? req.headers.range.trim() : undefined;
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      let obj;
      try {
        obj = req.method === 'HEAD' ? null : await s3.get(file.objectKey, range, controller.signal);
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 416) throw new AppError('RANGE_NOT_SATISFIABLE', `requested range is outside the file (size ${file.bytes})`);
        throw unavailable(err);
      }
      const headers: Record<string, string | number> = {
        'Content-Type': CONTENT_TYPES[extname(file.fileName).toLowerCase()] ?? 'application/octet-stream',
        'Content-Disposition': `${c.record_response_content_disposition_header_value};filename="${file.fileName.replace(/[^\x20-\x7e]|["\\]/g, '_')}"`,
        'Accept-Ranges': 'bytes',
        'Cache-Control': 'no-cache',
        'X-Edgerec-Source': 'archive',
      };
      if (file.etag) headers.ETag = `"${file.etag}"`;
      if (!obj) {
        headers['Content-Length'] = file.bytes;
        res.writeHead(200, headers);
        res.end();
        return;
      }
      if (obj.ContentRange) headers['Content-Range'] = obj.ContentRange;
      if (obj.ContentLength !== undefined) headers['Content-Length'] = obj.ContentLength;
      if (obj.LastModified) headers['Last-Modified'] = obj.LastModified.toUTCString();
      res.writeHead(obj.ContentRange ? 206 : 200, headers);
      const body = obj.Body as Readable | undefined;
      if (!body) {
        res.end();
        return;
      }
      await pipeline(body, res).catch((err: unknown) => {
        if (!controller.signal.aborted) log.warn({ file: file.fileName, reason: errMessage(err) }, 'archive read ended early');
        res.destroy();
      });
    },
  };
}

/**
 * A ?start&end cut of an archived-only MP4: the object is fetched once into a hidden folder and cut through the
 * cut cache (which verifies and bounds what it serves); the fetched copy is removed after the cut.
 */
async function cutFromArchive(s3: S3Store, file: ArchivedOnly, cut: { start: number | null; end: number | null }, c: Conf, cutter: Cutter): Promise<CutFile> {
  // The source gets its real name (cutName is built from it) in a hidden folder removed after the cut.
  const dir = join(c.mp4_cutter_dir, `.archive-fetch-${process.pid}-${++fetchSeq}`);
  await mkdir(dir, { recursive: true });
  try {
    const src = join(dir, file.fileName);
    const obj = await s3.get(file.objectKey, undefined, AbortSignal.timeout(300_000));
    if (!obj.Body) throw storeFault('the store sent no body');
    await pipeline(obj.Body as Readable, createWriteStream(src));
    const got = (await stat(src)).size;
    if (got !== file.bytes) throw storeFault(`the archived object has ${got} bytes, the index says ${file.bytes}`);
    return await cutter(src, cut.start, cut.end);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The archive store failed or sent something else than the file. */
function storeFault(reason: string): AppError {
  return new AppError('ARCHIVE_UNAVAILABLE', `this file is only in the archive, and the archive store did not answer: ${reason.slice(0, 200)}`);
}
