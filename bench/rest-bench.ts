/**
 * REST benchmark through the real service: 16 RTMP publishers recording (one `ffmpeg -re -stream_loop -1 -c copy`
 * process each, 320x180 H.264 + AAC), a few thousand synthetic rows in the index, then `wrk -t2 -c16 -d15s`
 * against POST /rest-api/recorder/find_all and GET /rest-api/recordings?limit=100. Afterwards every publisher's
 * files must together last as long as it published (±1 s): the API load must not cost the recordings frames.
 * Usage: npx tsc && node dist/bench/rest-bench.js [publishers] [wrkSeconds] [syntheticRows]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closeDb, openDb } from '../src/store/db';
import { type NewRecording, RecordingsStore } from '../src/store/recordings';
import { makeClip, probe } from '../tests/helpers/media';
import { type Proc, start, waitFor } from '../tests/helpers/proc';
import { type Service, startService } from '../tests/helpers/service';

const run = promisify(execFile);
const PUBLISHERS = Number(process.argv[2] ?? 16);
const WRK_SECONDS = Number(process.argv[3] ?? 15);
const SYNTHETIC_ROWS = Number(process.argv[4] ?? 5000);
const ROTATION_S = 10;

interface Publisher {
  readonly name: string;
  readonly proc: Proc;
  readonly progressFile: string;
}

interface WrkResult {
  readonly requestsPerSec: number;
  readonly p50: string;
  readonly p99: string;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: string;
  readonly serviceCpuPercent: number;
}

/** Synthetic finished files of 20 cameras, 10 s each, in the past: what a VMS pages through. */
function fillIndex(dbPath: string, recordDir: string, rows: number): void {
  const db = openDb(dbPath);
  const store = new RecordingsStore(db);
  const t0 = Date.now() - rows * 1000 - 3_600_000;
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      const cam = i % 20;
      const startMs = t0 + Math.floor(i / 20) * 10_000 + cam;
      const fileName = `synthetic_${cam}-${startMs}_${Math.floor(i / 20) + 1}.mp4`;
      const row: NewRecording = {
        fileName,
        path: join(recordDir, fileName),
        streamName: `synthetic_${cam}`,
        mediaSessionId: `00000000-0000-4000-8000-${String(cam).padStart(12, '0')}`,
        sourceProtocol: 'rtsp',
        startMs,
        endMs: startMs + 10_000,
        durationMs: 10_000,
        bytes: 1_250_000,
        audioCodec: 'AAC',
        videoCodec: 'H264',
        container: 'mp4',
        fragmentIndex: Math.floor(i / 20) + 1,
        state: 'complete',
      };
      store.insert(row);
    }
  })();
  closeDb(db);
}

