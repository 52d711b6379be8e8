import { AssertionError } from 'node:assert';
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// What the leak tests measure, and the bounds they hold the service to (README "Tests": leak bounds). After a
// warm-up, any number of publish/stop or drop/return cycles may leave at most these, whatever the cycle count:
// a leak per cycle (the 2 fds a pipeline kept before the binding patch, a few hundred kB a cycle) exceeds them
// within the cycles a test runs.

/** Open fds a process may gain over the cycles (sockets and files still closing). */
export const LEAK_MAX_FDS = 4;
/** RSS (MiB) a media host may gain over the cycles, after its tidy (full GC + malloc_trim; every second with gcEnv). */
export const LEAK_MAX_HOST_RSS_MIB = 8;
/**
 * Live JS heap (MiB, the size of a heap snapshot taken after a full GC) the service may gain over the cycles. Its
 * RSS is not compared: it holds whatever garbage V8 has not collected yet (the Buffers of the media that went
 * through it: ~1 MB per RTMP publish until the next major GC), and writing a snapshot grows it too.
 */
export const LEAK_MAX_HEAP_MIB = 2;
/** RSS (MiB) a process hosting the code under test itself may gain, measured after a full GC (collectGarbageHere). */
export const LEAK_MAX_RSS_MIB = 16;

/** Open fds and RSS (kB) of one process; null when it is gone. */
export function procUsage(pid: number): { fds: number; rssKb: number } | null {
  try {
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return { fds: readdirSync(`/proc/${pid}/fd`).length, rssKb: Number(rss ?? 0) };
  } catch {
    return null;
  }
}

/** A service and its media hosts (its children running host-worker): each one's fds and RSS. */
export interface TreeUsage {
  readonly service: { fds: number; rssKb: number };
  readonly hosts: ReadonlyArray<{ pid: number; fds: number; rssKb: number }>;
  /** fds of the service and every host */
  readonly fds: number;
  /** RSS of the service and every host, kB */
  readonly rssKb: number;
  /** the service's live JS heap (bytes of a heap snapshot after a full GC: collectGarbage), when measured */
  readonly heapBytes: number | null;
}

/** The service `pid` and its media host processes, from /proc. */
export function treeUsage(pid: number, heapBytes: number | null = null): TreeUsage {
  const service = procUsage(pid) ?? { fds: 0, rssKb: 0 };
  const hosts: { pid: number; fds: number; rssKb: number }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      if (!readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('host-worker')) continue;
    } catch {
      continue;
    }
    const u = procUsage(Number(e));
    if (u) hosts.push({ pid: Number(e), ...u });
  }
  return {
    service,
    hosts,
    fds: service.fds + hosts.reduce((n, h) => n + h.fds, 0),
    rssKb: service.rssKb + hosts.reduce((n, h) => n + h.rssKb, 0),
    heapBytes,
  };
}

/** One line for a test's output: fds and RSS of the service and each host. */
export function showUsage(u: TreeUsage): string {
  const mib = (kb: number) => (kb / 1024).toFixed(1);
  const heap = u.heapBytes === null ? '' : ` (live JS heap ${(u.heapBytes / 2 ** 20).toFixed(1)} MiB)`;
  return `service ${u.service.fds} fds ${mib(u.service.rssKb)} MiB${heap}; hosts ${u.hosts.map((h) => `${h.pid}: ${h.fds} fds ${mib(h.rssKb)} MiB`).join(', ')}; tree ${mib(u.rssKb)} MiB`;
}

/**
 * Assert the leak bounds between two samples of the same service: the service's fds and live JS heap (when both
 * samples have it), and each host's fds and RSS (the same host PIDs: a host replaced in between would hide its growth).
 */
export function assertNoLeak(before: TreeUsage, after: TreeUsage, what: string): void {
  const fail = (msg: string) => {
    throw new AssertionError({ message: `${what}: ${msg}\n  before: ${showUsage(before)}\n  after:  ${showUsage(after)}` });
  };
  if (after.service.fds > before.service.fds + LEAK_MAX_FDS) fail(`service fds grew ${before.service.fds} → ${after.service.fds} (at most +${LEAK_MAX_FDS})`);
  if (before.heapBytes !== null && after.heapBytes !== null && after.heapBytes > before.heapBytes + LEAK_MAX_HEAP_MIB * 2 ** 20)
    fail(`the service's live JS heap grew ${(before.heapBytes / 2 ** 20).toFixed(1)} → ${(after.heapBytes / 2 ** 20).toFixed(1)} MiB (at most +${LEAK_MAX_HEAP_MIB})`);
  const pids = (u: TreeUsage) => u.hosts.map((h) => h.pid).sort().join(',');
  if (after.hosts.length === 0) fail('no media host to measure');
  if (pids(before) !== pids(after)) fail(`the media hosts changed (${pids(before)} → ${pids(after)})`);
  for (const h of after.hosts) {
    const b = before.hosts.find((x) => x.pid === h.pid);
    if (!b) continue;
    if (h.fds > b.fds + LEAK_MAX_FDS) fail(`media host ${h.pid} fds grew ${b.fds} → ${h.fds} (at most +${LEAK_MAX_FDS})`);
    if (h.rssKb > b.rssKb + LEAK_MAX_HOST_RSS_MIB * 1024) fail(`media host ${h.pid} RSS grew ${(b.rssKb / 1024).toFixed(1)} → ${(h.rssKb / 1024).toFixed(1)} MiB (at most +${LEAK_MAX_HOST_RSS_MIB})`);
  }
}

/** Environment for a service whose live JS heap a leak test measures: SIGUSR2 writes a heap snapshot into `dir`. */
export function gcEnv(dir: string): Record<string, string> {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`.trim(),
    // media hosts tidy (full GC + malloc_trim) every second instead of every 60 s: their RSS is then what they keep
    EDGEREC_TIDY_MS: String(HOST_TIDY_MS),
  };
}

const HOST_TIDY_MS = 1000;

/**
 * Full GC in a service started with gcEnv(dir): ask for a heap snapshot, wait until it is written, delete it.
 * Resolves to the snapshot's size in bytes (a measure of the live JS heap).
 */
export async function collectGarbage(pid: number, dir: string): Promise<number> {
  const snaps = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
  for (const f of snaps()) unlinkSync(join(dir, f));
  await new Promise((r) => setTimeout(r, HOST_TIDY_MS * 2)); // a host tidy runs meanwhile (gcEnv)
  process.kill(pid, 'SIGUSR2');
  // the snapshot is written by the main thread after the GC: done when the file exists and stops growing
  let last = -1;
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const [f] = snaps();
    if (!f) continue;
    const size = statSync(join(dir, f)).size;
    if (size > 0 && size === last) {
      // EDGEREC_LEAK_SNAPSHOTS=<folder> keeps them, to compare in Chrome DevTools (Memory → Comparison)
      const keep = process.env.EDGEREC_LEAK_SNAPSHOTS;
      if (keep) renameSync(join(dir, f), join(keep, `${pid}-${Date.now()}.heapsnapshot`));
      else unlinkSync(join(dir, f));
      return size;
    }
    last = size;
  }
  throw new Error(`no heap snapshot from ${pid} in 30 s (was it started with gcEnv?)`);
}

/** Full GC in this process (a test hosting the code under test itself). */
export function collectGarbageHere(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
