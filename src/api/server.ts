import { timingSafeEqual } from 'node:crypto';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import polka from 'polka';
import { AppError, clip } from '../lib/errors';
import type { Logger } from '../lib/log';
import { type Req, sendError } from './http';

/** A route handler as registered on the server. */
export type Handler = (req: Req, res: ServerResponse) => void;

/** What route modules register on. */
export interface Router {
  get(path: string, h: Handler): void;
  post(path: string, h: Handler): void;
  delete(path: string, h: Handler): void;
  head(path: string, h: Handler): void;
  options(path: string, h: Handler): void;
  patch(path: string, h: Handler): void;
}

export interface HttpServerOptions {
  readonly log: Logger;
  /** read on every request, so a config reload applies at once; '' = open */
  readonly authToken: () => string;
}

/** Paths that need `Authorization: Bearer <rest_auth_token>` when one is set. */
const PROTECTED = /^\/(rest-api|metrics|client\/records)(\/|$)/;

/** The HTTP server of the REST API, the file server, WHIP and the page (polka on node:http). */
export class HttpServer {
  private readonly server = http.createServer();
  private readonly app: polka.Polka;
  private closing = false;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly registered: { method: string; path: string }[] = [];

  constructor(private readonly opts: HttpServerOptions) {
    this.app = polka({
      server: this.server,
      onError: (err: unknown, _req: unknown, res: ServerResponse) => sendError(res, err),
      onNoMatch: (req: Req, res: ServerResponse) => sendError(res, new AppError('NOT_FOUND', `no such route: ${clip(req.method ?? '', 16)} ${clip(req.path ?? req.url ?? '', 200)}`)),
    } as polka.Options);
    const gate = (req: Req, res: ServerResponse, next: () => void) => {
      if (this.closing) {
        res.setHeader('Connection', 'close');
        sendError(res, new AppError('UNAVAILABLE'));
        return;
      }
      const token = this.opts.authToken();
      if (token && PROTECTED.test(req.path ?? '') && !bearerMatches(req.headers.authorization, token)) {
        sendError(res, new AppError('UNAUTHORIZED'));
        return;
      }
      next();
    };
    this.app.use(gate as unknown as polka.Middleware);
    // polka attaches its handler only in its own listen(); we listen on the node server ourselves
    this.server.on('request', (req, res) => this.app.handler(req as polka.Request, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
  }

  /** Where routes are registered. */
  get router(): Router {
    const a = this.app as unknown as Record<string, (p: string, h: Handler) => void>;
    const bind = (m: string) => (p: string, h: Handler) => {
      const fn = a[m];
      if (fn) fn.call(this.app, p, h);
      this.registered.push({ method: m.toUpperCase(), path: p });
    };
    return { get: bind('get'), post: bind('post'), delete: bind('delete'), head: bind('head'), options: bind('options'), patch: bind('patch') };
  }

  /** Every route registered so far (method, polka path pattern). */
  routes(): readonly { method: string; path: string }[] {
    return this.registered;
  }

  /** Listen; resolves with the bound port (0 asks the OS for one). */
  listen(port: number, bind: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onErr = (err: NodeJS.ErrnoException) => {
        reject(new Error(`cannot listen on ${bind}:${port} (rest_port/rest_bind): ${err.code ?? err.message}`));
      };
      this.server.once('error', onErr);
      this.server.listen(port, bind, () => {
        this.server.off('error', onErr);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** The bound port, or 0 before listen(). */
  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** From now on every request gets 503 (shutdown has begun). */
  setClosing(): void {
    this.closing = true;
  }

  /** Stop listening and drop idle connections; safe twice. */
  async close(): Promise<void> {
    this.closing = true;
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m || !m[1]) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
