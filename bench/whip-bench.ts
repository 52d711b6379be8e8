/**
 * WebRTC (WHIP) recording cost: N = 0 (idle service), 1, 4, 8 werift publishers on 127.0.0.1 publishing to the real service with
 * ?record=true, fed by ONE shared ffmpeg RTP source per run (testsrc2 640x360 25 fps at ~1 Mbit/s, VP8 or H.264,
 * + Opus 48 kbit/s). CPU from /proc/<pid>/stat utime+stime over a 30 s window: the service tree (service PID +
 * descendants: media hosts), the publishers (this process: werift, SRTP, DTLS) and ffmpeg, each reported apart.
 * Run: npx tsc -p tsconfig.json && node dist/bench/whip-bench.js [seconds] [codecs e.g. vp8,h264] [Ns e.g. 1,4,8]
 */
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { start, waitFor } from '../tests/helpers/proc';
import { startService, type Service } from '../tests/helpers/service';
import { publishWhip, type RtpSource, type WhipPublisher } from '../tests/helpers/whip-client';

const WINDOW_S = Number(process.argv[2] ?? 30);
const CODECS = (process.argv[3] ?? 'vp8,h264').split(',') as ('vp8' | 'h264')[];
const NS = (process.argv[4] ?? '0,1,4,8').split(',').map(Number);
const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime+stime ticks of a process, null when gone. */
function ticks(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

/** RSS in MB of a process (0 when gone). */
function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** A process and all its descendants. */
function tree(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(e)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const todo = [root];
  for (let i = 0; i < 10_000 && todo.length > 0; i++) {
    const p = todo.pop() as number;
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** Sum of ticks per pid, to diff over a window (processes born in the window count from 0). */
function sample(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of pids) {
    const t = ticks(p);
    if (t !== null) m.set(p, t);
  }
  return m;
}

function pctOfCore(before: Map<number, number>, after: Map<number, number>, seconds: number): number {
  let d = 0;
  for (const [p, t] of after) d += t - (before.get(p) ?? 0);
  return (100 * d) / HZ / seconds;
}

/** ffmpeg: testsrc2 + sine → VP8 or H.264 (~1 Mbit/s, 1 s GOP) + Opus, RTP to UDP sockets on 127.0.0.1, fanned out. */
async function startSource(codec: 'vp8' | 'h264'): Promise<RtpSource & { bytes: () => number }> {
  const subs = new Set<(kind: 'video' | 'audio', packet: Buffer) => void>();
  const counts = { video: 0, audio: 0 };
  let bytes = 0;
  const sockets: Socket[] = [];
  const listen = async (kind: 'video' | 'audio') => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.on('message', (m) => {
      counts[kind]++;
      bytes += m.length;
      for (const cb of subs) cb(kind, m);
    });
    sockets.push(s);
    return s.address().port;
  };
  const vport = await listen('video');
  const aport = await listen('audio');
  const enc =
    codec === 'vp8'
      ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-minrate', '1M', '-maxrate', '1M']
      : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-bf', '0', '-b:v', '1M', '-maxrate', '1M', '-bufsize', '1M'];
  const proc = start('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-map', '0:v', ...enc, '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-payload_type', '96', '-f', 'rtp', `rtp://127.0.0.1:${vport}?pkt_size=1200`,
    '-map', '1:a', '-c:a', 'libopus', '-ar', '48000', '-ac', '2', '-b:a', '48k', '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${aport}?pkt_size=1200`,
  ]);
  return {
    video: codec,
    audio: true,
    proc,
    counts,
    bytes: () => bytes,
    subscribe(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    async stop() {
      subs.clear();
      await proc.stop('SIGKILL');
      for (const s of sockets) s.close();
    },
  };
}

interface Row {
  codec: string;
  n: number;
  kbps: number;
  service: number;
  main: number;
  perPublisher: number;
  publishers: number;
  ffmpeg: number;
  rss: number;
}

async function runOne(codec: 'vp8' | 'h264', n: number): Promise<Row> {
  const s: Service = await startService({ conf: 'record_webrtc_streams=true\nlog_level=info\n', env: { EDGEREC_LOG_LEVEL: 'info' } });
  const source = await startSource(codec);
  const pubs: WhipPublisher[] = [];
  try {
    for (let i = 0; i < n; i++) {
      pubs.push(
        await publishWhip({
          video: codec,
          audio: true,
          source,
          offerTo: async (sdp) => {
            const r = await fetch(`${s.base}/whip/bench-${codec}-${i}?record=true`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: sdp });
            const text = await r.text();
            if (r.status !== 201) throw new Error(`WHIP ${r.status}: ${text}`);
            return text;
          },
        }),
      );
    }
    await waitFor(`${n} recordings open`, async () => {
      const r = await s.json('/rest-api/recordings?limit=100');
      return r.status === 200 && (r.body as { recordings: unknown[] }).recordings.length >= n;
    }, 30_000, 250);
    await new Promise((r) => setTimeout(r, 3000));
    const svc0 = sample(tree(s.proc.pid));
    const ff0 = ticks(source.proc.pid) ?? 0;
    const me0 = process.cpuUsage();
    const b0 = source.bytes();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const secs = (Date.now() - t0) / 1000;
    const svc1 = sample(tree(s.proc.pid));
    const me = process.cpuUsage(me0);
    const service = pctOfCore(svc0, svc1, secs);
    const mainPid = s.proc.pid;
    const main = pctOfCore(new Map([[mainPid, svc0.get(mainPid) ?? 0]]), new Map([[mainPid, svc1.get(mainPid) ?? 0]]), secs);
    const rss = [...svc1.keys()].reduce((a, p) => a + rssMb(p), 0);
    return {
      codec,
      n,
      kbps: ((source.bytes() - b0) * 8) / secs / 1000,
      service,
      main,
      perPublisher: service / n,
      publishers: ((me.user + me.system) / 1e6 / secs) * 100,
      ffmpeg: ((((ticks(source.proc.pid) ?? 0) - ff0) / HZ) / secs) * 100,
      rss,
    };
  } finally {
    for (const p of pubs) await p.close();
    await source.stop();
    await s.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`window ${WINDOW_S} s, CLK_TCK ${HZ}, load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  console.log('| codec | N | source kbit/s (one stream) | service tree % of a core | of which the main process (werift) | per publisher | werift publishers (this process) | ffmpeg source | service tree RSS MB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const codec of CODECS) {
    for (const n of NS) {
      const r = await runOne(codec, n);
      console.log(`| ${r.codec} | ${r.n} | ${r.kbps.toFixed(0)} | ${r.service.toFixed(1)} | ${r.main.toFixed(1)} | ${r.n > 0 ? r.perPublisher.toFixed(2) : '-'} | ${r.publishers.toFixed(1)} | ${r.ffmpeg.toFixed(1)} | ${r.rss.toFixed(0)} |`);
    }
  }
  console.log(`load after: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
