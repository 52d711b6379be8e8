import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Proc, start, waitFor } from './proc';

/** Root of the checkout (tests run from dist/tests/...). */
export const ROOT = resolve(__dirname, '..', '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'main.js');

/** A running edgerec service on a temp config. */
export interface Service {
  readonly proc: Proc;
  readonly dir: string;
  readonly confPath: string;
  readonly recordDir: string;
  readonly tmpDir: string;
  readonly port: number;
  readonly base: string;
  /** JSON log lines so far */
  logs(): Record<string, unknown>[];
  /** write the config file (whole text) */
  writeConf(text: string): void;
  /** fetch JSON from the REST port */
  json(path: string, init?: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }>;
  post(path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ServiceOptions {
  /** extra properties lines */
  conf?: string;
  /** reuse this folder (restart after a crash) */
  dir?: string;
  env?: Record<string, string>;
  /** the config file, relative to the folder (default edgerec.properties) */
  confFile?: string;
  /** node options before the main script (e.g. --cpu-prof, which NODE_OPTIONS does not allow) */
  nodeArgs?: string[];
}

/** The base config of a test service: port 0, its own folders. */
export function baseConf(dir: string): string {
  return [
    'rest_port=0',
    'rest_bind=127.0.0.1',
    'rtmp_port=0',
    `record_dir=${join(dir, 'records')}`,
    `record_tmp_dir=${join(dir, 'tmp')}`,
    `db_path=${join(dir, 'edgerec.db')}`,
    'on_record_hook_script=',
    'media_host_count=1',
    '',
  ].join('\n');
}

/** Start the real service (dist/src/main.js) and wait until it listens. */
export async function startService(o: ServiceOptions = {}): Promise<Service> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'edgerec-svc-'));
  mkdirSync(dir, { recursive: true });
  const confPath = join(dir, o.confFile ?? 'edgerec.properties');
  mkdirSync(dirname(confPath), { recursive: true });
  const writeConf = (text: string) => writeFileSync(confPath, text);
  if (!o.dir || o.conf !== undefined) writeConf(baseConf(dir) + (o.conf ?? ''));
  const proc = start(process.execPath, [...(o.nodeArgs ?? []), MAIN, '--conf', confPath], { cwd: ROOT, env: { ...process.env, EDGEREC_LOG_LEVEL: 'debug', ...o.env } });
  const logs = (): Record<string, unknown>[] =>
    proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const port = await waitFor(
    'the service to listen',
    () => {
      const l = logs().find((x) => x.msg === 'edgerec listening');
      if (!l && proc.child.exitCode !== null) assert.fail(`service exited ${proc.child.exitCode}: ${proc.output().slice(-2000)}`);
      return l ? (l.port as number) : 0;
    },
    20_000,
    50,
  ).catch(async (err: unknown) => {
    // A service that never listened is nobody's to stop: stop it here, and show why it hung.
    await proc.stop('SIGKILL');
    throw new Error(`${String(err)}\n--- service output (tail) ---\n${proc.output().slice(-3000)}`);
  });
  const base = `http://127.0.0.1:${port}`;
  const json = async (path: string, init?: RequestInit) => {
    const r = await fetch(base + path, init);
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body, headers: r.headers };
  };
  return {
    proc,
    dir,
    confPath,
    recordDir: join(dir, 'records'),
    tmpDir: join(dir, 'tmp'),
    port,
    base,
    logs,
    writeConf,
    json,
    post: (path, body) => json(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }),
    stop: (signal = 'SIGTERM') => proc.stop(signal, 30_000),
  };
}

/** The RTMP port the service logged (`{"msg":"rtmp listening","rtmpPort":N}`). */
export function rtmpPort(s: Service): Promise<number> {
  return waitFor('the rtmp port in the log', () => s.logs().find((l) => l.msg === 'rtmp listening')?.rtmpPort as number | undefined, 15_000, 50);
}

/** PIDs of every descendant of `pid` (from /proc), children before grandchildren. */
export function descendantPids(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // field 4 of /proc/<pid>/stat is the parent pid; the command name (field 2) may hold spaces, so cut after ')'
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const kids = parent.get(ppid) ?? [];
      kids.push(Number(d));
      parent.set(ppid, kids);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    for (const k of parent.get(queue[i] ?? -1) ?? []) {
      out.push(k);
      queue.push(k);
    }
  }
  return out;
}

/** True while a process exists (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
