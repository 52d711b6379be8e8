import { createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { ConfDiff } from '../conf/diff';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import type { Db } from '../store/db';
import { ArchiveMetrics } from './archive-metrics';
import { ArchiveStore, type QueuedFile } from './archive-store';
import { objectKey, uniqueKey } from './object-key';
import { S3Store } from './s3-store';
import { classifyError, describeError, type ErrorKind, s3Settings } from './s3-settings';
import { Throttle } from './throttle';
import { dropLocal, uploadVerified } from './upload-file';

const log = rootLog.child({ component: 'archive' });

/** Delay of the n-th retry of one file (n ≥ 1): 5 s doubling, capped at 10 min (pure). */
export function fileRetryDelayMs(attempt: number): number {
  return Math.min(600_000, 5000 * 2 ** Math.max(0, Math.min(attempt - 1, 20)));
}

/** Delay before probing a store that failed n times in a row (n ≥ 1): 1 s doubling, capped at 30 s (pure). */
export function storeRetryDelayMs(failures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, Math.min(failures - 1, 20)));
}

/** Keys whose change rebuilds the S3 client (in-flight uploads are aborted and go back to the queue). */
const CLIENT_KEYS = ['archive_s3_endpoint', 'archive_s3_bucket', 'archive_s3_region', 'archive_s3_access_key', 'archive_s3_secret_key', 'archive_s3_credentials_file', 'archive_s3_force_path_style'];
/** Reachability is checked this often when nothing else talked to the store. */
const PROBE_EVERY_MS = 15_000;
/** A misconfigured store is probed this often (a fixed bucket or key shows up without a config edit). */
const CONFIG_PROBE_MS = 5000;

/** A digest of the store settings (to see a change, e.g. in the credentials file, without keeping the secret twice). */
function sigOf(r: ReturnType<typeof s3Settings>): string {
  return createHash('sha256').update(JSON.stringify(r)).digest('hex');
}

function settingsSig(c: Conf): string {
  return sigOf(s3Settings(c));
}

/** Options of an Archiver. */
export interface ArchiverOptions {
  readonly conf: () => Conf;
  readonly db: Db;
  /** Prometheus registry for the archive metrics */
  readonly registry?: Registry;
}

interface Inflight {
  readonly id: number;
  readonly file: string;
  readonly key: string;
  readonly bytes: number;
  sent: number;
  readonly controller: AbortController;
  done: Promise<void>;
}

type StoreStatus = 'off' | 'ok' | 'misconfigured' | 'unreachable' | 'unknown';

/**
 * Uploads every finished file to the S3-compatible store, oldest first, `archive_concurrency` at a time, within
 * `archive_max_bandwidth`; verifies each object (size and the ETag the store computed against the bytes sent);
 * keeps the queue in SQLite (ArchiveStore). A store that is down or misconfigured pauses the queue (shown in
 * health and logged once per change) and never touches recording.
 */
