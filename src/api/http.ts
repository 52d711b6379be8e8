import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, ERRORS, errMessage, withoutPaths } from '../lib/errors';
import { log } from '../lib/log';

/** Largest request body accepted, bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A request as our handlers see it (polka adds path, query and params). */
export interface Req extends IncomingMessage {
  path?: string;
  query?: Record<string, string | string[] | undefined>;
  params?: Record<string, string>;
  originalUrl?: string;
}

/** Send a JSON answer. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Longest error message in an answer (characters); the messages echo client input only cut short. */
const MAX_ERROR_CHARS = 1000;

/**
 * The one error answer of the REST layer: `{status, error}`; INTERNAL and uncoded errors are logged and answered 500 with
 * their message, absolute paths reduced to the file name (an answer never shows where files live).
 */
export function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof AppError && err.code !== 'INTERNAL') {
    sendJson(res, err.status, { status: err.status, error: bounded(err.message), code: err.code });
    return;
  }
  log.error({ err, component: 'api' }, 'request failed');
  sendJson(res, 500, { status: 500, error: bounded(`${ERRORS.INTERNAL.message}: ${withoutPaths(errMessage(err))}`), code: 'INTERNAL' });
}

function bounded(message: string): string {
  return message.length <= MAX_ERROR_CHARS ? message : `${message.slice(0, MAX_ERROR_CHARS)}…`;
}

/** Wrap a handler so that a throw or a rejected promise becomes a JSON error, never a crash. */
export function handle(fn: (req: Req, res: ServerResponse) => unknown): (req: Req, res: ServerResponse) => void {
  return (req, res) => {
    try {
      const r = fn(req, res);
      if (r instanceof Promise) r.catch((err: unknown) => sendError(res, err));
    } catch (err) {
      sendError(res, err);
    }
  };
}

/** Read the request body (at most MAX_BODY_BYTES; 413 past that). */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new AppError('BODY_TOO_LARGE'));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new AppError('BODY_TOO_LARGE'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

/** Read a JSON body; empty body → `emptyValue`; malformed → 400 naming the parse error. */
export async function readJson(req: IncomingMessage, emptyValue: unknown = {}): Promise<unknown> {
  const body = await readBody(req);
  if (body.length === 0) return emptyValue;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new AppError('BAD_JSON', `request body is not valid JSON: ${errMessage(err)}`);
  }
}

/** The value of a single query parameter (first one when repeated). */
export function queryParam(req: Req, name: string): string | undefined {
  const v = req.query?.[name];
  return Array.isArray(v) ? v[0] : v;
}
