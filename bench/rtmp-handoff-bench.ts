/**
 * Where to parse RTMP, measured with real publishers (issue 15, option (b)): N `ffmpeg -re -stream_loop -1 -c copy -f
 * flv` publishers of the rtmp-bench clip (720p25 ~4.3 Mbit/s H.264 + AAC) into a service process and one forked
 * media-host process, which pushes each stream's tags into its own `appsrc ! fakesink` (gstreamer-superficial, the
 * binding the host uses; no demux/mux: that part is the same in both modes and only adds noise).
 *   pipe:    today's shape: the service parses RTMP (the product RtmpIngest, onTag), batches each stream's tag
 *            buffers for 20 ms and writes them to the host as length-prefixed frames on a raw pipe (host-channel.ts,
 *            cork/uncork = one writev); the host reads frames (FrameReader) and pushes each into its appsrc.
 *   handoff: the service accepts the TCP connection (paused, nothing read) and hands it to the host with
 *            `child.send(msg, socket)`; the host runs the product RtmpIngest on it (`accept()`), batches each
 *            stream's tags for 20 ms and pushes them (one Buffer.concat per batch, as the host does with a batch).
 * CPU: utime+stime of the service and the host (/proc) over the window after a warm-up, % of one core per stream.
 * Usage: node dist/bench/rtmp-handoff-bench.js [N=8] [window s=30] [modes=pipe,handoff,pipe,handoff]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Pipeline, type AppSrc } from 'gstreamer-superficial';
import { RtmpIngest, type RtmpPublish } from '../src/ingest/rtmp/ingest';
import { FrameReader, encodePushFrame } from '../src/pipeline/host-channel';
import { start, type Proc, waitFor } from '../tests/helpers/proc';
import { benchClip } from './rtmp-clip';

const N = Number(process.argv[2] ?? 8);
const WINDOW_S = Number(process.argv[3] ?? 30);
const MODES = (process.argv[4] ?? 'pipe,handoff,pipe,handoff').split(',');
const BATCH_MS = 20;
const WARMUP_MS = 5000;
const CLK_TCK = 100;

const quiet = pino({ level: 'warn' }, new Writable({ write: (_c, _e, cb) => cb() }));

/** utime+stime ticks and RSS kB of a process. */
function stat(pid: number): { ticks: number; rssKb: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(f[11]) + Number(f[12]), rssKb: Number(f[21]) * 4 };
}