export class Archiver {
  readonly name = 'archive';
  readonly store: ArchiveStore;
  private s3: S3Store | null = null;
  private readonly throttle: Throttle;
  private readonly inflight = new Map<number, Inflight>();
  private status: StoreStatus = 'off';
  private configError: string | null = null;
  private lastError: { at: number; kind: ErrorKind; message: string; file: string | null } | null = null;
  private lastLogged = '';
  private storeFailures = 0;
  private pausedUntil = 0;
  private lastContactMs = 0;
  private lastProbe: { at: number; ok: boolean; ms: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private closed = false;
  private generation = 0;
  private readonly metrics: ArchiveMetrics | null;
  private sessionUploaded = { files: 0, bytes: 0 };
  /** the store settings last applied (a digest: the secret itself is not kept twice) */
  private settingsSig = '';

  constructor(private readonly opts: ArchiverOptions) {
    this.store = new ArchiveStore(opts.db);
    this.throttle = new Throttle(opts.conf().archive_max_bandwidth);
    this.metrics = opts.registry
      ? new ArchiveMetrics(opts.registry, { backlog: () => this.store.backlog(), storeUp: () => (this.status === 'off' ? -1 : this.status === 'ok' ? 1 : 0) })
      : null;
  }

  /** Resume after a crash or stop (running uploads go back to the queue, their keys kept), build the client, start. */
  start(): void {
    const keys = this.store.resetUploading();
    if (keys.length) log.info({ files: keys.length }, 'archive uploads interrupted by a stop or crash go back to the queue (same keys)');
    this.configure(this.opts.conf());
  }

  /** A file was finalized: look at the queue now. */
  kick(): void {
    this.pump();
  }

  /** Hot reload: bandwidth and concurrency live; store settings rebuild the client. */
  async applyConf(c: Conf, diff: ConfDiff): Promise<void> {
    this.throttle.setRate(c.archive_max_bandwidth);
    // The credentials file is read again at every config change: new keys in it apply without a restart.
    if (diff.changedKeys.some((k) => CLIENT_KEYS.includes(k)) || settingsSig(c) !== this.settingsSig) {
      // No new upload may start on the old client while the running ones are aborted.
      const old = this.s3;
      this.s3 = null;
      this.generation++;
      await this.abortAll('the archive settings changed');
      old?.destroy();
      this.configure(this.opts.conf());
    } else {
      this.pump();
    }
  }

  /** Archiving is configured (archive_s3_endpoint set), whether the store answers or not. */
  get enabled(): boolean {
    return this.status !== 'off';
  }

  /** The S3 client of the current settings (null when archiving is off or misconfigured). */
  get client(): S3Store | null {
    return this.s3;
  }

  /** Stop: uploads are aborted (their rows go back to pending, keys kept) within a few seconds. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    const budgetMs = Math.max(500, Math.min(5000, (this.opts.conf().record_stop_timeout * 1000) / 3));
    await this.abortAll('edgerec is stopping', budgetMs);
    this.store.resetUploading();
    this.s3?.destroy();
    this.s3 = null;
  }

  /** The archive section of /rest-api/health (no secret in it). */
  health(): Record<string, unknown> {
    const c = this.opts.conf();
    const b = this.store.backlog();
    return {
      archive: {
        enabled: this.status !== 'off',
        status: this.status,
        endpoint: c.archive_s3_endpoint || null,
        bucket: c.archive_s3_bucket || null,
        boxId: c.box_id,
        configError: this.configError,
        store: { reachable: this.status === 'off' ? null : this.status === 'ok', lastProbe: this.lastProbe, lastContactAt: this.lastContactMs || null },
        lastError: this.lastError,
        backlog: { files: b.files, bytes: b.bytes, oldestMs: b.oldestMs, oldestAgeSeconds: b.oldestMs === null ? null : Math.round((Date.now() - b.oldestMs) / 1000), failed: b.byState.failed.count },
        archived: b.byState.archived,
        uploading: [...this.inflight.values()].map((u) => ({ file: u.file, key: u.key, bytes: u.bytes, sentBytes: u.sent })),
        uploadedSinceStart: this.sessionUploaded,
        maxBandwidth: c.archive_max_bandwidth,
        concurrency: c.archive_concurrency,
        keepLocalDays: c.archive_keep_local_days,
      },
    };
  }

  private configure(c: Conf): void {
    this.generation++;
    this.s3?.destroy();
    this.s3 = null;
    this.storeFailures = 0;
    this.pausedUntil = 0;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
    const r = s3Settings(c);
    this.settingsSig = sigOf(r);
    if (r.kind === 'off') {
      this.status = 'off';
      this.configError = null;
      if (this.lastLogged !== 'off') log.info('archiving is off (archive_s3_endpoint is empty)');
      this.lastLogged = 'off';
      return;
    }
    if (r.kind === 'invalid') {
      this.status = 'misconfigured';
      this.configError = r.error;
      this.report('config', r.error, null);
      if (c.archive_s3_credentials_file) this.schedule(CONFIG_PROBE_MS, () => void this.probe());
      return;
    }
    this.configError = null;
    this.status = 'unknown';
    this.s3 = new S3Store(r.settings, this.throttle);
    log.info({ endpoint: r.settings.endpoint, bucket: r.settings.bucket, region: r.settings.region }, 'archiving to the store');
    this.probeTimer = setInterval(() => {
      if (Date.now() - this.lastContactMs >= PROBE_EVERY_MS && this.inflight.size === 0) void this.probe();
    }, PROBE_EVERY_MS);
    this.probeTimer.unref();
    void this.probe();
  }

  /** Check the store with one signed request; resumes the queue when it answers. */
  private probe(): Promise<void> {
    // Refused settings from a credentials file: the file may have been fixed since (a rotated systemd credential).
    const c = this.opts.conf();
    if (this.status === 'misconfigured' && c.archive_s3_credentials_file && settingsSig(c) !== this.settingsSig) {
      log.info('archive_s3_credentials_file changed; using the new keys');
      this.configure(c);
      return Promise.resolve();
    }
    if (!this.s3) {
      if (this.status === 'misconfigured' && c.archive_s3_credentials_file) this.schedule(CONFIG_PROBE_MS, () => void this.probe());
      return Promise.resolve();
    }
    this.probing ??= (async () => {
      const s3 = this.s3;
      const gen = this.generation;
      if (!s3 || this.closed) return;
      const t = Date.now();
      try {
        await s3.probe(AbortSignal.timeout(10_000));
        if (gen !== this.generation) return;
        this.lastProbe = { at: Date.now(), ok: true, ms: Date.now() - t };
        this.storeOk();
      } catch (err) {
        if (gen !== this.generation) return;
        this.lastProbe = { at: Date.now(), ok: false, ms: Date.now() - t };
        this.storeFailed(classifyError(err), describeError(err), null);
      }
    })().finally(() => (this.probing = null));
    return this.probing;
  }

  private storeOk(): void {
    this.lastContactMs = Date.now();
    if (this.status !== 'ok') {
      log.info({ backlog: this.store.backlog().files }, 'archive store reachable; uploading');
      this.lastLogged = '';
    }
    this.status = 'ok';
    this.storeFailures = 0;
    this.pausedUntil = 0;
    this.pump();
  }

  /** The store as a whole failed (config or unreachable): pause the queue and probe again later. */
  private storeFailed(kind: ErrorKind, message: string, file: string | null): void {
    if (kind !== 'config' && kind !== 'unreachable') return;
    this.status = kind === 'config' ? 'misconfigured' : 'unreachable';
    this.storeFailures++;
    const delay = kind === 'config' ? CONFIG_PROBE_MS : storeRetryDelayMs(this.storeFailures);
    this.pausedUntil = Date.now() + delay;
    this.report(kind, message, file);
    this.schedule(delay, () => void this.probe());
  }

  /** Keep the last error for health; log it when it differs from the last one logged (once per change). */
  private report(kind: ErrorKind, message: string, file: string | null): void {
    this.lastError = { at: Date.now(), kind, message, file };
    const sig = `${kind}:${message}`;
    if (sig === this.lastLogged) return;
    this.lastLogged = sig;
    const hint =
      kind === 'config'
        ? 'archive store refuses the settings: check archive_s3_* (credentials, bucket); files wait in the queue, nothing is deleted'
        : kind === 'unreachable'
          ? 'archive store unreachable; files wait in the queue and go up when it answers'
          : 'archive upload of a file failed; it is retried';
    log.error({ kind, reason: message, file }, hint);
  }

  private schedule(ms: number, fn: () => void): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, Math.max(0, ms));
  }

  /** Start uploads while there are free slots and files due. */
  private pump(): void {
    if (this.closed || !this.s3 || this.status === 'misconfigured') return;
    if (Date.now() < this.pausedUntil) return;
    const limit = this.opts.conf().archive_concurrency;
    for (let i = 0; i < 64 && this.inflight.size < limit; i++) {
      const q = this.store.next();
      if (!q) break;
      this.startUpload(q, this.s3);
    }
    if (this.inflight.size === 0) {
      const due = this.store.nextDueMs();
      if (due !== null) this.schedule(due - Date.now() + 10, () => this.pump());
    }
  }

  private startUpload(q: QueuedFile, s3: S3Store): void {
    const c = this.opts.conf();
    let key = q.archive.objectKey;
    if (!key) {
      key = objectKey(c.archive_key_template, { boxId: c.box_id, streamName: q.row.streamName, startMs: q.row.startMs, fileName: q.row.fileName });
      const owner = this.store.keyOwner(key);
      if (owner !== null && owner !== q.row.id) key = uniqueKey(key, q.row.id);
    }
    key = this.store.markUploading(q.row.id, key);
    const controller = new AbortController();
    const entry: Inflight = {
      id: q.row.id,
      file: q.row.fileName,
      key,
      bytes: q.row.bytes,
      sent: 0,
      controller,
      done: Promise.resolve(),
    };
    this.inflight.set(q.row.id, entry);
    entry.done = this.runUpload(q, key, s3, entry, q.archive.attempts > 0)
      .catch((err: unknown) => this.uploadFailed(q, key, err, controller.signal.aborted))
      .finally(() => {
        this.inflight.delete(q.row.id);
        this.pump();
      });
  }

  private async runUpload(q: QueuedFile, key: string, s3: S3Store, entry: Inflight, retried: boolean): Promise<void> {
    const t0 = Date.now();
    const up = await uploadVerified(s3, q.row, key, { boxId: this.opts.conf().box_id, retried, signal: entry.controller.signal, onBytes: (n) => (entry.sent = n) });
    this.store.markArchived(q.row.id, up.etag, up.bytes);
    this.lastContactMs = Date.now();
    if (this.status !== 'ok') this.storeOk();
    this.metrics?.uploadedBytes.inc(up.bytes);
    this.metrics?.uploadedFiles.inc();
    this.sessionUploaded = { files: this.sessionUploaded.files + 1, bytes: this.sessionUploaded.bytes + up.bytes };
    log.info({ file: q.row.fileName, key, bytes: up.bytes, ms: Date.now() - t0, etag: up.etag }, 'file archived and verified');
    if (this.opts.conf().archive_keep_local_days === 0 && (await dropLocal(q.row, up.bytes))) this.store.markLocalGone(q.row.id);
  }

  private uploadFailed(q: QueuedFile, key: string, err: unknown, aborted: boolean): void {
    if (aborted || this.closed) {
      // Stop or settings change: back to the queue untouched (same key), nothing counted against the file.
      this.store.markFailed(q.row.id, 'interrupted (stop or settings change); retried', Date.now());
      return;
    }
    const kind = classifyError(err);
    // health and the log name the file, never its absolute path
    const message = describeError(err).split(q.row.path).join(q.row.fileName);
    this.metrics?.failures.inc({ kind });
    if (kind === 'gone') {
      this.store.markFailed(q.row.id, `the local file is gone: ${q.row.fileName}`, null);
      this.report('gone', `the local file is gone: ${q.row.fileName}`, q.row.fileName);
      return;
    }
    if (kind === 'config' || kind === 'unreachable') {
      // Not this file's fault: it keeps its place in the queue and goes when the store answers.
      this.store.markFailed(q.row.id, message, Date.now());
      this.storeFailed(kind, message, q.row.fileName);
      return;
    }
    const attempts = q.archive.attempts + 1;
    const delay = fileRetryDelayMs(attempts);
    this.store.markFailed(q.row.id, message, Date.now() + delay);
    this.report('file', `${message} [key:${key}, attempt:${attempts}, next try in ${Math.round(delay / 1000)} s]`, q.row.fileName);
  }

  private async abortAll(why: string, budgetMs = 5000): Promise<void> {
    const running = [...this.inflight.values()];
    if (running.length === 0) return;
    log.info({ uploads: running.length, why }, 'aborting archive uploads; they go back to the queue');
    for (const u of running) u.controller.abort();
    await Promise.race([Promise.allSettled(running.map((u) => u.done)), new Promise((r) => setTimeout(r, budgetMs).unref())]);
  }
}
