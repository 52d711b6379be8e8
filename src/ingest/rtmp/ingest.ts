import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import nmsLogger from 'node-media-server/src/core/logger.js';
import Rtmp from 'node-media-server/src/protocol/rtmp.js';
import { decodeAmf0Cmd } from 'node-media-server/src/protocol/amf.js';
import { errMessage } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import { TypedEmitter } from '../../lib/typed-emitter';
import { DEFAULT_RTMP_LIMITS, guardParser, RtmpLimitError, type RtmpLimits } from './limits';
import { PendingConnections } from './pending';
import { Publish, type RtmpPublish } from './publish';
import { READ_BUFFER_BYTES, withReadBuffer } from './read-buffer';
import { sameSecret, tokenShown } from './token';

export type { RtmpPublish } from './publish';

/** Options of RtmpIngest. */
export interface RtmpIngestOptions {
  /** TCP port; 0 lets the OS choose (see `port` after start) */
  readonly port: number;
  /** listen address, default 0.0.0.0 */
  readonly bind?: string;
  /** read at every publish (hot-reloadable); non-empty: publishers must send `?token=<it>` */
  readonly publishToken: () => string;
  readonly log: Logger;
  /** ms without a byte from a connection before it is dropped (a publisher whose network vanished); default 15000 */
  readonly idleTimeoutMs?: number;
  /** publishers accepted at once, default 256 (connections that have not published are bounded by `limits`) */
  readonly maxPublishers?: number;
  /** read at every connection and message (hot-reloadable); default DEFAULT_RTMP_LIMITS */
  readonly limits?: () => RtmpLimits;
  /** bytes per socket read (one buffer reused by every connection; at least 256), default READ_BUFFER_BYTES; tests make it small */
  readonly readBufferBytes?: number;
  /**
   * a publishing connection is read at most this often (ms; 0 = as bytes arrive): after a read that did not fill
   * half the buffer it waits for the ingest's next read tick, so one wake-up reads what ~this long of media sent
   * (every publisher's in the same tick). Default READ_BATCH_MS.
   */
  readonly readBatchMs?: number;
}

/** Default RtmpIngestOptions.readBatchMs: 40 ms cost the service and host less than 20 in every interleaved pair (bench/README.md, session 8). */
export const READ_BATCH_MS = 40;

/** Why a connection that had not published was dropped. */
export type PendingDrop = 'pending-cap' | 'deadline' | 'limit' | 'protocol';

/** A publisher that was refused (the token never appears here). */
export interface RtmpRejection {
  /** peer address:port */
  readonly ip: string;
  /** /app/name without the query */
  readonly path: string;
  readonly reason: string;
}

/** Events of RtmpIngest. */
export type RtmpIngestEvents = {
  /** a publisher was accepted and its first tags made its codecs known; subscribe to onData() in the listener */
  publish: [pub: RtmpPublish];
  /** it ended: left, vanished (TCP reset, kill -9, idle timeout), was kicked, or the ingest closed */
  unpublish: [pub: RtmpPublish];
  rejected: [rejection: RtmpRejection];
  /** a connection that had not published was dropped: `pending-cap` (to admit a newer one), `deadline`, `limit` (a size bound), `protocol` (bytes that are not RTMP) */
  dropped: [reason: PendingDrop];
};

/** Stream names go into file names: keep them plain. */
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;
const APP_RE = /^[A-Za-z0-9_.\-/]{0,128}$/;
/** after deleteStream, how long a publisher may keep its connection before the server closes it */
const DELETE_STREAM_GRACE_MS = 3000;
/** dropped pre-publish connections are summed up in the log at most this often */
const DROP_LOG_MS = 10_000;

/**
 * RTMP ingest built on node-media-server's protocol layer only (handshake, chunks, AMF commands): the socket,
 * admission (token, duplicate names), FLV output and lifecycle are ours, so no NMS server, store, HTTP port,
 * recorder or process.exit() is involved, port 0 works, and a refusal happens before "Publish.Start".
 * Playing is not offered. Stream names are unique across apps while publishing.
 */
