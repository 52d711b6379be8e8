/**
 * Playback under load must not starve recordings: P RTMP publishers recording (one `ffmpeg -re -stream_loop -1
 * -c copy` each, 320x180 H.264 + AAC, rotation 10 s), then C concurrent clients asking /rest-api/playback for the
 * last 20 s of a random publisher (the running file included), mp4 and fmp4 in turn, for D seconds. Afterwards every
 * publisher's files must together last as long as it published (±1 s), as in rest-bench.
 * Usage: npx tsc && node dist/bench/playback-load-bench.js [publishers] [clients] [seconds]
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClip, probe } from '../tests/helpers/media';
import { type Proc, start, waitFor } from '../tests/helpers/proc';
import { type Service, startService } from '../tests/helpers/service';

const PUBLISHERS = Number(process.argv[2] ?? 8);
const CLIENTS = Number(process.argv[3] ?? 16);
const SECONDS = Number(process.argv[4] ?? 30);

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function publishedSeconds(progressFile: string): number {
  const all = [...readFileSync(progressFile, 'utf8').matchAll(/out_time_us=(\d+)/g)];
  const last = all[all.length - 1];
  return last ? Number(last[1]) / 1e6 : 0;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-pbload-'));
  const pubs: Array<{ name: string; proc: Proc; progress: string }> = [];
  let s: Service | null = null;
  try {
    const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '320x180' });
    s = await startService({ dir, conf: 'record_rotation=10\nrecord_min_free_percent=0\n', env: { EDGEREC_LOG_LEVEL: 'info' } });
    const svc = s;
    const rtmp = await waitFor('rtmp port', () => svc.logs().find((l) => l.msg === 'rtmp listening')?.rtmpPort as number | undefined, 10_000, 50);
    for (let i = 0; i < PUBLISHERS; i++) {
      const name = `load_${String(i).padStart(2, '0')}`;
      const progress = join(dir, `${name}.progress`);
      pubs.push({ name, progress, proc: start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-progress', progress, '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${rtmp}/live/${name}`]) });
    }
    await waitFor(`${PUBLISHERS} recordings running`, async () => {
      const r = await svc.post('/rest-api/recorder/find_all');
      return r.status === 200 && Array.isArray(r.body) && r.body.length === PUBLISHERS;
    }, 30_000, 200);
    await new Promise((r) => setTimeout(r, 22_000)); // two rotations: finished files and a running one

    const firstByte: number[] = [];
    const total: number[] = [];
    let requests = 0;
    let bytes = 0;
    let failures = 0;
    const errors = new Set<string>();
    const cpu0 = cpuSeconds(svc.proc.pid);
    const t0 = Date.now();
    const deadline = t0 + SECONDS * 1000;
    const client = async (k: number) => {
      for (let i = 0; Date.now() < deadline && i < 100_000; i++) {
        const p = pubs[(k + i) % pubs.length];
        const now = Date.now();
        const format = (k + i) % 2 === 0 ? 'fmp4' : 'mp4';
        const started = performance.now();
        try {
          const r = await fetch(`${svc.base}/rest-api/playback?stream=${p?.name}&from=${now - 20_000}&to=${now}&format=${format}`);
          if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
          const reader = (r.body as ReadableStream<Uint8Array>).getReader();
          let first = true;
          for (let n = 0; n < 1_000_000; n++) {
            const { done, value } = await reader.read();
            if (done) break;
            if (first) firstByte.push(performance.now() - started);
            first = false;
            bytes += value.length;
          }
          total.push(performance.now() - started);
          requests++;
        } catch (err) {
          failures++;
          errors.add(String(err).slice(0, 200));
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSeconds(svc.proc.pid) - cpu0;

    await Promise.all(pubs.map((p) => p.proc.stop('SIGINT', 5000)));
    await waitFor('every recording finalized', async () => {
      const a = await svc.json('/rest-api/recordings?state=recording&limit=1');
      const b = await svc.json('/rest-api/recordings?state=finalizing&limit=1');
      return (a.body as { recordings: unknown[] }).recordings.length === 0 && (b.body as { recordings: unknown[] }).recordings.length === 0;
    }, 60_000, 250);
    const checks: Array<{ name: string; published: number; recorded: number; files: number; ok: boolean }> = [];
    for (const p of pubs) {
      const rows = (await svc.json(`/rest-api/recordings?stream=${p.name}&limit=1000`)).body as { recordings: { fileName: string; state: string }[] };
      let recorded = 0;
      for (const r of rows.recordings) recorded += Number((await probe(join(svc.recordDir, r.fileName))).format.duration ?? 0);
      const published = publishedSeconds(p.progress);
      const bad = rows.recordings.filter((r) => r.state !== 'complete').length;
      checks.push({ name: p.name, published, recorded, files: rows.recordings.length, ok: bad === 0 && Math.abs(recorded - published) <= 1 });
    }
    console.log(`playback load: ${PUBLISHERS} RTMP publishers recording, ${CLIENTS} clients asking for their last 20 s (running file included) for ${SECONDS} s`);
    console.log(`${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
    console.log(`answers ${requests} (${(requests / wall).toFixed(1)}/s), failed ${failures}, ${(bytes / wall / 1e6).toFixed(1)} MB/s; first byte p50 ${pct(firstByte, 50).toFixed(1)} ms p99 ${pct(firstByte, 99).toFixed(1)} ms; whole answer p50 ${pct(total, 50).toFixed(1)} ms p99 ${pct(total, 99).toFixed(1)} ms; service CPU ${((cpu / wall) * 100).toFixed(1)} %`);
    if (errors.size) console.log('errors:', [...errors].join(' | '));
    console.log('| publisher | published s | recorded s | files | within ±1 s |');
    console.log('|---|---:|---:|---:|---|');
    for (const c of checks) console.log(`| ${c.name} | ${c.published.toFixed(2)} | ${c.recorded.toFixed(2)} | ${c.files} | ${c.ok ? 'yes' : 'NO'} |`);
    const bad = checks.filter((c) => !c.ok);
    console.log(bad.length === 0 ? 'no recording lost frames' : `LOST FRAMES in ${bad.map((c) => c.name).join(', ')}`);
    if (bad.length || failures) process.exitCode = 1;
  } finally {
    await Promise.all(pubs.map((p) => p.proc.stop('SIGKILL')));
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
