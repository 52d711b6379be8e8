import type { Rotation } from '../conf/types';
import { AppError, clip } from '../lib/errors';
import type { RecordingManager } from '../recorder/manager';
import type { RecordingOverrides } from '../recorder/stream';
import { handle, readJson, sendJson } from './http';
import type { Router } from './server';

/** Parse a REST `rotation` value: "20" (seconds), "20M" (megabytes), "disabled". */
export function parseRotation(v: unknown): Rotation {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string') throw new AppError('BAD_REQUEST', `config.rotation: expected a string like "20", "20M" or "disabled", got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  const t = s.trim();
  if (t.toLowerCase() === 'disabled') return { kind: 'disabled' };
  const m = /^(\d{1,9})(M?)$/i.exec(t);
  const n = m ? Number(m[1]) : 0;
  if (!m || n <= 0) throw new AppError('BAD_REQUEST', `config.rotation: "${clip(s, 32)}" is not allowed — use N seconds ("20"), N megabytes ("20M") or "disabled"`);
  return m[2] ? { kind: 'megabytes', megabytes: n } : { kind: 'seconds', seconds: n };
}

function asObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('BAD_REQUEST', `${what}: expected a JSON object`);
  return body as Record<string, unknown>;
}

function sessionIdOf(body: Record<string, unknown>): string {
  const id = body.mediaSessionId;
  if (typeof id !== 'string' || id.length === 0 || id.length > 100) throw new AppError('BAD_REQUEST', 'mediaSessionId: a non-empty string is required (see /rest-api/stream/find_all)');
  return id;
}

/** Parse the body of startRecording / recorder/startup. */
export function parseStartBody(raw: unknown): { mediaSessionId: string; overrides: RecordingOverrides } {
  const body = asObject(raw, 'body');
  const mediaSessionId = sessionIdOf(body);
  const overrides: { template?: string; rotation?: Rotation } = {};
  if (body.config !== undefined && body.config !== null) {
    const cfg = asObject(body.config, 'config');
    if (cfg.fileTemplate !== undefined) {
      if (typeof cfg.fileTemplate !== 'string' || !cfg.fileTemplate.trim() || cfg.fileTemplate.length > 1024)
        throw new AppError('BAD_REQUEST', 'config.fileTemplate: a non-empty string of at most 1024 characters is required');
      overrides.template = cfg.fileTemplate;
    }
    if (cfg.rotation !== undefined) overrides.rotation = parseRotation(cfg.rotation);
  }
  return { mediaSessionId, overrides };
}

/** Routes that take a JSON body (undefined when empty) and answer 200 with what `answer` returns (errors: http.ts). */
function jsonPost(r: Router, paths: readonly string[], answer: (body: unknown) => unknown): void {
  const h = handle(async (req, res) => sendJson(res, 200, await answer(await readJson(req, undefined))));
  for (const p of paths) r.post(p, h);
}

/** The reference server's recording control calls (POST JSON under /rest-api). */
export function registerControlRoutes(r: Router, mgr: RecordingManager): void {
  jsonPost(r, ['/rest-api/stream/startRecording', '/rest-api/recorder/startup'], async (raw) => {
    const { mediaSessionId, overrides } = parseStartBody(raw);
    const out = await mgr.startRecording(mediaSessionId, overrides);
    return { status: 200, mediaSessionId, fileName: out.fileName };
  });
  jsonPost(r, ['/rest-api/stream/stopRecording', '/rest-api/recorder/terminate'], async (raw) => {
    const mediaSessionId = sessionIdOf(asObject(raw, 'body'));
    const out = await mgr.stopRecording(mediaSessionId);
    return { status: 200, mediaSessionId, fileName: out.fileName };
  });
  jsonPost(r, ['/rest-api/recorder/find_all'], () => {
    const running = mgr.running().map(({ fileName, mediaSessionId }) => ({ fileName, mediaSessionId }));
    if (running.length === 0) throw new AppError('NO_RECORDINGS');
    return running;
  });
  jsonPost(r, ['/rest-api/stream/find_all'], () => mgr.findAll());
  jsonPost(r, ['/rest-api/stream/find'], (raw) => {
    const body = asObject(raw, 'body');
    const name = body.name;
    const id = body.mediaSessionId;
    if (name === undefined && id === undefined) throw new AppError('BAD_REQUEST', 'give "name" or "mediaSessionId"');
    if (name !== undefined && typeof name !== 'string') throw new AppError('BAD_REQUEST', 'name: a string is required');
    if (id !== undefined && typeof id !== 'string') throw new AppError('BAD_REQUEST', 'mediaSessionId: a string is required');
    const found = mgr.find({ name: name as string | undefined, mediaSessionId: id as string | undefined });
    if (found.length === 0) throw new AppError('NO_SUCH_STREAM', `no stream matches ${name !== undefined ? `name "${clip(name as string)}"` : `mediaSessionId ${clip(String(id))}`}`);
    return found;
  });
}
