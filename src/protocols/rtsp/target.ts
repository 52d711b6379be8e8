/** RTSP URLs, their errors and header lines: what every RTSP client piece of edgerec shares. */
import type { ErrorCode } from '../../lib/errors';
import type { Credentials } from './auth';

/** Why an RTSP request failed; the message names host:port and never the password. */
export type RtspErrorKind = 'bad-url' | 'refused' | 'unreachable' | 'timeout' | 'not-found' | 'unauthorized' | 'status' | 'bad-answer';

/**
 * A failed RTSP exchange; the message names host:port and never the password. Its code is PEER_FAILED (src/lib/errors.ts);
 * `status` is the camera's RTSP status (not an HTTP one, hence not an AppError).
 */
export class RtspError extends Error {
  readonly code: ErrorCode = 'PEER_FAILED';
  constructor(
    readonly kind: RtspErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RtspError';
  }
}

/** Where a camera URL points: host, port, the URL without credentials, and the credentials apart. */
export interface Target {
  readonly host: string;
  readonly port: number;
  /** host:port for messages */
  readonly where: string;
  /** the request URL, credentials stripped */
  readonly uri: string;
  readonly path: string;
  readonly creds: Credentials | null;
}

/** Split an rtsp:// URL into a Target; throws RtspError('bad-url') naming what is wrong (never the password). */
export function parseTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // not echoed: stripCreds cannot find a password holding '#', '/' or '?' in a URL that does not parse
    throw new RtspError('bad-url', 'not a valid RTSP URL: rtsp://[user:password@]host[:port]/path, with reserved characters in the user or password percent-encoded');
  }
  if (u.protocol === 'rtsps:') throw new RtspError('bad-url', 'rtsps:// (RTSP over TLS) is not supported: use rtsp://');
  if (u.protocol !== 'rtsp:') throw new RtspError('bad-url', `not an RTSP URL (${u.protocol}//): use rtsp://host[:port]/path`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new RtspError('bad-url', 'the RTSP URL has no host: use rtsp://host[:port]/path');
  const port = u.port ? Number(u.port) : 554;
  const path = u.pathname || '/';
  const creds = u.username ? { user: safeDecode(u.username), password: safeDecode(u.password) } : null;
  return { host, port, where: `${u.hostname}:${port}`, uri: `rtsp://${u.host}${path}${u.search}`, path, creds };
}

/** `location` resolved against `base` (as is when it cannot be). */
export function resolveUrl(location: string, base: string): string {
  try {
    return new URL(location, base).href;
  } catch {
    return location;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** RTSP header lines (`Name: value`) by lower-case name, repeated headers kept in order. */
export function parseHeaderLines(lines: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    headers.set(key, [...(headers.get(key) ?? []), line.slice(colon + 1).trim()]);
  }
  return headers;
}

/** The URL without its user:password@. */
export function stripCreds(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^\s]*@/i, '$1');
}
