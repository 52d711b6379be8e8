import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { authorization, parseChallenges, type AuthChallenge } from './auth';
import { parseTarget, resolveUrl, RtspError, stripCreds, type Target } from './target';
import { RtspTcpSplitter, type RtspAnswer, type RtspTcpItem } from './interleaved';
import { parseSdp, parseSdpSession, type SdpMedia } from '../sdp/sdp';

/** One track set up on a session: its SDP section and the interleaved channels it arrives on. */
export interface SessionTrack {
  readonly media: SdpMedia;
  readonly rtpChannel: number;
  readonly rtcpChannel: number;
}

/** What DESCRIBE told. */
export interface SessionDescription {
  readonly sdp: string;
  readonly media: SdpMedia[];
  /** Content-Base (or Content-Location, or the request URL), without credentials */
  readonly base: string;
}

/** Bytes a server may send before PLAY is answered (an SDP, a few answers): more is not an RTSP server. */
const MAX_BYTES_BEFORE_PLAY = 4 * 1024 * 1024;
const TEARDOWN_WAIT_MS = 500;
const READ_BUFFER_BYTES = 512 * 1024;
/** RFC 2326 §12.37: a session times out after 60 s without a request unless the server says otherwise */
const DEFAULT_SESSION_TIMEOUT_S = 60;
/** RTCP receiver reports: some cameras end a session that never sends any */
const RECEIVER_REPORT_MS = 5000;

/**
 * One RTSP/1.0 client session over one TCP connection (two after a redirect), RTP and RTCP interleaved on it
 * (RFC 2326 §10.12): DESCRIBE, SETUP per track, PLAY, keep-alive (OPTIONS with the session, and RTCP receiver
 * reports), TEARDOWN. Basic/Digest auth from the URL, one redirect. One request at a time. Errors are
 * RtspError naming host:port and never the password.
 */
export class RtspSession {
  /** what the session is waiting for, for a timeout message */
  phase: string;
  /** PLAY was answered 200 */
  playing = false;
  /** PLAY was sent: frames go to onFrame */
  private framesOn = false;
  /** every interleaved frame once PLAY is sent: a view into the received bytes, valid during the call */
  onFrame: (channel: number, payload: Buffer, arrivedAtMs: number) => void = () => undefined;
  /** the connection ended or failed while no request was waiting (called once) */
  onEnd: (err: RtspError) => void = () => undefined;
  /**
   * Once playing, read the socket at most this often (ms; 0 = as data comes): a camera writes each RTP packet on
   * its own, and reading them one by one wakes the process ~400 times a second per camera. The kernel's
   * receive buffer holds what arrives meanwhile (4 Mbit/s for 100 ms is 50 KB; Linux grows it as needed).
   */
  readBatchMs = 0;
  private resumeTimer: NodeJS.Timeout | null = null;
  private target: Target;
  private socket: Socket | null = null;
  private splitter = new RtspTcpSplitter();
  private waiter: { resolve: (a: RtspAnswer) => void; reject: (e: Error) => void } | null = null;
  private challenges: AuthChallenge[] = [];
  /** the method of the request waiting for its answer, for messages */
  private pending = '';
  private nc = 0;
  private cseq = 0;
  private session: string | null = null;
  private timeoutS = DEFAULT_SESSION_TIMEOUT_S;
  private sessionUri = '';
  private tracks: SessionTrack[] = [];
  private bytes = 0;
  private closed = false;
  private ended = false;
  private keepalive: NodeJS.Timeout | null = null;
  private readonly ssrc = randomBytes(4).readUInt32BE(0);

  constructor(url: string) {
    this.target = parseTarget(url);
    this.phase = `could not connect to ${this.target.where}`;
  }

  /** host:port, for messages */
  get where(): string {
    return this.target.where;
  }