/** Each stream's tag buffers, flushed every BATCH_MS to `flush` (what MediaHost does with pushBatchMs = 20). */
class Batcher {
  private readonly batches = new Map<string, Buffer[]>();
  private readonly timer: NodeJS.Timeout;
  constructor(flush: (batches: Map<string, Buffer[]>) => void) {
    this.timer = setInterval(() => {
      if (this.batches.size === 0) return;
      flush(this.batches);
      this.batches.clear();
    }, BATCH_MS);
  }
  add(id: string, b: Buffer): void {
    const l = this.batches.get(id);
    if (l) l.push(b);
    else this.batches.set(id, [b]);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** One `appsrc ! fakesink` per stream, made on first use; counts what was pushed. */
class Sinks {
  private readonly srcs = new Map<string, { p: Pipeline; src: AppSrc }>();
  bytes = 0;
  push(id: string, data: Buffer): void {
    let s = this.srcs.get(id);
    if (!s) {
      const p = new Pipeline('appsrc name=src caps=video/x-flv is-live=true ! fakesink sync=false');
      p.play();
      s = { p, src: p.findChild('src') as AppSrc };
      this.srcs.set(id, s);
    }
    s.src.push(data);
    this.bytes += data.length;
  }
}

/** Subscribes a publish's tags (and its FLV header) into the batcher. */
function feed(pub: RtmpPublish, batcher: Batcher): void {
  pub.onTag((t) => batcher.add(pub.name, t.bytes));
}

function child(mode: string): void {
  const sinks = new Sinks();
  const send = (m: object) => process.send?.(m);
  const ingest = new RtmpIngest({ port: 0, bind: '127.0.0.1', publishToken: () => '', log: quiet });
  process.on('message', (m: { t: string }, handle?: Socket) => {
    if (m.t === 'socket' && handle) ingest.accept(handle);
    if (m.t === 'stats') send({ t: 'stats', bytes: sinks.bytes });
  });
  if (mode === 'handoff') {
    const batcher = new Batcher((b) => {
      for (const [id, chunks] of b) sinks.push(id, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    ingest.on('publish', (pub) => {
      feed(pub, batcher);
      send({ t: 'publish', name: pub.name });
    });
    void ingest.start(); // routes node-media-server's logger; its own port stays unused
  } else {
    const reader = new FrameReader();
    const channel = new Socket({ fd: 4, readable: true, writable: false });
    channel.on('data', (d: Buffer) => {
      for (const f of reader.push(d)) if (f.kind === 'push') sinks.push(f.id, f.data);
    });
  }
  send({ t: 'ready' });
}

async function parent(mode: string, clip: string): Promise<{ service: number; host: number; mbit: number; rssMb: number }> {
  const c: ChildProcess = fork(__filename, ['child', mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] });
  const published = new Set<string>();
  let hostBytes = 0;
  let ready = false;
  c.on('message', (m: { t: string; name?: string; bytes?: number }) => {
    if (m.t === 'ready') ready = true;
    if (m.t === 'publish' && m.name) published.add(m.name);
    if (m.t === 'stats') hostBytes = m.bytes ?? 0;
  });
  await waitFor('host ready', () => ready, 10_000, 20);
  let port = 0;
  const close: (() => Promise<unknown> | void)[] = [];
  if (mode === 'pipe') {
    const pipe = c.stdio[4] as Socket;
    const batcher = new Batcher((b) => {
      pipe.cork();
      for (const [id, chunks] of b) for (const x of encodePushFrame(id, 'src', chunks)) pipe.write(x);
      pipe.uncork();
    });
    const ingest = new RtmpIngest({ port: 0, bind: '127.0.0.1', publishToken: () => '', log: quiet });
    ingest.on('publish', (pub) => {
      feed(pub, batcher);
      published.add(pub.name);
    });
    await ingest.start();
    port = ingest.port;
    close.push(() => batcher.stop(), () => ingest.close());
  } else {
    const server = createServer({ pauseOnConnect: true }, (s) => c.send({ t: 'socket' }, s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
    close.push(() => new Promise((r) => server.close(r)));
  }
  const pubs: Proc[] = [];
  try {
    for (let i = 0; i < N; i++) pubs.push(start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/s${i}`]));
    await waitFor(`${N} publishes`, () => published.size === N, 30_000, 50);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const pid = c.pid as number;
    const s0 = stat(process.pid);
    const h0 = stat(pid);
    c.send({ t: 'stats' });
    await new Promise((r) => setTimeout(r, 200));
    const b0 = hostBytes;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const s1 = stat(process.pid);
    const h1 = stat(pid);
    const wall = (Date.now() - t0) / 1000;
    c.send({ t: 'stats' });
    await new Promise((r) => setTimeout(r, 200));
    const pct = (a: number, b: number) => ((b - a) / CLK_TCK / wall / N) * 100;
    return { service: pct(s0.ticks, s1.ticks), host: pct(h0.ticks, h1.ticks), mbit: ((hostBytes - b0) * 8) / wall / 1e6 / N, rssMb: (s1.rssKb + h1.rssKb) / 1024 };
  } finally {
    await Promise.all(pubs.map((p) => p.stop('SIGKILL')));
    for (const f of close) await f();
    c.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child(process.argv[3] ?? 'pipe');
  const clip = await benchClip();
  console.log(`N = ${N}, window ${WINDOW_S} s, batches ${BATCH_MS} ms; % of one core per stream`);
  console.log('| mode | service | host | both | Mbit/s pushed per stream | RSS both (MB) | load 1 min |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const m of MODES) {
    const r = await parent(m, clip);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    console.log(`| ${m} | ${r.service.toFixed(2)} | ${r.host.toFixed(2)} | ${(r.service + r.host).toFixed(2)} | ${r.mbit.toFixed(2)} | ${r.rssMb.toFixed(0)} | ${load} |`);
  }
  process.exit(0);
}

void main();
