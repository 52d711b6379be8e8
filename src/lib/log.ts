import pino from 'pino';

/** Structured JSON logger (stdout → journald). Secrets never go in: see redactUrl(). */
export type Logger = pino.Logger;

export const log: Logger = pino({
  level: process.env.EDGEREC_LOG_LEVEL ?? 'info',
  base: { svc: 'edgerec' },
  redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'password', '*.password'], censor: '***' },
  timestamp: pino.stdTimeFunctions.isoTime,
});

/** A URL with any user:password removed, for logs, API answers and file names. */
export function redactUrl(url: string): string {
  // Up to the last '@': a password typed with a raw '#', '/' or '?' must not end the userinfo early (a path
  // holding '@' is over-redacted, which is the safe side).
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^\s]*@/i, '$1***@');
}
