/**
 * Service → media host channel options, measured alone (no RTMP, no GStreamer): the service side produces what N
 * RTMP publishers produce (one fresh FLV-tag-sized Buffer per tag, 25 video + 43 audio tags/s per stream at
 * ~4.3 Mbit/s), batches them per 10 ms as MediaHost does, and hands them to a forked child, which rebuilds each
 * batch item as one buffer (what it pushes into appsrc). CPU (process.cpuUsage) of both sides over the window.
 *   ipc:  child.send({t:'push-many', items}) with serialization 'advanced' (today's channel)
 *   pipe: an extra stdio pipe, length-prefixed frames written with cork/uncork (writev), read as a byte stream
 *   none: the tags are dropped in the service (the floor: what handing the socket to the host saves at most)
 * Usage: node dist/bench/rtmp-channel-bench.js [streams=8] [seconds=10] [modes=none,ipc,pipe]
 */
import { fork } from 'node:child_process';
import { Socket } from 'node:net';
import { FrameReader, encodePushFrame } from '../src/pipeline/host-channel';

const STREAMS = Number(process.argv[2] ?? 8);
const SECONDS = Number(process.argv[3] ?? 10);
const MODES = (process.argv[4] ?? 'none,ipc,pipe').split(',');
const VIDEO_TAG = Math.round((4.0e6 / 8) / 25); // ~20 KB
const AUDIO_TAG = Math.round((128e3 / 8) / 43); // ~370 B

interface Item {
  id: string;
  src: string;
  chunks: Uint8Array[];
}

function child(mode: string): void {
  let bytes = 0;
  let items = 0;
  const take = (item: { chunks: Uint8Array[] }) => {
    const b = item.chunks.length === 1 ? (item.chunks[0] as Uint8Array) : Buffer.concat(item.chunks);
    bytes += b.byteLength;
    items++;
  };
  if (mode === 'ipc') process.on('message', (m: { t: string; items?: Item[] }) => m.items?.forEach(take));
  if (mode === 'pipe') {
    const reader = new FrameReader();
    const s = new Socket({ fd: 4, readable: true, writable: false });
    s.on('data', (d: Buffer) => {
      for (const f of reader.push(d)) if (f.kind === 'push') take({ chunks: [f.data] });
    });
  }
  process.on('message', (m: { t: string }) => {
    if (m.t === 'done') process.send?.({ t: 'cpu', cpu: process.cpuUsage(), bytes, items }, () => process.exit(0));
  });
}

async function parent(mode: string): Promise<void> {
  const c = fork(__filename, ['child', mode], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] });
  const pipe = c.stdio[4] as Socket;
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  let tick = 0;
  let sent = 0;
  const batch = new Map<string, Item>();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      tick++;
      for (let s = 0; s < STREAMS; s++) {
        const id = `pipeline-${s}`;
        const add = (size: number) => {
          const tag = Buffer.allocUnsafe(size); // the one copy per tag the RTMP ingest makes
          tag[0] = 9;
          sent += size;
          if (mode === 'none') return;
          const it = batch.get(id);
          if (it) it.chunks.push(tag);
          else batch.set(id, { id, src: 'src', chunks: [tag] });
        };
        if (tick % 4 === s % 4) add(VIDEO_TAG);
        if ((tick * 43) % 100 < 43) add(AUDIO_TAG);
      }
      if (mode === 'ipc' && batch.size) c.send({ t: 'push-many', items: [...batch.values()] });
      if (mode === 'pipe' && batch.size) {
        pipe.cork();
        for (const it of batch.values()) for (const b of encodePushFrame(it.id, it.src, it.chunks)) pipe.write(b);
        pipe.uncork();
      }
      batch.clear();
      if (Date.now() - t0 >= SECONDS * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  const mine = process.cpuUsage(cpu0);
  const theirs = await new Promise<{ cpu: NodeJS.CpuUsage; bytes: number; items: number }>((resolve) => {
    c.on('message', (m: { t: string; cpu: NodeJS.CpuUsage; bytes: number; items: number }) => m.t === 'cpu' && resolve(m));
    setTimeout(() => c.send({ t: 'done' }), 300);
  });
  const wall = (Date.now() - t0) / 1000;
  const pct = (u: NodeJS.CpuUsage) => ((u.user + u.system) / 1e6 / wall) * 100;
  console.log(
    `| ${mode} | ${STREAMS} | ${((sent * 8) / wall / 1e6).toFixed(1)} | ${pct(mine).toFixed(2)} | ${pct(theirs.cpu).toFixed(2)} | ${((pct(mine) + pct(theirs.cpu)) / STREAMS).toFixed(3)} | ${(theirs.bytes / 1e6).toFixed(1)} |`,
  );
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child(process.argv[3] ?? 'ipc');
  console.log('| channel | streams | Mbit/s | service % core | host % core | both, % core per stream | MB received |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const m of MODES) await parent(m);
}

void main();
