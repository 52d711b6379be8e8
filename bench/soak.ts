/**
 * Soak: the real service records N cameras from the loopback RTSP test server (320x180 25 fps H.264 + AAC,
 * looping) with rotation for a while; every minute it prints the service tree's RSS, CPU, open fds and threads,
 * the index rows by state and the temp files; at the end it stops the service (SIGTERM) and checks every
 * fragment with ffprobe (and continuity per camera).
 * Run: node dist/bench/soak.js [--cameras 8] [--minutes 60] [--rotation 10] [--hosts 2]
 * (env SOAK_RTSP_CLIENT=gstreamer: the cameras pulled by rtspsrc instead of edgerec's client)
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { probe } from '../tests/helpers/media';
import { startRtspServer } from '../tests/helpers/rtsp-server';
import { type Service, descendantPids, startService } from '../tests/helpers/service';

interface Args {
  cameras: number;
  minutes: number;
  rotation: number;
  hosts: number;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { cameras: 8, minutes: 60, rotation: 10, hosts: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = (argv[i] ?? '').replace(/^--/, '');
    const val = Number(argv[i + 1]);
    if (!(key in out) || !Number.isFinite(val) || val <= 0) throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}: use --cameras N --minutes M --rotation S --hosts H`);
    out[key as keyof Args] = val;
  }
  return out;
}

/** USER_HZ: clock ticks per second in /proc/<pid>/stat on Linux. */
const TICK = 100;

interface Sample {
  rssMb: number;
  fds: number;
  threads: number;
  cpuTicks: number;
  procs: number;
}

/** RSS, fds, threads and CPU ticks (own + reaped children) summed over the service and its descendants. */
function sampleTree(pid: number): Sample {
  const s: Sample = { rssMb: 0, fds: 0, threads: 0, cpuTicks: 0, procs: 0 };
  for (const p of [pid, ...descendantPids(pid)]) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      s.rssMb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      s.threads += Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0);
      s.fds += readdirSync(`/proc/${p}/fd`).length;
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime stime cutime cstime: fields 14-17, i.e. 11-14 after the state field
      s.cpuTicks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      s.procs++;
    } catch {
      /* exited meanwhile */
    }
  }
  return s;
}

interface HostMem {
  rss: number;
  heapTotal?: number;
  external?: number;
}

async function health(s: Service): Promise<{ rows: Record<string, number>; hosts: HostMem[] }> {
  const h = (await s.json('/rest-api/health')).body as { recordings?: Record<string, number>; mediaHosts?: HostMem[] };
  return { rows: h.recordings ?? {}, hosts: h.mediaHosts ?? [] };
}

/** Each media host's RSS split: V8 heap (reserved) + Buffers + the rest (native: GStreamer, glibc), in MB. */
function hostSplit(hosts: HostMem[]): string {
  const mb = (b: number) => (b / 1048576).toFixed(1);
  return hosts.map((x) => `${mb(x.rss)}=${mb(x.heapTotal ?? 0)}+${mb(x.external ?? 0)}+${mb(x.rss - (x.heapTotal ?? 0) - (x.external ?? 0))}`).join(' ');
}

