import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, type Proc, start, waitFor } from './proc';

const run = promisify(execFile);

/** The S3 credentials of the test store (tempauth user test:tester). */
export const SWIFT_ACCESS_KEY = 'test:tester';
export const SWIFT_SECRET_KEY = 'testing';

/** A real OpenStack Swift "all in one" with s3api on 127.0.0.1 (NOTES.md "S3-compatible store for tests"). */
export interface SwiftStore {
  /** http://127.0.0.1:<proxy port> */
  readonly endpoint: string;
  readonly dir: string;
  readonly ports: Readonly<Record<ServerName, number>>;
  /** the PIDs of the four servers now running */
  pids(): number[];
  /** SIGKILL every server (the store vanishes mid-request) */
  kill(): Promise<void>;
  /** start the servers again on the same ports and data (after kill()) */
  restart(): Promise<void>;
  /** SIGTERM then SIGKILL every server; removes the folder; safe twice */
  stop(): Promise<void>;
  /** the servers' output (for failure messages) */
  output(): string;
}

type ServerName = 'account' | 'container' | 'object' | 'proxy';
const SERVERS: readonly ServerName[] = ['account', 'container', 'object', 'proxy'];

/** True when something accepts TCP connections on 127.0.0.1:port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function serverConf(name: Exclude<ServerName, 'proxy'>, dir: string, port: number): string {
  return [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    'mount_check = false',
    `devices = ${join(dir, 'srv')}`,
    `swift_dir = ${join(dir, 'etc')}`,
    'log_level = WARNING',
    '',
    '[pipeline:main]',
    `pipeline = ${name}-server`,
    '',
    `[app:${name}-server]`,
    `use = egg:swift#${name}`,
    '',
    ...(name === 'object' ? ['[object-replicator]', '[object-updater]', '[object-auditor]'] : [`[${name}-replicator]`, `[${name}-auditor]`]),
    '',
  ].join('\n');
}

function proxyConf(dir: string, port: number): string {
  return [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    `swift_dir = ${join(dir, 'etc')}`,
    'log_level = WARNING',
    '',
    '[pipeline:main]',
    'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server',
    '',
    '[app:proxy-server]',
    'use = egg:swift#proxy',
    'account_autocreate = true',
    '',
    '[filter:s3api]',
    'use = egg:swift#s3api',
    'location = us-east-1',
    '',
    '[filter:tempauth]',
    'use = egg:swift#tempauth',
    `user_test_tester = ${SWIFT_SECRET_KEY} .admin`,
    '',
    '[filter:cache]',
    'use = egg:swift#memcache',
    '',
    ...['catch_errors', 'gatekeeper', 'healthcheck', 'proxy-logging', 'listing_formats', 'copy', 'slo', 'dlo', 'versioned_writes'].flatMap((f) => [
      `[filter:${f}]`,
      `use = egg:swift#${f.replace('-', '_')}`,
      '',
    ]),
  ].join('\n');
}

const RING_PY = `
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(['account', 'container', 'object'], sys.argv[2:5]):
    b = RingBuilder(6, 1, 0)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port), 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
`;

/**
 * Start Swift + s3api on 127.0.0.1 with OS-chosen ports in a temp folder (ext4/tmpfs: the object server needs
 * user xattrs). Refuses to start when a chosen port already answers (eventlet binds with SO_REUSEPORT, so a
 * stale server would silently share it). Resolves when every port answers and S3 accepts a request.
 * Register `t.after(() => store.stop())`.
 */
export async function startSwift(parent = tmpdir()): Promise<SwiftStore> {
  const dir = mkdtempSync(join(parent, 'edgerec-swift-'));
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'srv', 'd1'), { recursive: true });
  const ports = {} as Record<ServerName, number>;
  for (const n of SERVERS) {
    for (let i = 0; i < 20; i++) {
      const p = await freePort();
      if (!Object.values(ports).includes(p)) {
        ports[n] = p;
        break;
      }
    }
  }
  const confs = {} as Record<ServerName, string>;
  for (const n of SERVERS) {
    confs[n] = join(dir, 'etc', `${n}-server.conf`);
    writeFileSync(confs[n], n === 'proxy' ? proxyConf(dir, ports.proxy) : serverConf(n, dir, ports[n]));
  }
  // Swift always reads /etc/swift/swift.conf (the hash path suffix); copy it for swift_dir's other readers.
  writeFileSync(join(dir, 'etc', 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = edgerec-test\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n');
  await run('/usr/bin/python3', ['-c', RING_PY, join(dir, 'etc'), String(ports.account), String(ports.container), String(ports.object)], { timeout: 60_000 });

  let procs: Proc[] = [];
  let stopped = false;
  let past = '';
  const endpoint = `http://127.0.0.1:${ports.proxy}`;

  const launch = async (): Promise<void> => {
    for (const n of SERVERS) {
      if (await answers(ports[n])) throw new Error(`swift: port ${ports[n]} (${n}) already answers: a stale server would share it (SO_REUSEPORT); not starting`);
    }
    procs = SERVERS.map((n) => start(`/usr/bin/swift-${n}-server`, [confs[n], '-v'], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }));
    try {
      await waitFor(
        'the swift servers to listen',
        async () => {
          const dead = procs.find((p) => p.child.exitCode !== null);
          if (dead) throw new Error(`a swift server exited: ${dead.output().slice(-1500)}`);
          for (const n of SERVERS) if (!(await answers(ports[n]))) return false;
          return true;
        },
        30_000,
        100,
      );
      // The proxy's healthcheck middleware answers once its pipeline (s3api included) is loaded.
      await waitFor(
        'the swift proxy healthcheck',
        async () => {
          const r = await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) });
          return r.status === 200 && (await r.text()) === 'OK';
        },
        30_000,
        100,
      );
    } catch (err) {
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      throw err;
    }
  };

  await launch().catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });

  const output = () => past + procs.map((p) => p.output()).join('\n');
  return {
    endpoint,
    dir,
    ports,
    pids: () => procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.pid),
    output,
    async kill() {
      past = output();
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    },
    async restart() {
      if (stopped) throw new Error('swift: stopped for good');
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      past = output();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(procs.map((p) => p.stop('SIGTERM', 3000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
