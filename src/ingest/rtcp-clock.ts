import { connect, type Socket } from 'node:net';
import { authorization, parseChallenges, type AuthChallenge } from './rtsp-auth';
import { parseTarget, resolveUrl, RtspError, stripCreds, type Target } from './rtsp-describe';
import { RtspTcpSplitter, type RtspAnswer, type RtspTcpItem } from './rtsp-interleaved';
import { parseSdp } from './sdp';
import { ntpToEpochMs } from './whip-clock';

/** The sender info of an RTCP SR (RFC 3550 §6.4.1). */
export interface RtcpSenderInfo {
  readonly ssrc: number;
  /** 64-bit NTP timestamp: seconds since 1900 in the high word */
  readonly ntp: bigint;
  readonly rtpTime: number;
}

/** The first sender report (PT 200) of an RTCP packet, compound or not; null when it holds none or is malformed. */
export function findSenderReport(rtcp: Buffer): RtcpSenderInfo | null {
  let off = 0;
  // Every sub-packet is at least 4 bytes, so at most length/4 passes.
  while (off + 4 <= rtcp.length) {
    const b0 = rtcp[off] ?? 0;
    if (b0 >> 6 !== 2) return null;
    const size = (rtcp.readUInt16BE(off + 2) + 1) * 4;
    if (off + size > rtcp.length) return null;
    if (rtcp[off + 1] === 200 && size >= 28) {
      return { ssrc: rtcp.readUInt32BE(off + 4), ntp: rtcp.readBigUInt64BE(off + 8), rtpTime: rtcp.readUInt32BE(off + 16) };
    }
    off += size;
  }
  return null;
}

/** How far the camera's wall clock is ahead of ours (ms, negative = behind), from an SR's NTP time and when it arrived. */
export function clockOffsetMs(sr: RtcpSenderInfo, arrivedAtMs: number): number {
  return Math.round(ntpToEpochMs(sr.ntp) - arrivedAtMs) + 0; // + 0: no -0
}