function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.floor(a.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  console.log(`soak: ${a.cameras} cameras, ${a.minutes} min, rotation ${a.rotation} s, ${a.hosts} media hosts, rtsp_client=${process.env.SOAK_RTSP_CLIENT ?? 'default'}`);
  // the server's safety bound outlasts the soak (its default, 15 min, once ended a 60 min soak at minute 15)
  const rtsp = await startRtspServer({ maxSeconds: a.minutes * 60 + 600 });
  const cams = Array.from({ length: a.cameras }, (_, i) => `camera.cam${i + 1}.url=${rtsp.url('h264aac')}`).join('\n');
  const s = await startService({
    conf:
      `${cams}\nrecord_rotation=${a.rotation}\nstream_record_policy_template={streamName}-{startTimeMillis}\nmedia_host_count=${a.hosts}\nlog_level=info\n` +
      (process.env.SOAK_RTSP_CLIENT ? `rtsp_client=${process.env.SOAK_RTSP_CLIENT}\n` : ''),
    env: { EDGEREC_LOG_LEVEL: 'info' },
  });
  const t0 = Date.now();
  let prev = { at: t0, ticks: sampleTree(s.proc.pid).cpuTicks };
  console.log('min | RSS MB (tree) | CPU % of one core | fds | threads | procs | rows by state | tmp files | each host: RSS = V8 heap + Buffers + native (MB)');
  try {
    for (let m = 1; m <= a.minutes; m++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + m * 60_000 - Date.now())));
      const x = sampleTree(s.proc.pid);
      const now = Date.now();
      const cpu = ((x.cpuTicks - prev.ticks) / TICK / ((now - prev.at) / 1000)) * 100;
      prev = { at: now, ticks: x.cpuTicks };
      const { rows, hosts } = await health(s);
      const states = Object.entries(rows)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      console.log(`${m} | ${x.rssMb.toFixed(1)} | ${cpu.toFixed(1)} | ${x.fds} | ${x.threads} | ${x.procs} | ${states} | ${readdirSync(s.tmpDir).length} | ${hostSplit(hosts)}`);
    }
  } finally {
    const stopAt = Date.now();
    await s.stop();
    console.log(`graceful stop took ${((Date.now() - stopAt) / 1000).toFixed(1)} s`);
    await rtsp.stop();
  }

  // Every fragment: ffprobe without errors, h264 + aac; durations; continuity per camera.
  const files = readdirSync(s.recordDir).filter((f) => f.endsWith('.mp4'));
  const bad: string[] = [];
  const durations: number[] = [];
  const byCam = new Map<string, { start: number; dur: number }[]>();
  for (const f of files) {
    try {
      const p = await probe(join(s.recordDir, f));
      const codecs = p.streams.map((x) => x.codec_name).sort().join('+');
      if (codecs !== 'aac+h264') throw new Error(`codecs ${codecs}`);
      const d = Number(p.format.duration);
      durations.push(d);
      const m = /^(cam\d+)-(\d+)_\d+\.mp4$/.exec(f);
      if (m?.[1]) byCam.set(m[1], [...(byCam.get(m[1]) ?? []), { start: Number(m[2]), dur: d }]);
    } catch (err) {
      bad.push(`${f}: ${String(err).slice(0, 200)}`);
    }
  }
  let maxGapMs = 0;
  for (const list of byCam.values()) {
    list.sort((x, y) => x.start - y.start);
    for (let i = 1; i < list.length; i++) {
      const p = list[i - 1];
      const c = list[i];
      if (p && c) maxGapMs = Math.max(maxGapMs, Math.abs(c.start - (p.start + p.dur * 1000)));
    }
  }
  const tmpLeft = readdirSync(s.tmpDir).length;
  console.log(`fragments: ${files.length}, ffprobe errors: ${bad.length}, cameras with files: ${byCam.size}/${a.cameras}`);
  console.log(`durations s: min ${Math.min(...durations).toFixed(2)} median ${median(durations).toFixed(2)} max ${Math.max(...durations).toFixed(2)}`);
  console.log(`largest gap or overlap between consecutive fragments of a camera (name start vs previous start + duration): ${maxGapMs} ms`);
  console.log(`rows after stop: ${JSON.stringify(await rowsAfter(s))}; temp files left: ${tmpLeft}`);
  for (const b of bad.slice(0, 20)) console.log(`  BAD ${b}`);
  rmSync(s.dir, { recursive: true, force: true });
  if (bad.length > 0 || tmpLeft > 0) process.exitCode = 1;
}

/** Rows by state from the index file once the service has stopped. */
async function rowsAfter(s: Service): Promise<Record<string, number>> {
  const { openDb, closeDb } = await import('../src/store/db');
  const { RecordingsStore } = await import('../src/store/recordings');
  const db = openDb(join(s.dir, 'edgerec.db'));
  try {
    return new RecordingsStore(db).countByState();
  } finally {
    closeDb(db);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