export class RtmpIngest extends TypedEmitter<RtmpIngestEvents> {
  private readonly log: Logger;
  private readonly idleTimeoutMs: number;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly publishing = new Map<string, Publish>();
  private closing: Promise<void> | null = null;
  private boundPort: number;
  private readonly limits: () => RtmpLimits;
  /** connections that have not published yet, and whom to drop to admit new ones */
  private readonly pending: PendingConnections<Socket>;
  private readonly dropCounts = new Map<string, number>();
  private dropLogTimer: NodeJS.Timeout | null = null;
  /** every connection's reads land here, one after another, and are parsed at once (no Buffer per read) */
  private readonly readBuf: Buffer;
  /** publishing connections that wait for the next read tick (readBatchMs), and whose publish they carry (same index) */
  private waitingSockets: Socket[] = [];
  private waitingPubs: Publish[] = [];
  private readTimer: NodeJS.Timeout | null = null;
  private readonly readBatchMs: number;

  constructor(private readonly o: RtmpIngestOptions) {
    super();
    this.log = o.log.child({ component: 'rtmp' });
    this.idleTimeoutMs = o.idleTimeoutMs ?? 15_000;
    this.boundPort = o.port;
    this.limits = o.limits ?? (() => DEFAULT_RTMP_LIMITS);
    this.readBuf = Buffer.allocUnsafeSlow(Math.max(256, Math.floor(o.readBufferBytes ?? READ_BUFFER_BYTES)));
    this.readBatchMs = Math.max(0, o.readBatchMs ?? READ_BATCH_MS);
    this.pending = new PendingConnections(() => {
      const l = this.limits();
      return { total: l.maxPending, perIp: l.maxPendingPerIp };
    });
  }

  /** The listening port (the OS's choice when started with 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Connections that have not published yet (and have not shown the publish token). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** The publishes running now (announced ones). */
  publishes(): RtmpPublish[] {
    return [...this.publishing.values()].filter((p) => p.announced);
  }