/** Limits of a clock probe. */
export interface ProbeOptions {
  /** the whole probe, RTSP handshake included */
  readonly timeoutMs: number;
  /** media bytes read while waiting for an SR before giving up with null (default 4 MB) */
  readonly maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const TEARDOWN_WAIT_MS = 500;

/**
 * Open a short RTSP session (TCP interleaved, Basic/Digest auth from the URL), play it until the first RTCP sender
 * report and return the camera clock's offset in ms: SR NTP time as epoch ms − Date.now() when it arrived.
 * null: the session played but no SR with a non-zero NTP time came within timeoutMs / maxBytes.
 * Throws RtspError (never with the password) when the camera cannot be reached, refuses, or does not answer
 * the handshake (DESCRIBE/SETUP/PLAY) in time. The socket is always destroyed (after a TEARDOWN when playing).
 */
export async function probeCameraClock(url: string, opts: ProbeOptions): Promise<number | null> {
  const probe = new ClockProbe(safeTarget(url), opts.maxBytes ?? DEFAULT_MAX_BYTES);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeoutMs);
  });
  try {
    const r = await Promise.race([probe.run(), timeout]);
    if (r !== 'timeout') return r;
    if (probe.playing) return null;
    throw new RtspError('timeout', `${probe.phase} within ${opts.timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await probe.close();
  }
}

/** One probe session: one connection (two after a redirect), one request at a time. */
class ClockProbe {
  playing = false;
  phase: string;
  private socket: Socket | null = null;
  private splitter = new RtspTcpSplitter();
  private waiter: { resolve: (a: RtspAnswer) => void; reject: (e: Error) => void } | null = null;
  private found: { resolve: (v: number | null) => void; reject: (e: Error) => void } | null = null;
  private challenges: AuthChallenge[] = [];
  private nc = 0;
  private cseq = 0;
  private session: string | null = null;
  private sessionUri = '';
  private readonly rtcpChannels = new Set<number>();
  private bytes = 0;
  private closed = false;

  constructor(
    private target: Target,
    private readonly maxBytes: number,
  ) {
    this.phase = `could not connect to ${target.where}`;
  }

  async run(): Promise<number | null> {
    await this.open();
    let a = await this.request('DESCRIBE', this.target.uri, { Accept: 'application/sdp' });
    if (a.status >= 300 && a.status < 400) {
      const location = a.headers.get('location')?.[0];
      if (!location) throw new RtspError('status', `${this.target.where} redirects without a Location (${a.status} ${a.reason})`, a.status);
      const next = parseTarget(resolveUrl(location, this.target.uri));
      // Credentials follow a redirect only to the same host.
      this.target = { ...next, creds: next.creds ?? (next.host === this.target.host ? this.target.creds : null) };
      this.socket?.destroy();
      this.splitter = new RtspTcpSplitter();
      this.challenges = [];
      await this.open();
      a = await this.request('DESCRIBE', this.target.uri, { Accept: 'application/sdp' });
    }
    this.expectOk('DESCRIBE', a);
    if (!/^\s*v=0/.test(a.body)) throw new RtspError('bad-answer', `${this.target.where} answered DESCRIBE without an SDP body`);
    const media = parseSdp(a.body);
    if (media.length === 0) throw new RtspError('bad-answer', `${this.target.where} describes no audio or video track`);
    const base = stripCreds(a.headers.get('content-base')?.[0] ?? a.headers.get('content-location')?.[0] ?? this.target.uri);
    for (const [i, m] of media.entries()) {
      const ch = 2 * i;
      const headers: Record<string, string> = { Transport: `RTP/AVP/TCP;unicast;interleaved=${ch}-${ch + 1}` };
      if (this.session) headers.Session = this.session;
      const s = await this.request('SETUP', controlUrl(base, m.control), headers);
      this.expectOk('SETUP', s);
      this.session ??= s.headers.get('session')?.[0]?.split(';')[0]?.trim() || null;
      const given = /interleaved=(\d+)(?:-(\d+))?/i.exec(s.headers.get('transport')?.[0] ?? '');
      this.rtcpChannels.add(given ? Number(given[2] ?? Number(given[1]) + 1) : ch + 1);
    }
    this.sessionUri = controlUrl(base, sessionControl(a.body));
    const found = new Promise<number | null>((resolve, reject) => (this.found = { resolve, reject }));
    // Armed before PLAY (an SR may share a TCP chunk with the PLAY answer); a failed PLAY leaves it unawaited.
    found.catch(() => undefined);
    const headers: Record<string, string> = {};
    if (this.session) headers.Session = this.session;
    const p = await this.request('PLAY', this.sessionUri, headers);
    this.expectOk('PLAY', p);
    this.playing = true;
    this.phase = `no RTCP sender report from ${this.target.where}`;
    return found;
  }

  /** TEARDOWN when a session exists (bounded wait for its answer), then destroy the socket. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const s = this.socket;
    if (s && !s.destroyed && this.session) {
      const answered = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, TEARDOWN_WAIT_MS);
        this.waiter = { resolve: () => (clearTimeout(t), resolve()), reject: () => (clearTimeout(t), resolve()) };
      });
      s.write(this.format('TEARDOWN', this.sessionUri || this.target.uri, { Session: this.session }));
      await answered;
    }
    s?.destroy();
  }

  private open(): Promise<void> {
    const t = this.target;
    this.phase = `could not connect to ${t.where}`;
    return new Promise((resolve, reject) => {
      const s = connect({ host: t.host, port: t.port });
      this.socket = s;
      s.once('connect', () => {
        s.removeAllListeners('error');
        // A socket left behind by a redirect must not fail the requests of the next one.
        s.on('error', (err: NodeJS.ErrnoException) => {
          if (this.socket === s) this.fail(new RtspError('bad-answer', `connection to ${t.where} failed: ${err.code ?? err.message}`));
        });
        s.on('close', () => {
          if (this.socket === s) this.fail(new RtspError('bad-answer', `${t.where} closed the connection${this.playing ? ' before sending an RTCP sender report' : ''}`));
        });
        s.on('data', (d: Buffer) => {
          if (this.socket === s) this.onData(d);
        });
        resolve();
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        s.destroy();
        if (err.code === 'ECONNREFUSED') reject(new RtspError('refused', `connection refused by ${t.where}: is the camera up and the port right?`));
        else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') reject(new RtspError('unreachable', `cannot resolve the camera host ${t.host}`));
        else reject(new RtspError('unreachable', `cannot connect to ${t.where}: ${err.code ?? err.message}`));
      });
    });
  }

  /** Send a request, answering one 401 (or a stale nonce once) with credentials. */
  private async request(method: string, uri: string, headers: Record<string, string>): Promise<RtspAnswer> {
    this.phase = `no answer to ${method} from ${this.target.where}`;
    let staleRetried = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const sentAuth = this.challenges.length > 0;
      const a = await new Promise<RtspAnswer>((resolve, reject) => {
        this.waiter = { resolve, reject };
        this.socket?.write(this.format(method, uri, headers));
      });
      if (a.status !== 401) return a;
      const creds = this.target.creds;
      if (!creds) throw new RtspError('unauthorized', `${this.target.where} needs credentials: put user:password@ in the camera URL (401 ${a.reason})`, 401);
      const challenges = parseChallenges(a.headers.get('www-authenticate') ?? []);
      const stale = challenges.some((c) => c.params.stale?.toLowerCase() === 'true');
      if (sentAuth && !(stale && !staleRetried)) throw new RtspError('unauthorized', `wrong credentials for ${this.target.where} (401 ${a.reason})`, 401);
      if (sentAuth) staleRetried = true;
      if (!authorization(challenges, creds, { method, uri })) {
        throw new RtspError('unauthorized', `${this.target.where} asks for an authentication scheme we do not support (Basic and Digest MD5 are)`, 401);
      }
      this.challenges = challenges;
      this.nc = 0;
    }
    throw new RtspError('unauthorized', `${this.target.where} kept asking for credentials`, 401);
  }

  private format(method: string, uri: string, headers: Record<string, string>): string {
    const all: Record<string, string> = { CSeq: String(++this.cseq), 'User-Agent': 'edgerec', ...headers };
    const creds = this.target.creds;
    if (creds && this.challenges.length) {
      const auth = authorization(this.challenges, creds, { method, uri, nc: ++this.nc });
      if (auth) all.Authorization = auth;
    }
    const lines = [`${method} ${uri} RTSP/1.0`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  private expectOk(method: string, a: RtspAnswer): void {
    if (a.status === 200) return;
    if (a.status === 404) throw new RtspError('not-found', `${this.target.where} has no stream at ${this.target.path} (404 ${a.reason})`, 404);
    const hint = a.status === 461 ? ': the camera does not offer RTP over TCP' : '';
    throw new RtspError('status', `${this.target.where} answered ${method} with ${a.status} ${a.reason}${hint}`, a.status);
  }

  private onData(d: Buffer): void {
    const arrivedAt = Date.now();
    this.bytes += d.length;
    let items: RtspTcpItem[];
    try {
      items = this.splitter.push(d);
    } catch (err) {
      this.fail(new RtspError('bad-answer', `${this.target.where} sent bytes that are not RTSP: ${(err as Error).message}`));
      this.socket?.destroy();
      return;
    }
    for (const it of items) {
      if (it.kind === 'answer') {
        const w = this.waiter;
        this.waiter = null;
        w?.resolve(it);
      } else if (it.kind === 'frame' && this.found && this.rtcpChannels.has(it.channel)) {
        const sr = findSenderReport(it.payload);
        // RFC 3550: a sender without a wall clock may send NTP 0 — that says nothing about its clock.
        if (sr && sr.ntp !== 0n) {
          this.found.resolve(clockOffsetMs(sr, arrivedAt));
          this.found = null;
        }
      }
    }
    if (this.bytes > this.maxBytes && this.found) {
      this.found.resolve(null);
      this.found = null;
    } else if (this.bytes > this.maxBytes && !this.playing) {
      this.fail(new RtspError('bad-answer', `${this.target.where} sent more than ${this.maxBytes} bytes before PLAY was answered`));
    }
  }

  private fail(err: Error): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
    const f = this.found;
    this.found = null;
    f?.reject(err);
  }
}

/** parseTarget, without echoing an unparsable URL: stripCreds misses a password holding '#', '/' or '?'. */
function safeTarget(url: string): Target {
  try {
    return parseTarget(url);
  } catch (err) {
    if (err instanceof RtspError && err.kind === 'bad-url' && err.message.startsWith('not a valid RTSP URL')) {
      throw new RtspError('bad-url', 'not a valid RTSP URL: rtsp://[user:password@]host[:port]/path, with reserved characters in the user or password percent-encoded');
    }
    throw err;
  }
}

/** A track's (or the session's) a=control resolved against Content-Base; relative ones are appended as ffmpeg and live555 do. */
export function controlUrl(base: string, control: string): string {
  if (!control || control === '*') return base;
  if (/^rtsp:\/\//i.test(control)) return stripCreds(control);
  return base.endsWith('/') ? `${base}${control}` : `${base}/${control}`;
}

/** The session-level a=control of an SDP (before the first m= line); '' when absent. */
function sessionControl(sdp: string): string {
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) break;
    const m = /^a=control:\s*(.*)$/i.exec(line);
    if (m) return m[1] ?? '';
  }
  return '';
}