/** CPU seconds (user + system) used so far by a process, from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function parseLatency(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

async function wrk(url: string, method: 'GET' | 'POST', servicePid: number, dir: string): Promise<WrkResult> {
  const args = ['-t2', '-c16', `-d${WRK_SECONDS}s`, '--latency', '--timeout', '5s'];
  if (method === 'POST') {
    const script = join(dir, 'post.lua');
    writeFileSync(script, 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n');
    args.push('-s', script);
  }
  const cpu0 = cpuSeconds(servicePid);
  const t0 = Date.now();
  const { stdout } = await run('wrk', [...args, url], { timeout: (WRK_SECONDS + 30) * 1000 });
  const cpu = cpuSeconds(servicePid) - cpu0;
  const wall = (Date.now() - t0) / 1000;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const p50 = /^\s+50%\s+(\S+)/m.exec(stdout);
  const p99 = /^\s+99%\s+(\S+)/m.exec(stdout);
  const reqs = /(\d+) requests in/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const errs = /Socket errors: (.*)/.exec(stdout);
  if (!rps || !p99 || !p50 || !reqs) throw new Error(`cannot read wrk output:\n${stdout}`);
  return {
    requestsPerSec: Number(rps[1]),
    p50: `${parseLatency(p50[1] ?? '').toFixed(2)} ms`,
    p99: `${parseLatency(p99[1] ?? '').toFixed(2)} ms`,
    requests: Number(reqs[1]),
    non2xx: Number(non2xx?.[1] ?? 0),
    errors: errs?.[1] ?? 'none',
    serviceCpuPercent: Math.round((cpu / wall) * 1000) / 10,
  };
}

/** Seconds ffmpeg has sent, from its last `-progress` block. */
function publishedSeconds(p: Publisher): number {
  const text = readFileSync(p.progressFile, 'utf8');
  const all = [...text.matchAll(/out_time_us=(\d+)/g)];
  const last = all[all.length - 1];
  return last ? Number(last[1]) / 1e6 : 0;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-rest-bench-'));
  const publishers: Publisher[] = [];
  let s: Service | null = null;
  try {
    fillIndex(join(dir, 'edgerec.db'), join(dir, 'records'), SYNTHETIC_ROWS);
    const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '320x180' });
    s = await startService({
      dir,
      conf: `record_rotation=${ROTATION_S}\nrecord_min_free_percent=0\nlog_level=info\n`,
      env: { EDGEREC_LOG_LEVEL: 'info' },
    });
    const svc = s;
    const rtmpPort = await waitFor('rtmp port', () => svc.logs().find((l) => l.msg === 'rtmp listening')?.rtmpPort as number | undefined, 10_000, 50);
    for (let i = 0; i < PUBLISHERS; i++) {
      const name = `bench_${String(i).padStart(2, '0')}`;
      const progressFile = join(dir, `${name}.progress`);
      const proc = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-progress', progressFile, '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${rtmpPort}/live/${name}`]);
      publishers.push({ name, proc, progressFile });
    }
    await waitFor(
      `${PUBLISHERS} recordings running`,
      async () => {
        const r = await svc.post('/rest-api/recorder/find_all');
        return r.status === 200 && Array.isArray(r.body) && r.body.length === PUBLISHERS;
      },
      30_000,
      200,
    );
    const settle = Date.now();
    await waitFor('3 s of recording', () => Date.now() - settle > 3000, 5000, 200);

    const findAll = await wrk(`${svc.base}/rest-api/recorder/find_all`, 'POST', svc.proc.pid, dir);
    const list = await wrk(`${svc.base}/rest-api/recordings?limit=100`, 'GET', svc.proc.pid, dir);
    const running = await svc.post('/rest-api/recorder/find_all');
    const stillRunning = Array.isArray(running.body) ? running.body.length : 0;

    // Stop the publishers gracefully (SIGINT: ffmpeg writes its last progress block), then let the files finalize.
    await Promise.all(publishers.map((p) => p.proc.stop('SIGINT', 5000)));
    await waitFor(
      'every bench recording finalized',
      async () => {
        const r = await svc.json('/rest-api/recordings?state=recording&limit=1');
        const f = await svc.json('/rest-api/recordings?state=finalizing&limit=1');
        return (r.body as { recordings: unknown[] }).recordings.length === 0 && (f.body as { recordings: unknown[] }).recordings.length === 0;
      },
      60_000,
      250,
    );
    const checks: { name: string; published: number; recorded: number; files: number; ok: boolean }[] = [];
    for (const p of publishers) {
      const rows = (await svc.json(`/rest-api/recordings?stream=${p.name}&limit=1000`)).body as { recordings: { fileName: string; state: string }[] };
      let recorded = 0;
      for (const r of rows.recordings) recorded += Number((await probe(join(svc.recordDir, r.fileName))).format.duration ?? 0);
      const published = publishedSeconds(p);
      const failed = rows.recordings.filter((r) => r.state !== 'complete').length;
      checks.push({ name: p.name, published, recorded, files: rows.recordings.length, ok: failed === 0 && Math.abs(recorded - published) <= 1 });
    }

    console.log(`edgerec REST bench: ${PUBLISHERS} RTMP publishers recording (rotation ${ROTATION_S} s), ${SYNTHETIC_ROWS} synthetic rows, wrk -t2 -c16 -d${WRK_SECONDS}s`);
    console.log(`${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
    console.log('| endpoint | requests/s | p50 | p99 | requests | non-2xx | socket errors | service CPU |');
    console.log('|---|---:|---:|---:|---:|---:|---|---:|');
    for (const [what, w] of [['POST /rest-api/recorder/find_all', findAll], ['GET /rest-api/recordings?limit=100', list]] as const) {
      console.log(`| ${what} | ${w.requestsPerSec.toFixed(0)} | ${w.p50} | ${w.p99} | ${w.requests} | ${w.non2xx} | ${w.errors} | ${w.serviceCpuPercent} % |`);
    }
    console.log(`recordings still running after both wrk runs: ${stillRunning}/${PUBLISHERS}`);
    console.log('| publisher | published s | recorded s (sum of files, ffprobe) | files | within ±1 s |');
    console.log('|---|---:|---:|---:|---|');
    for (const c of checks) console.log(`| ${c.name} | ${c.published.toFixed(2)} | ${c.recorded.toFixed(2)} | ${c.files} | ${c.ok ? 'yes' : 'NO'} |`);
    const bad = checks.filter((c) => !c.ok);
    console.log(bad.length === 0 ? 'no recording lost frames' : `LOST FRAMES in ${bad.map((c) => c.name).join(', ')}`);
    if (bad.length > 0 || stillRunning !== PUBLISHERS) process.exitCode = 1;
  } finally {
    await Promise.all(publishers.map((p) => p.proc.stop('SIGKILL')));
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