  /** Listens; rejects (never exits the process) when the port is busy or the address is wrong. */
  async start(): Promise<void> {
    if (this.server || this.closing) throw new Error('RtmpIngest.start() called twice or after close()');
    routeNmsLogger(this.o.log);
    const bind = this.o.bind ?? '0.0.0.0';
    // No server.maxConnections: connections that never publish would hold every slot and lock publishers out.
    // Pending ones are capped (the oldest dropped to admit a new one) and publishers are counted at admission.
    // Paused on connect: the connection is rewrapped to read into readBuf before a byte is read.
    const server = createServer({ pauseOnConnect: true }, (accepted) => this.accept(accepted));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server = null;
        server.close();
        const why = err.code === 'EADDRINUSE' ? 'the port is already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
        reject(new Error(`RTMP ingest cannot listen on ${bind}:${this.o.port} (rtmp_port=${this.o.port}): ${why}`));
      };
      server.once('error', onError);
      server.listen(this.o.port, bind, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err }, 'RTMP server error'));
        const a = server.address();
        if (a && typeof a === 'object') this.boundPort = a.port;
        resolve();
      });
    });
  }

  /** Stops listening and ends every connection (each publish gets onEnd and `unpublish`); safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const server = this.server;
      if (this.dropLogTimer) clearTimeout(this.dropLogTimer);
      if (this.readTimer) clearTimeout(this.readTimer);
      this.waitingSockets = [];
      this.waitingPubs = [];
      const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
      // socket 'close' handlers have run by now; this only guards against a missed one
      for (const p of [...this.publishing.values()]) this.endPublish(p);
    })();
    return this.closing;
  }

  /**
   * Takes a connection accepted elsewhere (its own server's, or one handed over by another process with
   * `child.send(msg, socket)`) as if it had connected to the port. Call it when it arrives: nothing may have been
   * read from it yet.
   */
  accept(accepted: Socket): void {
    let onBytes: (chunk: Buffer) => boolean = () => true;
    const socket = withReadBuffer(accepted, this.readBuf, (chunk) => onBytes(chunk));
    if (socket) onBytes = this.onConnection(socket);
  }

  /**
   * Reads `socket` again at the next read tick (unless its publish paused it meanwhile): what arrived until then is
   * read in one wake-up.
   */
  private readLater(socket: Socket, pub: Publish): void {
    this.waitingSockets.push(socket);
    this.waitingPubs.push(pub);
    this.readTimer ??= setTimeout(() => {
      this.readTimer = null;
      const sockets = this.waitingSockets;
      const pubs = this.waitingPubs;
      this.waitingSockets = [];
      this.waitingPubs = [];
      for (let i = 0; i < sockets.length; i++) {
        const s = sockets[i] as Socket;
        if (!s.destroyed && !(pubs[i] as Publish).stats().paused) s.resume();
      }
    }, this.readBatchMs);
  }

  /** Sets a new connection up; returns what parses its bytes (each chunk valid during the call only) and whether to read on now. */
  private onConnection(socket: Socket): (chunk: Buffer) => boolean {
    if (this.closing) {
      socket.destroy();
      return () => false;
    }
    const ip = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const peer = `${ip}:${socket.remotePort ?? 0}`;
    this.sockets.add(socket);
    const rtmp = new Rtmp();
    let pub: Publish | null = null;
    let done = false; // refused or failed: ignore the rest of its bytes
    // Until it publishes: counted against the pending caps (a newer connection may take its place) and on a deadline.
    for (const old of this.pending.add(socket, ip)) this.dropPending(old, 'pending-cap');
    const deadlineMs = this.limits().handshakeTimeoutMs;
    const deadline = setTimeout(() => {
      if (!pub && !socket.destroyed) this.dropPending(socket, 'deadline');
    }, deadlineMs);
    deadline.unref();
    socket.setTimeout(this.idleTimeoutMs);
    socket.on('timeout', () => {
      this.log.warn({ ip: peer, stream: pub?.name, idleMs: this.idleTimeoutMs }, 'RTMP connection idle; dropping it');
      socket.destroy();
    });
    socket.on('error', (err) => this.log.debug({ ip: peer, reason: err.message }, 'RTMP socket error'));

    const refuse = (path: string, reason: string, code: string) => {
      done = true;
      this.log.warn({ ip: peer, path, reason }, 'RTMP publisher refused');
      try {
        rtmp.sendStatusMessage(rtmp.parserPacket.header.stream_id, 'error', code, reason);
      } catch {
        /* the answer is a courtesy */
      }
      socket.end(() => socket.destroy());
      setTimeout(() => socket.destroy(), 1000).unref();
      this.emit('rejected', { ip: peer, path, reason });
    };

    rtmp.onOutputCallback = (b) => {
      if (socket.destroyed || !socket.writable) return;
      // A peer that sends commands but never reads our answers would make them pile up here.
      if (!pub && socket.writableLength + b.length > this.limits().maxPendingBytes) throw new RtmpLimitError(`RTMP peer does not read its answers (${socket.writableLength} bytes waiting; allowed: rtmp_max_pending_bytes)`);
      socket.write(b);
    };
    rtmp.onConnectCallback = () => {};
    rtmp.onPushCallback = () => {};
    rtmp.onPlayCallback = () => {};
    rtmp.onPlay = (msg) => refuse(`/${rtmp.streamApp}/${String(msg.streamName ?? '').split('?')[0]}`, 'playing is not offered, only publishing', 'NetStream.Play.Failed');
    rtmp.onDeleteStream = () => {
      if (!pub || done) return;
      // The publisher said it is done: the publish ends (its file is finalized) now, but the connection is the
      // client's to close — GStreamer's rtmp2sink reports "connection closed remotely" as an error (exit 1) when the
      // server hangs up between its deleteStream and its own close. One that keeps it open is closed after a grace.
      done = true;
      this.endPublish(pub);
      const grace = setTimeout(() => socket.end(() => socket.destroy()), DELETE_STREAM_GRACE_MS);
      grace.unref();
      socket.once('close', () => clearTimeout(grace));
    };
    // Message lengths are checked before NMS allocates them; small until the publish is accepted.
    // Media messages of an accepted publish are read straight into their tags (Publish.payloadFor).
    guardParser(rtmp, this.limits, () => pub !== null, (type, length) => (pub && !done ? pub.payloadFor(type, length) : null));
    // The token is checked at the first command that carries it: connect (tcUrl/app), releaseStream, FCPublish, publish.
    rtmp.invokeHandler = () => {
      if (done) return;
      const pp = rtmp.parserPacket;
      const msg = decodeAmf0Cmd(pp.payload.subarray(pp.header.type === 17 ? 1 : 0, pp.header.length));
      const cmd = typeof msg.cmd === 'string' ? msg.cmd : '';
      if (cmd === 'connect' || cmd === 'releaseStream' || cmd === 'FCPublish') {
        const obj = (msg.cmdObj ?? {}) as Record<string, unknown>;
        const carriers = cmd === 'connect' ? [obj.tcUrl, obj.app] : [msg.streamName];
        const shown = tokenShown(carriers, this.o.publishToken());
        if (shown === 'wrong') {
          refuse(cmd === 'connect' ? `/${String(obj.app ?? '').split('?')[0]}` : `/${rtmp.streamApp}/${String(msg.streamName ?? '').split('?')[0]}`, 'publish token wrong', 'NetStream.Publish.Unauthorized');
          return;
        }
        if (shown === 'right') {
          this.pending.remove(socket); // proven: no longer displaced by newer connections
          this.log.debug({ ip: peer, command: cmd }, 'RTMP publish token shown before publish');
        }
      }
      const im = msg as Parameters<Rtmp['onPublish']>[0];
      if (cmd === 'connect') rtmp.onConnect(im);
      else if (cmd === 'createStream') rtmp.onCreateStream(im);
      else if (cmd === 'publish') rtmp.onPublish(im);
      else if (cmd === 'play') rtmp.onPlay(im);
      else if (cmd === 'deleteStream') rtmp.onDeleteStream(im);
    };
    const origPublish = Rtmp.prototype.onPublish.bind(rtmp);
    rtmp.onPublish = (msg) => {
      if (pub || done) return;
      const r = this.admit(rtmp.streamApp, String(msg.streamName ?? ''));
      if ('reason' in r) {
        refuse(r.path, r.reason, r.code);
        return;
      }
      this.pending.remove(socket);
      clearTimeout(deadline);
      origPublish(msg); // answers NetStream.Publish.Start
      const onReady = (p: Publish) => {
        const c = p.codecs();
        this.log.info({ id: p.id, stream: p.name, app: p.app, ip: peer, login: p.login, video: c?.video, audio: c?.audio }, 'RTMP publish started');
        this.emit('publish', p);
      };
      pub = new Publish({ id: randomUUID(), app: r.app, name: r.name, query: r.query, ip, login: r.query.login ?? '', socket, idleTimeoutMs: this.idleTimeoutMs, log: this.log, onReady });
      this.publishing.set(pub.name, pub); // the name is taken from here on, announced or not
    };
    // media and data messages straight from the parser's state (NMS's dataHandler builds an AVPacket object per
    // message, with flags we work out in codecs.ts): type, timestamp (NMS's clock), payload, length
    rtmp.dataHandler = () => {
      const pp = rtmp.parserPacket;
      if (pub && !done) pub.packet(pp.header.type, pp.clock, pp.payload, pp.header.length);
    };

    socket.on('close', () => {
      clearTimeout(deadline);
      this.pending.remove(socket);
      this.sockets.delete(socket);
      if (pub) this.endPublish(pub);
    });
    // NMS copies what it keeps out of `data` (handshake, chunk headers, message payloads): it may be reused after this
    const half = this.readBuf.length / 2;
    return (data: Buffer) => {
      if (done) return true;
      try {
        const err = rtmp.parserData(data);
        if (err) throw new Error(err);
        // a publisher is read once per read tick; a read that filled half the buffer means more is waiting: read on
        const p = pub;
        if (p && !done && this.readBatchMs > 0 && data.length < half && !socket.destroyed) {
          this.readLater(socket, p);
          return false;
        }
        return true;
      } catch (err) {
        done = true;
        if (!pub) {
          // before a publish, anyone can send anything: counted and summed up, not one warning each
          const limit = err instanceof RtmpLimitError;
          this.log.debug({ ip: peer, reason: errMessage(err) }, limit ? 'RTMP connection over a limit before publishing; dropping it' : 'RTMP protocol error before publishing; dropping the connection');
          this.dropPending(socket, limit ? 'limit' : 'protocol');
          return false;
        }
        this.log.warn({ ip: peer, stream: pub?.name, reason: errMessage(err) }, 'RTMP protocol error; dropping the connection');
        socket.destroy();
        return false;
      }
    };
  }

  /** Whether a publish of `app`/`streamName` (`name?query`) may start: token, name rules, one publisher per name. */
  private admit(
    rawApp: string,
    streamName: string,
  ): { app: string; name: string; query: Record<string, string> } | { path: string; reason: string; code: string } {
    const q = streamName.indexOf('?');
    const pathPart = q < 0 ? streamName : streamName.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : streamName.slice(q + 1));
    const app = rawApp.split('?')[0] ?? '';
    const name = pathPart.split('/').pop() ?? '';
    const path = `/${app}/${pathPart}`;
    if (this.closing) return { path, reason: 'the server is shutting down', code: 'NetStream.Publish.Failed' };
    const want = this.o.publishToken();
    if (want) {
      const got = params.get('token');
      if (!got) return { path, reason: 'publish token missing (add ?token=...)', code: 'NetStream.Publish.Unauthorized' };
      if (!sameSecret(got, want)) return { path, reason: 'publish token wrong', code: 'NetStream.Publish.Unauthorized' };
    }
    const maxPublishers = this.o.maxPublishers ?? 256;
    if (this.publishing.size >= maxPublishers) return { path, reason: `${maxPublishers} publishers already; no room for another`, code: 'NetStream.Publish.Failed' };
    if (!NAME_RE.test(name)) return { path, reason: 'stream name invalid: use 1-128 of A-Z a-z 0-9 _ - . (not starting with .)', code: 'NetStream.Publish.BadName' };
    if (!APP_RE.test(app)) return { path, reason: 'application name invalid: use A-Z a-z 0-9 _ - . /', code: 'NetStream.Publish.BadName' };
    if (this.publishing.has(name)) return { path, reason: `stream ${name} is already publishing`, code: 'NetStream.Publish.BadName' };
    const query: Record<string, string> = {};
    for (const [k, v] of params) if (k !== 'token' && !(k in query)) query[k] = v;
    return { app, name, query };
  }

  /** Drop a connection that has not published (never a publisher); the drops are summed up in the log. */
  private dropPending(socket: Socket, reason: PendingDrop): void {
    this.pending.remove(socket);
    socket.destroy();
    this.emit('dropped', reason);
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + 1);
    if (this.dropLogTimer || this.closing) return;
    this.dropLogTimer = setTimeout(() => {
      this.dropLogTimer = null;
      const counts = Object.fromEntries(this.dropCounts);
      this.dropCounts.clear();
      const l = this.limits();
      this.log.warn(
        { dropped: counts, pending: this.pending.size, maxPending: l.maxPending, maxPendingPerIp: l.maxPendingPerIp, handshakeTimeoutMs: l.handshakeTimeoutMs },
        'RTMP connections dropped before publishing (pending-cap: displaced by newer ones; deadline: no publish in rtmp_handshake_timeout; limit: over a size bound; protocol: not RTMP)',
      );
    }, DROP_LOG_MS);
    this.dropLogTimer.unref();
  }

  private endPublish(pub: Publish): void {
    if (this.publishing.get(pub.name) !== pub) return;
    this.publishing.delete(pub.name);
    pub.end();
    const s = pub.stats();
    if (!pub.announced) {
      this.log.info({ id: pub.id, stream: pub.name, bytes: s.bytes }, 'RTMP publisher left before its codecs were known');
      return;
    }
    this.log.info({ id: pub.id, stream: pub.name, bytes: s.bytes, tags: s.tags, ms: Date.now() - pub.startedAt }, 'RTMP publish ended');
    this.emit('unpublish', pub);
  }
}

/** node-media-server's logger is process-wide and prints with console.log: send it to pino instead. */
function routeNmsLogger(log: Logger): void {
  const nms = log.child({ component: 'node-media-server' });
  nmsLogger.level = nms.isLevelEnabled('debug') ? 'trace' : 'warn';
  nmsLogger.log = (message: string, level = 'info') => {
    if (level === 'warn' || level === 'error') nms.warn(message);
    else nms.debug(message);
  };
}
