import { stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import si from 'systeminformation';
import { errMessage } from '../lib/errors';
import { type DiskUsage, diskUsage } from './disk';

/** Config state as shown in health: whether the last reload was refused, and why. */
export interface ConfState {
  readonly ok: boolean;
  /** the config file's name (not its folder) */
  readonly path: string;
  readonly loadedAt: number;
  readonly lastError: { readonly message: string; readonly at: number } | null;
  readonly warnings: readonly string[];
}

/** What the app feeds into the health answer. */
export interface HealthSources {
  readonly version: string;
  readonly startedAt: number;
  conf(): ConfState;
  dirs(): { recordDir: string; tmpDir: string };
  /** any extra sections (streams, recordings, hosts, ingest, errors...) */
  sections(): Record<string, unknown>;
  authEnabled(): boolean;
}

/** The /rest-api/health answer. */
export async function collectHealth(src: HealthSources): Promise<Record<string, unknown>> {
  const { recordDir, tmpDir } = src.dirs();
  const [load, mem, recordDisk, tmpDisk] = await Promise.all([
    si.currentLoad().catch(() => null),
    si.mem().catch(() => null),
    diskOrError(recordDir, 'record_dir'),
    diskOrError(tmpDir, 'record_tmp_dir'),
  ]);
  const conf = src.conf();
  return {
    status: conf.ok ? 'ok' : 'degraded',
    version: src.version,
    uptimeSeconds: Math.round((Date.now() - src.startedAt) / 1000),
    pid: process.pid,
    config: conf,
    auth: { rest: src.authEnabled() ? 'bearer token required' : 'open (rest_auth_token not set)' },
    disk: { record: recordDisk, tmp: tmpDisk },
    cpu: load ? { loadPercent: round(load.currentLoad), cores: load.cpus.length, loadAvg: loadAvg() } : null,
    memory: mem ? { totalBytes: mem.total, availableBytes: mem.available, processRssBytes: process.memoryUsage().rss } : null,
    ...src.sections(),
  };
}

/** A folder's disk, named by its config key: no answer carries an absolute path (SPEC §4). */
async function diskOrError(path: string, key: string): Promise<Omit<DiskUsage, 'path'> & { folder: string } | { folder: string; error: string }> {
  try {
    const { path: _where, ...usage } = await diskUsage(path);
    return { folder: key, ...usage };
  } catch (err) {
    return { folder: key, error: errMessage(err).split(path).join(key) };
  }
}

function loadAvg(): number[] {
  return loadavg().map(round);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** A file being written, as the liveness sampler sees it. */
export interface OpenFile {
  readonly stream: string;
  readonly tmpPath: string | null;
}

/** Liveness of one recording stream: bytes its open files gained in the window. */
export interface StreamLiveness {
  readonly live: boolean;
  readonly bytesLastWindow: number;
  readonly windowMs: number;
  readonly lastWriteAt: number | null;
  readonly files: number;
}

/** Samples the size of every file being written each second: a stream is live when its bytes grew in the last window. */
export class LivenessSampler {
  private readonly history = new Map<string, { at: number; bytes: number }[]>();
  private snapshot: Record<string, StreamLiveness> = {};
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly open: () => readonly OpenFile[],
    private readonly windowMs = 5000,
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.everyMs);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Per stream name (recording streams only). */
  health(): Record<string, unknown> {
    return { liveness: this.snapshot };
  }

  /** One sample (the timer calls it; exposed for tests). */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      const out: Record<string, { live: boolean; bytesLastWindow: number; windowMs: number; lastWriteAt: number | null; files: number }> = {};
      const seen = new Set<string>();
      for (const f of this.open()) {
        const s = (out[f.stream] ??= { live: false, bytesLastWindow: 0, windowMs: this.windowMs, lastWriteAt: null, files: 0 });
        s.files++;
        if (!f.tmpPath) continue;
        seen.add(f.tmpPath);
        const st = await stat(f.tmpPath).catch(() => null);
        if (!st) continue;
        const h = this.history.get(f.tmpPath) ?? [];
        h.push({ at: now, bytes: st.size });
        while (h.length > 1 && (h[0]?.at ?? now) < now - this.windowMs) h.shift();
        this.history.set(f.tmpPath, h);
        const gained = st.size - (h.length > 1 ? (h[0]?.bytes ?? 0) : 0);
        s.bytesLastWindow += Math.max(0, gained);
        s.lastWriteAt = Math.max(s.lastWriteAt ?? 0, Math.round(st.mtimeMs));
        if (now - st.mtimeMs < this.windowMs) s.live = true;
      }
      for (const k of this.history.keys()) if (!seen.has(k)) this.history.delete(k);
      this.snapshot = out;
    } finally {
      this.busy = false;
    }
  }
}
