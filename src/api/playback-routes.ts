import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Conf } from '../conf/types';
import { AppError, errMessage } from '../lib/errors';
import { log } from '../lib/log';
import { SPAN_GAP, spanReads } from '../mp4/copy';
import { fmp4Fragments, fmp4Init } from '../mp4/fmp4-plan';
import { planMp4 } from '../mp4/mp4-plan';
import { FileReader, nearest, type PlaybackArchive, preparePlayback, type Prepared, rowsInRange, usableRows } from '../playback/playback';
import { checkRange, parseTime, spansOf } from '../playback/range';
import type { RecordingsStore } from '../store/recordings';
import { parseRange } from './files';
import { handle, queryParam, type Req, sendJson } from './http';
import type { Router } from './server';

const FORMATS = ['mp4', 'fmp4'] as const;
/** Longest range /rest-api/playback/segments answers (the page asks for 24 h). */
export const SEGMENTS_MAX_S = 7 * 86400;
const COPY_BYTES = 1024 * 1024;

function streamParam(req: Req): string {
  const s = queryParam(req, 'stream');
  if (!s) throw new AppError('BAD_REQUEST', 'stream: required (a stream name, as in /rest-api/recordings)');
  if (s.length > 256) throw new AppError('BAD_REQUEST', 'stream: at most 256 characters');
  return s;
}

function requireKnown(store: RecordingsStore, stream: string): void {
  if (store.list({ stream, limit: 1 }).rows.length === 0) throw new AppError('NOT_FOUND', `stream "${stream}" has no recordings (see /rest-api/recordings for the streams recorded)`);
}

/** The gaps as a header value: start-end pairs in epoch ms, comma separated ('' when none). */
function gapsHeader(p: Prepared): string {
  return p.gaps.map((g) => `${g.fromMs}-${g.toMs}`).join(',');
}

/** Wait until the socket takes more (or the client went away: false). */
function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(v);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

async function send(res: ServerResponse, buf: Buffer): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(buf)) return true;
  return drained(res);
}

