/**
 * Every error code the service answers with: HTTP status and a message a person can act on.
 * docs: README.md "Errors" lists the same codes (a unit test keeps them in step).
 */
export const ERRORS = {
  BAD_JSON: { status: 400, message: 'request body is not valid JSON' },
  BAD_REQUEST: { status: 400, message: 'bad request' },
  UNAUTHORIZED: { status: 401, message: 'missing or wrong Authorization: Bearer token' },
  NOT_FOUND: { status: 404, message: 'not found' },
  NO_SUCH_STREAM: { status: 404, message: 'no such stream, or it is not publishing' },
  NO_RECORDINGS: { status: 404, message: 'no recording is running' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  CONFLICT: { status: 409, message: 'conflict' },
  BODY_TOO_LARGE: { status: 413, message: 'request body is larger than 1 MiB' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'requested range is outside the file' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'unsupported content type' },
  BAD_MEDIA: { status: 422, message: 'the file cannot be cut: it is damaged, truncated or not a plain MP4' },
  CUT_TOO_LARGE: { status: 422, message: 'the cut would be larger than the cut cache (mp4_cutter_max_bytes)' },
  INTERNAL: { status: 500, message: 'internal error' },
  RECORDING_DISABLED: { status: 403, message: 'recording is switched off (record_streams=false)' },
  UNAVAILABLE: { status: 503, message: 'service is shutting down' },
  BUSY: { status: 503, message: 'too many cuts are being made; try again in a few seconds' },
  ARCHIVE_UNAVAILABLE: { status: 502, message: 'the file is only in the archive and the archive store cannot be reached' },
  // Errors that reach the log and health rather than a REST answer (the status is what an answer would carry).
  BAD_CONFIG: { status: 500, message: 'the config is not valid' },
  PEER_FAILED: { status: 502, message: 'a camera or publisher failed or sent what cannot be recorded' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/**
 * An error that carries an ErrorCode, an HTTP status and a message meant for the client (or the log and health).
 * `cause` keeps the error it wraps (see errnoOf).
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message?: string, options?: { readonly cause?: unknown }) {
    super(message ?? ERRORS[code].message, options);
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

/** The system error code (ENOSPC, ENOENT…) of an error or of the first error in its `cause` chain that has one. */
export function errnoOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 8 && e instanceof Error; i++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
    e = e.cause;
  }
  return undefined;
}

/** The message of anything thrown. */
export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** At most `max` characters of a client-supplied value, for echoing it in a message (the rest marked as cut). */
export function clip(value: string, max = 64): string {
  const cps = Array.from(value.length > max * 2 + 8 ? value.slice(0, max * 2 + 8) : value);
  return cps.length <= max ? value : `${cps.slice(0, max).join('')}…(${value.length} characters)`;
}

/** A message with every absolute path reduced to its last component (answers never show where files live). */
export function withoutPaths(message: string): string {
  return message.replace(/(^|[\s'"(\[=:,])\/(?:[^\s'"\/\]),]+\/)+([^\s'"\/\]),]*)/g, '$1$2');
}
