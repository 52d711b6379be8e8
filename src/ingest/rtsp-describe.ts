import { connect, type Socket } from 'node:net';
import type { Codecs } from '../pipeline/types';
import { authorization, parseChallenges, type Credentials } from './rtsp-auth';
import { parseSdp, sdpCodecs, type SdpMedia } from './sdp';

/** What a camera's DESCRIBE answer tells before its pipeline is built. */
export interface RtspDescription {
  readonly sdp: string;
  readonly media: SdpMedia[];
  readonly codecs: Codecs;
  /** Content-Base (or the request URL), without credentials: a=control values are relative to it */
  readonly contentBase: string;
}

/** Why a DESCRIBE failed; the message names host:port and never the password. */
export type RtspErrorKind = 'bad-url' | 'refused' | 'unreachable' | 'timeout' | 'not-found' | 'unauthorized' | 'status' | 'bad-answer';

/** A failed DESCRIBE. */
export class RtspError extends Error {
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

interface Answer {
  readonly status: number;
  readonly reason: string;
  /** header values by lower-cased name */
  readonly headers: ReadonlyMap<string, string[]>;
  readonly body: string;
}

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 1024 * 1024;

/** Learn a camera's media with one RTSP/1.0 DESCRIBE (Basic/Digest auth from the URL, one redirect), within timeoutMs. */
export async function describeRtsp(url: string, opts: { readonly timeoutMs: number }): Promise<RtspDescription> {
  let target = parseTarget(url);
  let conn: Conn | null = null;
  let connecting: Socket | null = null;
  let phase = `could not connect to ${target.where}`;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      conn?.close();
      connecting?.destroy();
      reject(new RtspError('timeout', `${phase} within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
  });
  const work = async (): Promise<RtspDescription> => {
    let auth: string | null = null;
    let redirected = false;
    let staleRetried = false;
    for (let cseq = 1; cseq <= 6; cseq++) {
      if (!conn || conn.closed) {
        phase = `could not connect to ${target.where}`;
        conn = await Conn.open(target, (s) => (connecting = s));
        connecting = null;
      }
      phase = `no RTSP answer from ${target.where}`;
      const headers: Record<string, string> = { CSeq: String(cseq), Accept: 'application/sdp', 'User-Agent': 'edgerec' };
      if (auth) headers.Authorization = auth;
      const a = await conn.request('DESCRIBE', target.uri, headers);
      if (a.status === 401) {
        if (!target.creds) throw new RtspError('unauthorized', `${target.where} needs credentials: put user:password@ in the camera URL (401 ${a.reason})`, 401);
        const challenges = parseChallenges(a.headers.get('www-authenticate') ?? []);
        const stale = challenges.some((c) => c.params.stale?.toLowerCase() === 'true');
        if (auth && !(stale && !staleRetried)) throw new RtspError('unauthorized', `wrong credentials for ${target.where} (401 ${a.reason})`, 401);
        if (auth) staleRetried = true;
        auth = authorization(challenges, target.creds, { method: 'DESCRIBE', uri: target.uri });
        if (!auth) throw new RtspError('unauthorized', `${target.where} asks for an authentication scheme we do not support (Basic and Digest MD5 are)`, 401);
        continue;
      }
      if (a.status >= 300 && a.status < 400) {
        const location = a.headers.get('location')?.[0];
        if (!location || redirected) throw new RtspError('status', `${target.where} redirects ${redirected ? 'more than once' : 'without a Location'} (${a.status} ${a.reason})`, a.status);
        redirected = true;
        auth = null;
        const next = parseTarget(resolveUrl(location, target.uri));
        // Credentials follow a redirect only to the same host.
        target = { ...next, creds: next.creds ?? (next.host === target.host ? target.creds : null) };
        conn.close();
        conn = null;
        continue;
      }
      if (a.status === 404) throw new RtspError('not-found', `${target.where} has no stream at ${target.path} (404 ${a.reason})`, 404);
      if (a.status !== 200) throw new RtspError('status', `${target.where} answered DESCRIBE with ${a.status} ${a.reason}`, a.status);
      const sdp = a.body;
      if (!/^\s*v=0/.test(sdp)) throw new RtspError('bad-answer', `${target.where} answered DESCRIBE without an SDP body (Content-Type ${a.headers.get('content-type')?.[0] ?? 'none'})`);
      const media = parseSdp(sdp);
      const base = a.headers.get('content-base')?.[0] ?? a.headers.get('content-location')?.[0] ?? target.uri;
      return { sdp, media, codecs: sdpCodecs(media), contentBase: stripCreds(base) };
    }
    throw new RtspError('unauthorized', `${target.where} kept asking for credentials`, 401);
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    (conn as Conn | null)?.close();
  }
}

/** Split an rtsp:// URL into a Target; throws RtspError('bad-url') naming what is wrong (never the password). */
export function parseTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RtspError('bad-url', `not a valid RTSP URL: ${stripCreds(url)}`);
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

/** One RTSP connection, one request at a time. */
class Conn {
  closed = false;
  private buf = Buffer.alloc(0);
  private waiter: { resolve: (a: Answer) => void; reject: (e: Error) => void } | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly t: Target,
  ) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.fail(new RtspError('bad-answer', `${t.where} closed the connection before answering`));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new RtspError('bad-answer', `connection to ${t.where} failed: ${err.code ?? err.message}`)));
  }

  /** Connect; `track` gets the socket at once so a deadline can destroy it while connecting. */
  static open(t: Target, track: (s: Socket) => void): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: t.host, port: t.port });
      track(s);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(new Conn(s, t));
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        s.destroy();
        if (err.code === 'ECONNREFUSED') reject(new RtspError('refused', `connection refused by ${t.where}: is the camera up and the port right?`));
        else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') reject(new RtspError('unreachable', `cannot resolve the camera host ${t.host}`));
        else reject(new RtspError('unreachable', `cannot connect to ${t.where}: ${err.code ?? err.message}`));
      });
    });
  }

  request(method: string, uri: string, headers: Record<string, string>): Promise<Answer> {
    const lines = [`${method} ${uri} RTSP/1.0`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buf.length > MAX_HEAD) this.fail(new RtspError('bad-answer', `${this.t.where} sent a header larger than ${MAX_HEAD} bytes`));
      return;
    }
    const head = this.buf.toString('latin1', 0, end).split('\r\n');
    const m = /^RTSP\/\d\.\d\s+(\d{3})\s*(.*)$/.exec(head[0] ?? '');
    if (!m) {
      this.fail(new RtspError('bad-answer', `${this.t.where} does not speak RTSP (answered "${(head[0] ?? '').slice(0, 60)}")`));
      this.close();
      return;
    }
    const headers = parseHeaderLines(head.slice(1));
    const len = Number(headers.get('content-length')?.[0] ?? 0);
    if (!Number.isInteger(len) || len < 0 || len > MAX_BODY) {
      this.fail(new RtspError('bad-answer', `${this.t.where} sent a bad Content-Length`));
      this.close();
      return;
    }
    if (this.buf.length < end + 4 + len) return;
    const body = this.buf.toString('utf8', end + 4, end + 4 + len);
    this.buf = this.buf.subarray(end + 4 + len);
    const w = this.waiter;
    this.waiter = null;
    w?.resolve({ status: Number(m[1]), reason: m[2] ?? '', headers, body });
    if (headers.get('connection')?.some((v) => /close/i.test(v))) this.close();
  }
}