/** GET /rest-api/playback and /rest-api/playback/segments (files only in the archive are read from the bucket). */
export function registerPlaybackRoutes(r: Router, store: RecordingsStore, conf: () => Conf, archive?: PlaybackArchive): void {
  r.get(
    '/rest-api/playback/segments',
    handle((req, res) => {
      const stream = streamParam(req);
      const fromMs = parseTime('from', queryParam(req, 'from'));
      const toMs = parseTime('to', queryParam(req, 'to'));
      checkRange(fromMs, toMs, SEGMENTS_MAX_S, `/rest-api/playback/segments answers at most ${SEGMENTS_MAX_S} s`);
      requireKnown(store, stream);
      const rows = rowsInRange(store, stream, fromMs, toMs);
      const { spans, gaps } = spansOf(rows, fromMs, toMs, Date.now());
      const archivedOnly = archive ? rows.filter((x) => x.state !== 'failed' && archive.onlyArchived(x.id) !== null) : [];
      sendJson(res, 200, {
        stream,
        from: fromMs,
        to: toMs,
        spans: spans.map((s) => ({
          start: s.startMs,
          end: s.endMs,
          recording: s.recording,
          mediaSessionIds: s.mediaSessionIds,
          files: s.files,
          // files of the span whose local copy is gone: playing them reads the archive bucket
          archiveOnlyFiles: archivedOnly.filter((x) => x.startMs < s.endMs && (x.endMs ?? Infinity) > s.startMs).length,
        })),
        gaps: gaps.map((g) => ({ start: g.startMs, end: g.endMs })),
        failed: rows.filter((x) => x.state === 'failed').map((x) => ({ start: x.startMs, end: x.endMs, fileName: x.fileName, error: x.error })),
        containers: [...new Set(rows.filter((x) => x.state !== 'failed').map((x) => x.container))],
      });
    }),
  );

  r.get(
    '/rest-api/playback',
    handle(async (req, res) => {
      const t0 = performance.now();
      const stream = streamParam(req);
      const fromMs = parseTime('from', queryParam(req, 'from'));
      const toMs = parseTime('to', queryParam(req, 'to'));
      const format = queryParam(req, 'format') ?? 'mp4';
      if (!(FORMATS as readonly string[]).includes(format)) throw new AppError('BAD_REQUEST', `format: one of ${FORMATS.join(', ')} expected, got ${JSON.stringify(format.slice(0, 32))}`);
      checkRange(fromMs, toMs, conf().playback_max_duration, 'playback_max_duration');
      requireKnown(store, stream);
      const rows = usableRows(rowsInRange(store, stream, fromMs, toMs), stream);
      if (rows.length === 0) {
        const n = nearest(store, stream, fromMs, toMs);
        sendJson(res, 404, {
          status: 404,
          code: 'NOT_FOUND',
          error: `nothing of stream "${stream}" was recorded in [${fromMs}, ${toMs})` +
            `${n.before ? `; the nearest before ends at ${n.before.end ?? 'now'}` : ''}${n.after ? `; the nearest after starts at ${n.after.start}` : ''}`,
          nearest: n,
        });
        return;
      }
      // reads from the archive bucket stop when the client goes away
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      let p: Prepared;
      try {
        p = await preparePlayback(store, stream, rows, fromMs, toMs, archive, gone.signal);
      } catch (err) {
        if (gone.signal.aborted) return; // the client went away while the files were read (from the bucket)
        throw err;
      }
      const ctx = { component: 'playback', stream, format, from: fromMs, to: toMs, files: p.files.length, archived: p.files.filter((f) => f.path.startsWith('archive:')).length };
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        await p.close();
      };
      res.once('close', () => void close());
      try {
        const headers: Record<string, string | number> = {
          'Content-Type': 'video/mp4',
          'Cache-Control': 'no-store',
          'X-Playback-Start': Math.round(p.timeline.t0Ms),
          'X-Playback-End': Math.round(p.timeline.endMs),
          'X-Playback-Gaps': gapsHeader(p),
          'Content-Disposition': `inline; filename="${stream.replace(/[^\w.-]/g, '_')}-${Math.round(p.timeline.t0Ms)}.mp4"`,
        };
        if (format === 'fmp4') await sendFmp4(res, p, headers);
        else await sendMp4(req, res, p, headers);
        log.debug({ ...ctx, ms: Math.round(performance.now() - t0) }, 'playback answered');
      } catch (err) {
        if (res.headersSent) {
          log.warn({ ...ctx, err: errMessage(err) }, 'playback ended early');
          res.destroy();
        } else throw err;
      } finally {
        await close();
      }
    }),
  );
}

/**
 * Two buffers used in turn: one is filled while the other is being written. A buffer is refilled only once the
 * socket has taken it (its write callback), so an answer of any length allocates two buffers, not one per write
 * (hundreds of 1 MB allocations made the GC the largest cost of a 10-minute answer).
 */
class Relay {
  private readonly bufs: Buffer[];
  private readonly flushed: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
  private turn = 0;
  private readonly closed: Promise<void>;

  constructor(private readonly res: ServerResponse, size: number) {
    this.bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    this.closed = new Promise((r) => res.once('close', () => r()));
  }

  /** A free buffer of at least `size` bytes (it grows when needed); false when the client went away. */
  async next(size: number): Promise<Buffer | null> {
    this.turn ^= 1;
    await Promise.race([this.flushed[this.turn], this.closed]);
    if (this.res.destroyed) return null;
    if ((this.bufs[this.turn]?.length ?? 0) < size) this.bufs[this.turn] = Buffer.allocUnsafe(size);
    return this.bufs[this.turn] as Buffer;
  }

  /** Write `head` (when given) and the first `len` bytes of the buffer next() gave; false when the client went away. */
  async write(len: number, head?: Buffer): Promise<boolean> {
    const buf = (this.bufs[this.turn] as Buffer).subarray(0, len);
    if (head) this.res.write(head);
    let done: () => void = () => undefined;
    this.flushed[this.turn] = new Promise<void>((r) => (done = r));
    // no wait for 'drain': next() waits for this buffer's turn, so at most two buffers are in flight while
    // the next one is read
    this.res.write(buf, () => done());
    return !this.res.destroyed;
  }
}

