/**
 * RTMP recording cost benchmark: N ffmpeg publishers (`-re -stream_loop -1 -c copy`, 720p25 ~4 Mbit/s H.264 + AAC)
 * into (a) the edgerec service recording MP4 with rotation 10 s, (b) one `ffmpeg -listen 1 … -c copy -f segment`
 * per stream (10 s MP4 segments), (c) nginx with libnginx-mod-rtmp (`record all`). CPU (utime+stime from /proc) of
 * each recorder's whole process tree over a fixed window, as % of one core per stream, and RSS per stream (edgerec:
 * beyond the idle service). Every stream's recording is checked afterwards (ffprobe of every file, total length).
 * Usage: node dist/bench/rtmp-bench.js [N list, default 1,8,16] [window s, default 30] [legs, default edgerec,ffmpeg,nginx]
 * Env RTMP_BENCH_CONF: extra service properties lines (`\n`-separated), e.g. to compare settings.
 * Env RTMP_BENCH_NODE_ARGS: extra node options for the service (space-separated), e.g. `--trace-gc`: the edgerec leg
 * then also prints the GCs the service ran during the window. The leg always prints the service's main thread vs its
 * other threads (V8 workers, libuv pool) over the window.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe } from '../tests/helpers/media';
import { benchClip, SIZE } from './rtmp-clip';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, start, type Proc, waitFor } from '../tests/helpers/proc';
import { descendantPids, rtmpPort, startService } from '../tests/helpers/service';

const NS = (process.argv[2] ?? '1,8,16').split(',').map(Number);
const WINDOW_S = Number(process.argv[3] ?? 30);
const LEGS = (process.argv[4] ?? 'edgerec,ffmpeg,nginx').split(',');
/** seconds a publisher's files may lack against its wall-clock publishing time (connection set-up, first GOP) */
const LENGTH_SLACK_S = 4;
const WARMUP_MS = 5000;
const CLK_TCK = 100;
const NGINX_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
const run = promisify(execFile);

/** utime+stime (ticks) and RSS (kB) of one process, null when it is gone. */
function procStat(pid: number, tid?: number): { ticks: number; rssKb: number } | null {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ')' start at field 3 (state): utime is field 14, stime 15, rss (pages) 24
    return { ticks: Number(f[11]) + Number(f[12]), rssKb: Number(f[21]) * 4 };
  } catch {
    return null;
  }
}

/** CPU seconds of a process tree over `windowS`, sampled every second (a process that exits mid-window keeps its last sample). */
async function treeCpu(root: number, windowS: number): Promise<{ cpuS: number; rootCpuS: number; rssMb: number; rootRssMb: number; pids: number }> {
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
  return { cpuS: ticks / CLK_TCK, rootCpuS: rootTicks / CLK_TCK, rssMb: rssKb / 1024, rootRssMb: (procStat(root)?.rssKb ?? 0) / 1024, pids: first.size };
}

interface Pub {
  readonly proc: Proc;
  readonly startedAt: number;
  stoppedAt: number;
}

function publishers(n: number, clip: string, url: (i: number) => string): Pub[] {
  return Array.from({ length: n }, (_, i) => ({
    proc: start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', url(i)]),
    startedAt: Date.now(),
    stoppedAt: 0,
  }));
}

/** SIGKILL every publisher (a vanished publisher: the harshest end a recorder must handle), noting when. */
async function stopPublishers(pubs: Pub[]): Promise<void> {
  await Promise.all(
    pubs.map(async (p) => {
      p.stoppedAt = Date.now();
      await p.proc.stop('SIGKILL');
    }),
  );
}

interface Result {
  readonly perStream: number;
  /** the share of it in the tree's root process (edgerec: the Node service; nginx: the master; ffmpeg: none) */
  readonly rootPerStream: number;
  /** tree RSS (edgerec: beyond the idle service) per stream, MB */
  readonly rssPerStream: number;
  /** edgerec: the Node service's share of rssPerStream */
  readonly rootRssPerStream?: number;
  readonly rssMb: number;
  readonly pids: number;
  /** every stream's files ffprobed and long enough, e.g. "8/8 streams, 24 files" */
  readonly check: string;
}

