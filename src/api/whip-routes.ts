import { timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { AppError, clip } from '../lib/errors';
import type { WhipIngest } from '../ingest/whip/whip-ingest';
import { handle, queryParam, readBody, type Req, sendError } from './http';
import type { Router } from './server';

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, DELETE, OPTIONS, PATCH',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, If-Match',
  'Access-Control-Expose-Headers': 'Location, Link, ETag',
};

/** Stream names: what a file name and a URL path segment can hold. */
const NAME = /^[A-Za-z0-9_.~-]{1,128}$/;

function checkToken(req: Req, token: string): void {
  if (!token) return;
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization?.trim() ?? '');
  const got = Buffer.from(m?.[1] ?? '');
  const want = Buffer.from(token);
  // constant time, like the REST and RTMP tokens
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new AppError('UNAUTHORIZED', 'missing or wrong Authorization: Bearer token (publish_auth_token)');
}

function withCors(fn: (req: Req, res: ServerResponse) => unknown) {
  return handle((req, res) => {
    for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
    return fn(req, res);
  });
}

/** WHIP (RFC 9725): POST /whip/<name> with an SDP offer → 201 + answer + Location; DELETE on it ends the publish. */
export function registerWhipRoutes(r: Router, whip: () => WhipIngest | null, publishToken: () => string): void {
  r.options(
    '/whip/:name',
    withCors((_req, res) => {
      res.writeHead(204, { 'Accept-Post': 'application/sdp' });
      res.end();
    }),
  );
  r.options(
    '/whip/:name/:id',
    withCors((_req, res) => {
      res.writeHead(204);
      res.end();
    }),
  );
  r.post(
    '/whip/:name',
    withCors(async (req, res) => {
      const ingest = whip();
      if (!ingest) throw new AppError('UNAVAILABLE', 'WebRTC ingest is not running');
      checkToken(req, publishToken());
      const name = req.params?.name ?? '';
      if (!NAME.test(name)) throw new AppError('BAD_REQUEST', `stream name "${name.slice(0, 64)}" is not allowed: 1–128 of A–Z a–z 0–9 _ . ~ -`);
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/sdp') throw new AppError('UNSUPPORTED_MEDIA_TYPE', `a WHIP offer must be Content-Type: application/sdp, got "${clip(type ?? '', 64)}"`);
      const offer = (await readBody(req)).toString('utf8');
      const rec = queryParam(req, 'record');
      if (rec !== undefined && rec !== 'true' && rec !== 'false') throw new AppError('BAD_REQUEST', `record: true or false, got "${clip(rec, 16)}"`);
      const s = await ingest.createSession(name, offer, {
        record: rec === undefined ? undefined : rec === 'true',
        login: queryParam(req, 'login') ?? '',
        ip: req.socket.remoteAddress ?? '',
      });
      res.writeHead(201, {
        'Content-Type': 'application/sdp',
        Location: `/whip/${encodeURIComponent(name)}/${s.id}`,
        ETag: `"${s.id}"`,
      });
      res.end(s.answerSdp);
    }),
  );
  r.delete(
    '/whip/:name/:id',
    withCors((req, res) => {
      const ingest = whip();
      checkToken(req, publishToken());
      if (!ingest || !ingest.deleteSession(req.params?.id ?? '')) throw new AppError('NOT_FOUND', 'no such WHIP session');
      res.writeHead(200);
      res.end();
    }),
  );
  r.patch(
    '/whip/:name/:id',
    withCors((_req, res) => {
      res.setHeader('Allow', 'DELETE, OPTIONS');
      sendError(res, new AppError('METHOD_NOT_ALLOWED', 'trickle ICE (PATCH) is not supported: send a complete offer; the answer holds every candidate'));
    }),
  );
}
