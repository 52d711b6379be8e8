import { loadavg } from 'node:os';
import si from 'systeminformation';
import { errMessage } from '../lib/errors';
import { type DiskUsage, diskUsage } from './disk';

/** Config state as shown in health: whether the last reload was refused, and why. */
export interface ConfState {
  readonly ok: boolean;
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
    diskOrError(recordDir),
    diskOrError(tmpDir),
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

async function diskOrError(path: string): Promise<DiskUsage | { path: string; error: string }> {
  try {
    return await diskUsage(path);
  } catch (err) {
    return { path, error: errMessage(err) };
  }
}

function loadAvg(): number[] {
  return loadavg().map(round);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