  /** Connect and DESCRIBE (following one redirect). */
  async describe(): Promise<SessionDescription> {
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
      if (a.status >= 300 && a.status < 400) throw new RtspError('status', `${this.target.where} redirects more than once (${a.status} ${a.reason})`, a.status);
    }
    this.expectOk('DESCRIBE', a);
    if (!/^\s*v=0/.test(a.body)) {
      throw new RtspError('bad-answer', `${this.target.where} answered DESCRIBE without an SDP body (Content-Type ${a.headers.get('content-type')?.[0] ?? 'none'})`);
    }
    const media = parseSdp(a.body);
    if (media.length === 0) throw new RtspError('bad-answer', `${this.target.where} describes no audio or video track`);
    const base = stripCreds(a.headers.get('content-base')?.[0] ?? a.headers.get('content-location')?.[0] ?? this.target.uri);
    this.sessionUri = controlUrl(base, parseSdpSession(a.body).control);
    return { sdp: a.body, media, base };
  }

  /** SETUP each track over TCP, interleaved channels 2i / 2i+1 (or what the server picks). */
  async setup(d: SessionDescription, media: readonly SdpMedia[]): Promise<SessionTrack[]> {
    const tracks: SessionTrack[] = [];
    for (const [i, m] of media.entries()) {
      const ch = 2 * i;
      const headers: Record<string, string> = { Transport: `RTP/AVP/TCP;unicast;interleaved=${ch}-${ch + 1}` };
      if (this.session) headers.Session = this.session;
      const s = await this.request('SETUP', controlUrl(d.base, m.control), headers);
      this.expectOk('SETUP', s);
      if (!this.session) {
        const [id, ...params] = (s.headers.get('session')?.[0] ?? '').split(';');
        this.session = id?.trim() || null;
        const t = params.map((p) => /^\s*timeout\s*=\s*(\d+)/i.exec(p)).find((x) => x);
        if (t) this.timeoutS = Math.max(5, Number(t[1]));
      }
      const given = /interleaved=(\d+)(?:-(\d+))?/i.exec(s.headers.get('transport')?.[0] ?? '');
      const rtp = given ? Number(given[1]) : ch;
      tracks.push({ media: m, rtpChannel: rtp, rtcpChannel: given?.[2] !== undefined ? Number(given[2]) : rtp + 1 });
    }
    this.tracks = tracks;
    return tracks;
  }

  /** PLAY; frames go to onFrame from the moment it is sent (the first may share a TCP chunk with the answer). */
  async play(): Promise<void> {
    // no Range: a live camera plays from now anyway, and GStreamer 1.22's RTSP server (tests, bench) can abort on
    // an assertion in gst_rtsp_media_get_rates when a PLAY with a Range comes right after SETUP
    const headers: Record<string, string> = {};
    if (this.session) headers.Session = this.session;
    this.framesOn = true;
    const p = await this.request('PLAY', this.sessionUri, headers);
    this.expectOk('PLAY', p);
    this.playing = true;
    this.phase = `no media from ${this.target.where}`;
  }

  /**
   * Keep the session alive while it plays: OPTIONS (with the session) at half the server's session timeout, and an
   * empty RTCP receiver report per track every 5 s. Answers are read and ignored.
   */
  startKeepalive(): void {
    if (this.keepalive || this.closed) return;
    let sinceOptions = 0;
    const optionsEvery = Math.max(1, Math.floor((this.timeoutS * 1000) / 2 / RECEIVER_REPORT_MS));
    this.keepalive = setInterval(() => {
      const s = this.socket;
      if (!s || s.destroyed) return;
      for (const t of this.tracks) s.write(receiverReport(t.rtcpChannel, this.ssrc));
      if (++sinceOptions >= optionsEvery && this.session) {
        sinceOptions = 0;
        s.write(this.format('OPTIONS', this.sessionUri || this.target.uri, { Session: this.session }));
      }
    }, RECEIVER_REPORT_MS);
    this.keepalive.unref();
  }

  /** TEARDOWN when a session exists (bounded wait for its answer), then destroy the socket. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    const s = this.socket;
    // a request still waiting (close() during the handshake) must settle, not hang
    const waiting = this.stopWaiting();
    waiting?.reject(new RtspError('timeout', `${this.target.where}: closed before ${this.pending} was answered`));
    if (s && !s.destroyed) s.resume(); // a paused socket would never read the TEARDOWN answer
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
      // onread: pause() then stops reading at the socket (with 'data' events it only stops emitting)
      const s = connect({
        host: t.host,
        port: t.port,
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
          callback: (n: number, buf: Uint8Array) => {
            if (this.socket !== s) return false;
            // no copy: onFrame's payloads are views valid during the call (the depayloaders copy what they keep)
            this.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
            // a read that filled half the buffer says the camera sends faster than batching allows: read on
            if (this.readBatchMs > 0 && this.framesOn && !this.closed && !this.resumeTimer && n < READ_BUFFER_BYTES / 2) {
              this.resumeTimer = setTimeout(() => {
                this.resumeTimer = null;
                if (!s.destroyed) s.resume();
              }, this.readBatchMs);
              return false;
            }
            return true;
          },
        },
      });
      this.socket = s;
      s.setNoDelay(true);
      s.once('connect', () => {
        s.removeAllListeners('error');
        // A socket left behind by a redirect must not fail the requests of the next one.
        s.on('error', (err: NodeJS.ErrnoException) => {
          if (this.socket === s) this.fail(new RtspError('bad-answer', `connection to ${t.where} failed: ${err.code ?? err.message}`));
        });
        s.on('close', () => {
          const before = this.waiter ? ` before answering ${this.pending}` : '';
          if (this.socket === s) this.fail(new RtspError('bad-answer', `${t.where} closed the connection${before}`));
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
        if (this.ended || !this.socket || this.socket.destroyed) {
          reject(new RtspError('bad-answer', `${this.target.where} closed the connection`));
          return;
        }
        this.waiter = { resolve, reject };
        this.pending = method;
        this.socket.write(this.format(method, uri, headers));
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
      // some cameras close the connection after a 401 (Connection: close): authenticate on a new one
      if (a.headers.get('connection')?.some((v) => /close/i.test(v))) {
        this.socket?.destroy();
        this.splitter = new RtspTcpSplitter();
        await this.open();
      }
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
    if (!this.framesOn) {
      this.bytes += d.length;
      if (this.bytes > MAX_BYTES_BEFORE_PLAY) {
        this.fail(new RtspError('bad-answer', `${this.target.where} sent more than ${MAX_BYTES_BEFORE_PLAY} bytes before PLAY`));
        this.socket?.destroy();
        return;
      }
    }
    let items: RtspTcpItem[];
    try {
      items = this.splitter.push(d);
    } catch (err) {
      this.fail(new RtspError('bad-answer', `${this.target.where} does not speak RTSP (${(err as Error).message})`));
      this.socket?.destroy();
      return;
    }
    for (const it of items) {
      if (it.kind === 'frame') {
        if (this.framesOn) this.onFrame(it.channel, it.payload, arrivedAt);
      } else if (it.kind === 'answer') {
        const w = this.waiter;
        this.waiter = null;
        w?.resolve(it);
      }
    }
  }

  /** Stop the keep-alive and take the request waiting for its answer (if any) off the session. */
  private stopWaiting(): RtspSession['waiter'] {
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    const w = this.waiter;
    this.waiter = null;
    return w;
  }

  private fail(err: RtspError): void {
    if (this.ended) return;
    this.ended = true;
    const w = this.stopWaiting();
    if (w) w.reject(err);
    else if (!this.closed) this.onEnd(err);
  }
}

/** An RTCP receiver report with no report block (RFC 3550 §6.4.2), interleaved on `channel`. */
function receiverReport(channel: number, ssrc: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x24;
  b[1] = channel;
  b.writeUInt16BE(8, 2);
  b[4] = 0x80; // V=2, P=0, RC=0
  b[5] = 201;
  b.writeUInt16BE(1, 6); // length in 32-bit words minus one
  b.writeUInt32BE(ssrc, 8);
  return b;
}

/** A track's (or the session's) a=control resolved against Content-Base; relative ones are appended as ffmpeg and live555 do. */
export function controlUrl(base: string, control: string): string {
  if (!control || control === '*') return base;
  if (/^rtsp:\/\//i.test(control)) return stripCreds(control);
  return base.endsWith('/') ? `${base}${control}` : `${base}/${control}`;
}