/**
 * ffprobe every file of a stream (each must hold video and audio); returns the file count and how many seconds the
 * files lack against the publisher's wall time. `strict` (edgerec): more than LENGTH_SLACK_S lacking fails the run;
 * for the reference recorders the shortfall is reported.
 */
async function checkStream(what: string, files: string[], pub: Pub, strict = true): Promise<{ files: number; short: number }> {
  if (files.length === 0) throw new Error(`${what}: no file recorded`);
  let total = 0;
  for (const f of files) {
    const p = await probe(f).catch((err: unknown) => {
      throw new Error(`${what}: ffprobe failed on ${f}: ${String(err).slice(0, 300)}`);
    });
    const kinds = new Set(p.streams.map((x) => x.codec_type));
    if (!kinds.has('video') || !kinds.has('audio')) throw new Error(`${what}: ${f} lacks a track (${[...kinds].join(',')})`);
    total += Number(p.format.duration);
  }
  const published = (pub.stoppedAt - pub.startedAt) / 1000;
  if (total > published + 1 || (strict && total < published - LENGTH_SLACK_S)) throw new Error(`${what}: ${total.toFixed(2)} s recorded for ${published.toFixed(2)} s published (slack ${LENGTH_SLACK_S} s)`);
  return { files: files.length, short: published - total };
}

/** Checks every stream; "8/8 streams, 32 files, ≤ 1.2 s short". */
async function checkAll(n: number, what: (i: number) => string, files: (i: number) => string[], pubs: Pub[], strict: boolean): Promise<string> {
  let count = 0;
  let short = 0;
  for (let i = 0; i < n; i++) {
    const r = await checkStream(what(i), files(i), pubs[i] as Pub, strict);
    count += r.files;
    short = Math.max(short, r.short);
  }
  return `${n}/${n} streams, ${count} files, ≤ ${short.toFixed(1)} s short`;
}

function filesUnder(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(e.name)) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

function treeRssMb(root: number): number {
  let kb = 0;
  for (const p of [root, ...descendantPids(root)]) kb += procStat(p)?.rssKb ?? 0;
  return kb / 1024;
}