async function sendFmp4(res: ServerResponse, p: Prepared, headers: Record<string, string | number>): Promise<void> {
  const tracks = p.timeline.tracks;
  res.writeHead(200, headers);
  if (!(await send(res, fmp4Init(tracks)))) return;
  const reader = new FileReader(p.files);
  const relay = new Relay(res, 2 * COPY_BYTES);
  let span = Buffer.allocUnsafe(0);
  try {
    for (const f of fmp4Fragments(tracks)) {
      const buf = await relay.next(f.dataLen);
      if (!buf) return;
      // the fragment's runs sit close together in the source (its tracks are interleaved there): read them in a
      // few blocks that also span the small gaps between runs, then copy each run into place
      const { reads, segments } = spanReads(f.ranges, SPAN_GAP);
      const readAt: number[] = [];
      let spanLen = 0;
      for (const r of reads) {
        readAt.push(spanLen);
        spanLen += r.len;
      }
      if (span.length < spanLen) span = Buffer.allocUnsafe(Math.max(spanLen, 2 * COPY_BYTES));
      for (const [k, r] of reads.entries()) await reader.read(r.file, r.src, r.len, span, readAt[k] ?? 0);
      let at = 0;
      for (const segs of segments)
        for (const [k, from, len] of segs) {
          const s0 = (readAt[k] ?? 0) + from;
          span.copy(buf, at, s0, s0 + len);
          at += len;
        }
      if (!(await relay.write(at, f.head))) return;
    }
    res.end();
  } finally {
    await reader.release();
  }
}

async function sendMp4(req: Req, res: ServerResponse, p: Prepared, headers: Record<string, string | number>): Promise<void> {
  const plan = planMp4(p.timeline.tracks);
  const etag = `"${createHash('sha1')
    .update(plan.header)
    .update(p.files.map((f) => `${f.path}:${f.row.id}`).join('|'))
    .digest('base64url')
    .slice(0, 22)}"`;
  const ifRange = req.headers['if-range'];
  const range = !ifRange || ifRange === etag ? parseRange(req.headers.range, plan.size) : null;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${plan.size}`, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 416, error: `requested range is outside the answer (size ${plan.size})`, code: 'RANGE_NOT_SATISFIABLE' }));
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : plan.size - 1;
  const h: Record<string, string | number> = { ...headers, 'Accept-Ranges': 'bytes', ETag: etag, 'Content-Length': end - start + 1 };
  if (range) h['Content-Range'] = `bytes ${start}-${end}/${plan.size}`;
  res.writeHead(range ? 206 : 200, h);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  // the header bytes, then the pieces overlapping [start, end]
  if (start < plan.header.length && !(await send(res, plan.header.subarray(start, Math.min(end + 1, plan.header.length))))) return;
  const reader = new FileReader(p.files);
  const relay = new Relay(res, COPY_BYTES);
  try {
    let lo = 0;
    let hi = plan.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const pc = plan.pieces[mid];
      if (pc && pc.out + pc.len <= start) lo = mid + 1;
      else hi = mid;
    }
    let buf = await relay.next(COPY_BYTES);
    let used = 0;
    for (let k = lo; k < plan.pieces.length && buf; k++) {
      const pc = plan.pieces[k];
      if (!pc || pc.out > end) break;
      let from = Math.max(start, pc.out);
      const until = Math.min(end + 1, pc.out + pc.len);
      while (from < until && buf) {
        const n = Math.min(until - from, COPY_BYTES - used);
        await reader.read(pc.file, pc.src + (from - pc.out), n, buf, used);
        used += n;
        from += n;
        if (used === COPY_BYTES) {
          if (!(await relay.write(used))) return;
          used = 0;
          buf = await relay.next(COPY_BYTES);
        }
      }
    }
    if (!buf || (used > 0 && !(await relay.write(used)))) return;
    res.end();
  } finally {
    await reader.release();
  }
}
