/**
 * RTMP recording CPU benchmark: N ffmpeg publishers (`-re -stream_loop -1 -c copy`) into the edgerec service, then
 * the same N into nginx with libnginx-mod-rtmp (`record all`), CPU (utime+stime from /proc) of each server's whole
 * process tree over a fixed window, as % of one core per stream.
 * Usage: node dist/bench/rtmp-bench.js [N list, default 1,8,16] [window s, default 30] [size, default 1280x720]
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClip, probe } from '../tests/helpers/media';
import { freePort, start, type Proc, waitFor } from '../tests/helpers/proc';
import { descendantPids, rtmpPort, startService } from '../tests/helpers/service';

const NS = (process.argv[2] ?? '1,8,16').split(',').map(Number);
const WINDOW_S = Number(process.argv[3] ?? 30);
const SIZE = process.argv[4] ?? '1280x720';
const WARMUP_MS = 5000;
const CLK_TCK = 100;
const NGINX_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

/** utime+stime (ticks) and RSS (kB) of one process, null when it is gone. */
function procStat(pid: number): { ticks: number; rssKb: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ')' start at field 3 (state): utime is field 14, stime 15, rss (pages) 24
    return { ticks: Number(f[11]) + Number(f[12]), rssKb: Number(f[21]) * 4 };
  } catch {
    return null;
  }
}

/** CPU seconds of a process tree over `windowS`, sampled every second (a process that exits mid-window keeps its last sample). */
async function treeCpu(root: number, windowS: number): Promise<{ cpuS: number; rootCpuS: number; rssMb: number; pids: number }> {
  const pids = () => [root, ...descendantPids(root)];
  const first = new Map<number, number>();
  for (const p of pids()) first.set(p, procStat(p)?.ticks ?? 0);
  const seen = new Map(first);
  const t0 = Date.now();
  for (let i = 0; i < windowS * 2 && Date.now() - t0 < windowS * 1000; i++) {
    await new Promise((r) => setTimeout(r, Math.min(1000, windowS * 1000 - (Date.now() - t0))));
    for (const p of pids()) {
      const st = procStat(p);
      if (!st) continue;
      if (!first.has(p)) first.set(p, 0);
      seen.set(p, st.ticks);
    }
  }
  let ticks = 0;
  let rssKb = 0;
  for (const [p, t0ticks] of first) {
    ticks += (seen.get(p) ?? t0ticks) - t0ticks;
    rssKb += procStat(p)?.rssKb ?? 0;
  }
  const rootTicks = (seen.get(root) ?? 0) - (first.get(root) ?? 0);
  return { cpuS: ticks / CLK_TCK, rootCpuS: rootTicks / CLK_TCK, rssMb: rssKb / 1024, pids: first.size };
}

function publishers(n: number, clip: string, url: (i: number) => string): Proc[] {
  return Array.from({ length: n }, (_, i) =>
    start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', url(i)]),
  );
}

interface Result {
  readonly perStream: number;
  /** the share of it in the tree's root process (edgerec: the Node service; nginx: the master) */
  readonly rootPerStream: number;
  readonly rssMb: number;
  readonly pids: number;
}

async function benchEdgerec(n: number, clip: string): Promise<Result> {
  const s = await startService({ conf: 'log_level=info\n', env: { EDGEREC_LOG_LEVEL: 'info' } });
  const pubs: Proc[] = [];
  try {
    const port = await rtmpPort(s);
    pubs.push(...publishers(n, clip, (i) => `rtmp://127.0.0.1:${port}/live/bench_${i}`));
    await waitFor(
      `${n} recordings running`,
      async () => {
        const r = await s.post('/rest-api/recorder/find_all');
        return r.status === 200 && Array.isArray(r.body) && r.body.length === n;
      },
      60_000,
      200,
    );
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const m = await treeCpu(s.proc.pid, WINDOW_S);
    const running = (await s.post('/rest-api/recorder/find_all')).body;
    if (!Array.isArray(running) || running.length !== n) throw new Error(`edgerec: ${n} recordings expected after the window, got ${JSON.stringify(running)}`);
    return { perStream: (m.cpuS / WINDOW_S / n) * 100, rootPerStream: (m.rootCpuS / WINDOW_S / n) * 100, rssMb: m.rssMb, pids: m.pids };
  } finally {
    await Promise.all(pubs.map((p) => p.stop('SIGKILL')));
    await s.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

async function benchNginx(n: number, clip: string): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-nginx-'));
  const rec = join(dir, 'rec');
  mkdirSync(rec);
  // the worker may run as another user (nobody) when started by root
  chmodSync(dir, 0o755);
  chmodSync(rec, 0o777);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      `load_module ${NGINX_MODULE};`,
      'worker_processes 1;',
      'daemon off;',
      `error_log ${join(dir, 'error.log')} warn;`,
      `pid ${join(dir, 'nginx.pid')};`,
      'events { worker_connections 1024; }',
      `rtmp { server { listen 127.0.0.1:${port}; application live { live on; record all; record_path ${rec}; record_unique on; } } }`,
      '',
    ].join('\n'),
  );
  const ngx = start('nginx', ['-c', conf, '-p', `${dir}/`]);
  const pubs: Proc[] = [];
  try {
    await waitFor('nginx worker', () => descendantPids(ngx.pid).length > 0, 10_000, 50);
    pubs.push(...publishers(n, clip, (i) => `rtmp://127.0.0.1:${port}/live/bench_${i}`));
    await waitFor(`${n} nginx recordings`, () => readdirSync(rec).length >= n, 60_000, 200);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const sizes = () => readdirSync(rec).map((f) => statSync(join(rec, f)).size);
    const before = sizes();
    const m = await treeCpu(ngx.pid, WINDOW_S);
    const grown = sizes().filter((sz, i) => sz > (before[i] ?? 0)).length;
    if (grown < n) throw new Error(`nginx: ${n} growing recordings expected, ${grown} grew`);
    return { perStream: (m.cpuS / WINDOW_S / n) * 100, rootPerStream: (m.rootCpuS / WINDOW_S / n) * 100, rssMb: m.rssMb, pids: m.pids };
  } finally {
    await Promise.all(pubs.map((p) => p.stop('SIGKILL')));
    await ngx.stop('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!existsSync(NGINX_MODULE)) throw new Error(`${NGINX_MODULE} is missing: apt-get install libnginx-mod-rtmp`);
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 10, size: SIZE, gop: 50 });
  const p = await probe(clip);
  const mbit = (Number(p.format.size) * 8) / Number(p.format.duration) / 1e6;
  console.log(`clip ${clip}: ${SIZE}, ${Number(p.format.duration).toFixed(1)} s, ${mbit.toFixed(2)} Mbit/s; window ${WINDOW_S} s, N = ${NS.join(', ')}`);
  const rows: string[] = [];
  for (const n of NS) {
    const e = await benchEdgerec(n, clip);
    const x = await benchNginx(n, clip);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const row = `| ${n} | ${e.perStream.toFixed(2)} % (Node ${e.rootPerStream.toFixed(2)}, hosts ${(e.perStream - e.rootPerStream).toFixed(2)}) | ${x.perStream.toFixed(2)} % | ${(e.perStream / x.perStream).toFixed(1)}× | ${e.rssMb.toFixed(0)} MB (${e.pids} procs) | ${x.rssMb.toFixed(0)} MB (${x.pids} procs) | ${load} |`;
    console.log(row);
    rows.push(row);
  }
  console.log('\n| N | edgerec CPU/stream | nginx-rtmp CPU/stream | ratio | edgerec tree RSS | nginx tree RSS | load avg |');
  console.log('|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