async function benchEdgerec(n: number, clip: string): Promise<Result> {
  const extra = (process.env.RTMP_BENCH_CONF ?? '').split('\\n').join('\n');
  const prof = process.env.RTMP_BENCH_PROF_DIR;
  const s = await startService({
    // every publisher comes from 127.0.0.1 at once: the per-address cap on connections not yet publishing (8) would
    // displace some of them
    conf: `log_level=info\nrecord_rotation=10\nrtmp_max_pending_per_ip=64\nstream_record_policy_template={streamName}-{startTimeMillis}\n${extra}\n`,
    env: { EDGEREC_LOG_LEVEL: 'info' },
    nodeArgs: [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...(process.env.RTMP_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)],
  });
  const pubs: Pub[] = [];
  try {
    const port = await rtmpPort(s);
    await new Promise((r) => setTimeout(r, 3000));
    const idleMb = treeRssMb(s.proc.pid);
    const idleRootMb = (procStat(s.proc.pid)?.rssKb ?? 0) / 1024;
    pubs.push(...publishers(n, clip, (i) => `rtmp://127.0.0.1:${port}/live/bench_${i}`));
    await waitFor(
      `${n} recordings running`,
      async () => {
        const r = await s.post('/rest-api/recorder/find_all');
        return r.status === 200 && Array.isArray(r.body) && r.body.length === n;
      },
      60_000,
      200,
    ).catch(async (err: unknown) => {
      const rec = (await s.post('/rest-api/recorder/find_all')).body;
      const streams = (await s.post('/rest-api/stream/find_all')).body;
      const logs = s.logs().filter((l) => Number(l.level) >= 40).slice(-10);
      throw new Error(`${String(err)}: recording ${Array.isArray(rec) ? rec.length : '?'}, streams ${JSON.stringify(streams).slice(0, 600)}, warnings ${JSON.stringify(logs).slice(0, 1500)}`);
    });
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const gcs = (): { mc: number; sc: number } => ({ mc: s.proc.output().split('Mark-Compact').length, sc: s.proc.output().split('Scavenge').length });
    const [gc0, main0] = [gcs(), procStat(s.proc.pid, s.proc.pid)?.ticks ?? 0];
    const m = await treeCpu(s.proc.pid, WINDOW_S);
    const [gc1, main1] = [gcs(), procStat(s.proc.pid, s.proc.pid)?.ticks ?? 0];
    const mainPct = ((main1 - main0) / CLK_TCK / WINDOW_S / n) * 100;
    console.log(
      `edgerec N=${n}: service main thread ${mainPct.toFixed(2)} %, its other threads ${(((m.rootCpuS / WINDOW_S / n) * 100) - mainPct).toFixed(2)} % of a core per stream` +
        (gc1.sc > 1 || gc1.mc > 1 ? `; GC in the window: ${gc1.mc - gc0.mc} mark-compacts, ${gc1.sc - gc0.sc} scavenges; the last: ${s.proc.output().split('\n').filter((l) => l.includes('Mark-Compact')).pop() ?? ''}` : ''),
    );
    const running = (await s.post('/rest-api/recorder/find_all')).body;
    if (!Array.isArray(running) || running.length !== n) throw new Error(`edgerec: ${n} recordings expected after the window, got ${JSON.stringify(running)}`);
    await stopPublishers(pubs);
    await waitFor(
      'every recording finalized',
      async () => {
        const r = await s.json('/rest-api/recordings?state=recording&limit=1');
        const f = await s.json('/rest-api/recordings?state=finalizing&limit=1');
        return (r.body as { recordings: unknown[] }).recordings.length === 0 && (f.body as { recordings: unknown[] }).recordings.length === 0;
      },
      60_000,
      200,
    );
    const check = await checkAll(n, (i) => `edgerec bench_${i}`, (i) => filesUnder(s.recordDir, new RegExp(`^bench_${i}-\\d+(_\\d+)?\\.mp4$`)), pubs, true);
    return { perStream: (m.cpuS / WINDOW_S / n) * 100, rootPerStream: (m.rootCpuS / WINDOW_S / n) * 100, rssPerStream: (m.rssMb - idleMb) / n, rootRssPerStream: (m.rootRssMb - idleRootMb) / n, rssMb: m.rssMb, pids: m.pids, check };
  } finally {
    await stopPublishers(pubs);
    await s.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

/** One `ffmpeg -listen 1 -i rtmp://… -c copy -f segment -segment_time 10 … %03d.mp4` per stream, under one sh parent. */
async function benchFfmpeg(n: number, clip: string): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-fflisten-'));
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  // one parent process so the tree is measured like the others' (sh waits for its ffmpeg children)
  const script = ports
    .map((p, i) => {
      mkdirSync(join(dir, `s${i}`));
      return `ffmpeg -hide_banner -loglevel error -listen 1 -i rtmp://127.0.0.1:${p}/live/s -c copy -f segment -segment_time 10 -reset_timestamps 1 -segment_format mp4 ${join(dir, `s${i}`, '%03d.mp4')} &`;
    })
    .join('\n');
  const sh = start('/bin/sh', ['-c', `${script}\nwait`]);
  const pubs: Pub[] = [];
  try {
    await waitFor(`${n} ffmpeg listeners`, () => descendantPids(sh.pid).length >= n, 10_000, 50);
    await new Promise((r) => setTimeout(r, 500));
    pubs.push(...publishers(n, clip, (i) => `rtmp://127.0.0.1:${ports[i]}/live/s`));
    await waitFor(`${n} ffmpeg recordings`, () => filesUnder(dir, /\.mp4$/).length >= n, 60_000, 200);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const m = await treeCpu(sh.pid, WINDOW_S);
    if (descendantPids(sh.pid).length < n) throw new Error('ffmpeg: a listener exited during the window');
    await stopPublishers(pubs);
    await waitFor('every ffmpeg listener done', () => descendantPids(sh.pid).length === 0, 30_000, 100);
    const check = await checkAll(n, (i) => `ffmpeg s${i}`, (i) => filesUnder(join(dir, `s${i}`), /\.mp4$/), pubs, false);
    return { perStream: (m.cpuS / WINDOW_S / n) * 100, rootPerStream: 0, rssPerStream: m.rssMb / n, rssMb: m.rssMb, pids: m.pids, check };
  } finally {
    await stopPublishers(pubs);
    await sh.stop('SIGTERM');
    for (const p of descendantPids(sh.pid)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
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
  const pubs: Pub[] = [];
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
    await stopPublishers(pubs);
    await new Promise((r) => setTimeout(r, 1000));
    const check = await checkAll(n, (i) => `nginx bench_${i}`, (i) => filesUnder(rec, new RegExp(`^bench_${i}-.*\\.flv$`)), pubs, false);
    return { perStream: (m.cpuS / WINDOW_S / n) * 100, rootPerStream: (m.rootCpuS / WINDOW_S / n) * 100, rssPerStream: m.rssMb / n, rssMb: m.rssMb, pids: m.pids, check };
  } finally {
    await stopPublishers(pubs);
    await ngx.stop('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (r: Result | undefined) => (r ? `${r.perStream.toFixed(2)} %` : '–');

async function main(): Promise<void> {
  if (LEGS.includes('nginx') && !existsSync(NGINX_MODULE)) throw new Error(`${NGINX_MODULE} is missing: apt-get install libnginx-mod-rtmp`);
  const clip = await benchClip();
  const p = await probe(clip);
  const mbit = (Number(p.format.size) * 8) / Number(p.format.duration) / 1e6;
  console.log(`clip ${SIZE}, ${Number(p.format.duration).toFixed(1)} s, ${mbit.toFixed(2)} Mbit/s; window ${WINDOW_S} s, N = ${NS.join(', ')}; legs ${LEGS.join(', ')}`);
  const rows: string[] = [];
  for (const n of NS) {
    const e = LEGS.includes('edgerec') ? await benchEdgerec(n, clip) : undefined;
    const f = LEGS.includes('ffmpeg') ? await benchFfmpeg(n, clip) : undefined;
    const x = LEGS.includes('nginx') ? await benchNginx(n, clip) : undefined;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const ratio = (a: Result | undefined, b: Result | undefined) => (a && b ? `${(a.perStream / b.perStream).toFixed(2)}×` : '–');
    const row =
      `| ${n} | ${fmt(e)}${e ? ` (Node ${e.rootPerStream.toFixed(2)}, hosts ${(e.perStream - e.rootPerStream).toFixed(2)})` : ''} | ${fmt(f)} | ${fmt(x)} | ${ratio(e, f)} | ${ratio(e, x)} ` +
      `| ${e ? `${e.rssPerStream.toFixed(1)} MB (Node ${(e.rootRssPerStream ?? 0).toFixed(1)}; tree ${e.rssMb.toFixed(0)})` : '–'} | ${f ? f.rssPerStream.toFixed(1) : '–'} MB | ${x ? x.rssPerStream.toFixed(1) : '–'} MB ` +
      `| ${[e, f, x].map((r) => r?.check ?? '–').join(' · ')} | ${load} |`;
    console.log(row);
    rows.push(row);
  }
  console.log('\n| N | edgerec CPU/stream | ffmpeg-listen | nginx-rtmp | edgerec/ffmpeg | edgerec/nginx | edgerec RSS/stream beyond idle | ffmpeg RSS/stream | nginx RSS/stream | checks (edgerec · ffmpeg · nginx) | load avg |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
