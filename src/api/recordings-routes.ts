import { unlink } from 'node:fs/promises';
import type { ArchiveInfo } from '../archive/archive-store';
import type { Conf } from '../conf/types';
import { AppError, clip } from '../lib/errors';
import { log } from '../lib/log';
import type { RecordingRow, RecordingState, RecordingsStore } from '../store/recordings';
import { handle, queryParam, type Req, sendJson } from './http';
import type { Router } from './server';

const STATES: readonly RecordingState[] = ['recording', 'finalizing', 'complete', 'recovered', 'failed'];

function intParam(req: Req, name: string, min: number, max: number): number | undefined {
  const v = queryParam(req, name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new AppError('BAD_REQUEST', `${name}: an integer from ${min} to ${max} is expected, got "${clip(v, 32)}"`);
  return n;
}

/** The archive part of a row as the API shows it (null when the file is not queued for the archive). */
export function archiveView(a: ArchiveInfo | null): Record<string, unknown> | null {
  if (!a) return null;
  return { state: a.state, key: a.objectKey, at: a.archivedMs ?? a.updatedMs, error: a.error, attempts: a.attempts, local: a.localGoneMs === null };
}

/** A row as the API shows it: times in epoch ms, the download URL for finished files, the archive state. */
export function recordingView(row: RecordingRow, archive?: ArchiveInfo | null): Record<string, unknown> {
  const done = row.state === 'complete' || row.state === 'recovered';
  return {
    id: row.id,
    fileName: row.fileName,
    stream: row.streamName,
    mediaSessionId: row.mediaSessionId,
    published: row.sourceProtocol,
    start: row.startMs,
    end: row.endMs,
    durationMs: row.durationMs,
    bytes: row.bytes,
    audioCodec: row.audioCodec,
    videoCodec: row.videoCodec,
    container: row.container,
    fragmentIndex: row.fragmentIndex,
    state: row.state,
    error: row.error,
    url: done ? `/client/records/${encodeURIComponent(row.fileName)}` : null,
    ...(archive !== undefined ? { archive: archiveView(archive) } : {}),
  };
}

/** GET /rest-api/recordings (VMS polling), GET and DELETE /rest-api/recordings/:id. */
export function registerRecordingsRoutes(r: Router, store: RecordingsStore, conf: () => Conf, archiveInfo?: (id: number) => ArchiveInfo | null): void {
  const view = (row: RecordingRow) => recordingView(row, archiveInfo ? archiveInfo(row.id) : undefined);
  r.get(
    '/rest-api/recordings',
    handle((req, res) => {
      const from = intParam(req, 'from', 0, Number.MAX_SAFE_INTEGER);
      const to = intParam(req, 'to', 0, Number.MAX_SAFE_INTEGER);
      if (from !== undefined && to !== undefined && to <= from) throw new AppError('BAD_REQUEST', `to (${to}) must be greater than from (${from})`);
      const state = queryParam(req, 'state');
      if (state !== undefined && !STATES.includes(state as RecordingState))
        throw new AppError('BAD_REQUEST', `state: one of ${STATES.join(', ')} expected, got "${clip(state, 32)}"`);
      const stream = queryParam(req, 'stream');
      const page = store.list({
        stream: stream || undefined,
        from,
        to,
        state: state as RecordingState | undefined,
        limit: intParam(req, 'limit', 1, 1000) ?? 100,
        after: queryParam(req, 'after') || undefined,
      });
      sendJson(res, 200, { recordings: page.rows.map(view), next: page.next });
    }),
  );
  const byId = (req: Req): RecordingRow => {
    const raw = req.params?.id ?? '';
    const id = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(id)) throw new AppError('BAD_REQUEST', `id: a positive integer expected, got "${raw.slice(0, 50)}"`);
    const row = store.get(id);
    if (!row) throw new AppError('NOT_FOUND', `no recording with id ${id}`);
    return row;
  };
  r.get(
    '/rest-api/recordings/:id',
    handle((req, res) => sendJson(res, 200, view(byId(req)))),
  );
  r.delete(
    '/rest-api/recordings/:id',
    handle(async (req, res) => {
      const row = byId(req);
      if (row.state === 'recording' || row.state === 'finalizing')
        throw new AppError('CONFLICT', `recording ${row.id} is ${row.state}; stop it first (/rest-api/stream/stopRecording)`);
      // A file only in the archive has no local copy: its old path may hold a newer file of the same name now.
      const onlyArchived = (archiveInfo?.(row.id)?.localGoneMs ?? null) !== null;
      if (!onlyArchived && row.path && row.path.startsWith(conf().record_dir)) {
        await unlink(row.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      store.delete(row.id);
      log.info({ component: 'api', id: row.id, file: row.fileName }, 'recording deleted by request');
      sendJson(res, 200, { status: 200, deleted: row.id });
    }),
  );
}
