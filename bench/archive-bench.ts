/**
 * Archive benchmark (issue 16): P RTMP publishers (a 720p ~11 Mbit/s clip, looped) recorded with rotation 10 s while
 * the archive store (a real Swift + s3api on 127.0.0.1) is down — the recording's own CPU — then the store comes back
 * and the backlog drains at full speed while the recording goes on — upload throughput and the CPU it costs. Then every
 * file is checked for lost frames: packets per file vs its duration, and the files of each stream continuous in time.
 * Usage: node dist/bench/archive-bench.js [publishers, default 2] [window s, default 30]
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allArchived, allRows, archiveConf, bigClip, createBucket, publishRtmp, testClient } from '../tests/helpers/archive';
import { probe } from '../tests/helpers/media';
import { type Proc, waitFor } from '../tests/helpers/proc';
import { descendantPids, rtmpPort, startService } from '../tests/helpers/service';
import { SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY, startSwift, type SwiftStore } from '../tests/helpers/swift';
import { Upload } from '@aws-sdk/lib-storage';
import { S3Store } from '../src/archive/s3-store';
import { Throttle } from '../src/archive/throttle';

const run = promisify(execFile);
const P = Number(process.argv[2] ?? 2);
const WINDOW_S = Number(process.argv[3] ?? 30);
const CLK_TCK = 100;

function ticks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** CPU seconds of the process trees under `roots` over `fn` (sampled every 500 ms; exited processes keep their last value). */
async function cpuDuring<T>(roots: number[], fn: () => Promise<T>): Promise<{ cpuS: number; wallS: number; value: T }> {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = () => {
    for (const r of roots) {
      for (const p of [r, ...descendantPids(r)]) {
        const t = ticks(p);
        if (!first.has(p)) first.set(p, t);
        last.set(p, Math.max(last.get(p) ?? 0, t));
      }
    }
  };
  sample();
  const t0 = Date.now();
  let done = false;
  const sampler = (async () => {
    for (let i = 0; i < 100_000 && !done; i++) {
      await new Promise((r) => setTimeout(r, 500));
      sample();
    }
  })();
  const value = await fn();
  done = true;
  await sampler;
  sample();
  let sum = 0;
  for (const [p, t] of first) sum += (last.get(p) ?? t) - t;
  return { cpuS: sum / CLK_TCK, wallS: (Date.now() - t0) / 1000, value };
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return Number(m?.[1] ?? NaN);
}

async function videoPackets(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', path], { timeout: 60_000 });
  return Number(stdout.trim());
}

/** The upload path alone, nothing recording: our S3Store.upload (file stream, throttle at 0, part hashing) vs a bare
 * lib-storage Upload of the same bytes from memory; 3 of each, interleaved; MB/s and CPU of this process. */
async function uploadPath(store: SwiftStore, clip: string): Promise<void> {
  const settings = { endpoint: store.endpoint, bucket: 'bench', region: 'us-east-1', forcePathStyle: true, accessKeyId: SWIFT_ACCESS_KEY, secretAccessKey: SWIFT_SECRET_KEY };
  const ours = new S3Store(settings, new Throttle(0));
  const bytes = readFileSync(clip);
  const rows: string[] = [];
  const one = async (name: string, fn: () => Promise<unknown>) => {
    const c0 = process.cpuUsage();
    const t0 = Date.now();
    await fn();
    const s = (Date.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    rows.push(`| ${name} | ${(bytes.length / 1e6 / s).toFixed(1)} MB/s | ${((c.user + c.system) / 1e6).toFixed(2)} s |`);
  };
  for (let i = 0; i < 3; i++) {
    await one('edgerec S3Store.upload (file → hash → lib-storage, 8 MiB parts)', () => ours.upload(`path/ours-${i}.mp4`, clip, new AbortController().signal, {}));
    await one('bare lib-storage Upload from a Buffer (8 MiB parts, queueSize 1)', () =>
      new Upload({ client: ours.client, params: { Bucket: 'bench', Key: `path/bare-${i}.mp4`, Body: bytes }, partSize: 8 * 1024 * 1024, queueSize: 1 }).done(),
    );
  }
  ours.destroy();
  console.log(`upload path alone, one ${(bytes.length / 1e6).toFixed(1)} MB file at a time:`);
  console.log('| client | rate | CPU of the uploading process |\n|---|---:|---:|');
  for (const r of rows) console.log(r);
}

async function main(): Promise<void> {
  const clip = await bigClip();
  const cp = await probe(clip);
  const clipMbit = (Number(cp.format.size) * 8) / Number(cp.format.duration) / 1e6;
  const store = await startSwift();
  const s3 = testClient(store);
  await createBucket(s3, 'bench');
  await uploadPath(store, clip);
  const s = await startService({ conf: `log_level=info\nstream_record_policy_template={streamName}\nrecord_rotation=10\n${archiveConf(store, 'bench')}`, env: { EDGEREC_LOG_LEVEL: 'info' } });
  const pubs: Proc[] = [];
  try {
    console.log(`clip: 1280x720 25 fps, ${clipMbit.toFixed(1)} Mbit/s; ${P} publishers = ${(clipMbit * P).toFixed(1)} Mbit/s recorded; window ${WINDOW_S} s`);
    await store.kill();
    const port = await rtmpPort(s);
    const pubStart = Date.now();
    for (let i = 0; i < P; i++) pubs.push(publishRtmp(port, `cam${i}`, clip, true));
    await waitFor('the recordings', async () => ((await s.post('/rest-api/recorder/find_all')).body as unknown[]).length === P, 30_000, 200);
    await new Promise((r) => setTimeout(r, 5000));
    // 1. Recording alone (the store is down: the archiver only waits).
    const rec = await cpuDuring([s.proc.pid], () => new Promise((r) => setTimeout(r, WINDOW_S * 1000)));
    const backlog0 = await metric(s.base, 'edgerec_archive_backlog_bytes');
    // 2. The store returns: the backlog drains at full speed while the recording goes on.
    await store.restart();
    const up0 = await metric(s.base, 'edgerec_archive_uploaded_bytes_total');
    const swiftPids = store.pids();
    // Measured until the backlog first drains (the upload runs flat out all that time), at most 5 windows.
    const both = await cpuDuring([s.proc.pid], () =>
      waitFor('the backlog to drain', async () => (await metric(s.base, 'edgerec_archive_backlog_files')) === 0 && (await metric(s.base, 'edgerec_archive_uploaded_bytes_total')) > up0, WINDOW_S * 5000, 250),
    );
    const up1 = await metric(s.base, 'edgerec_archive_uploaded_bytes_total');
    const swiftCpu = swiftPids.reduce((a, p) => a + ticks(p), 0) / CLK_TCK;
    const uploadedMB = (up1 - up0) / 1e6;
    const upMbit = ((up1 - up0) * 8) / 1e6 / both.wallS;
    const recPct = (rec.cpuS / rec.wallS) * 100;
    const bothPct = (both.cpuS / both.wallS) * 100;
    const perMbit = (bothPct - recPct) / upMbit;
    console.log(`backlog when the store came back: ${(backlog0 / 1e6).toFixed(1)} MB`);
    console.log(`| phase | edgerec tree CPU (% of a core) | uploaded | upload rate |`);
    console.log(`|---|---:|---:|---:|`);
    console.log(`| recording only (${P} × ${clipMbit.toFixed(1)} Mbit/s, store down) | ${recPct.toFixed(1)} % | 0 | 0 |`);
    console.log(`| recording + full-speed upload until the backlog drained | ${bothPct.toFixed(1)} % | ${uploadedMB.toFixed(1)} MB in ${both.wallS.toFixed(1)} s | ${(uploadedMB / both.wallS).toFixed(1)} MB/s = ${upMbit.toFixed(0)} Mbit/s |`);
    console.log(`archiver CPU: ${perMbit.toFixed(3)} % of a core per Mbit/s uploaded; for this recording (${(clipMbit * P).toFixed(1)} Mbit/s) ${(perMbit * clipMbit * P).toFixed(1)} % of a core`);
    console.log(`swift (4 servers, not edgerec) since its restart: ${swiftCpu.toFixed(1)} CPU s`);
    // 3. Stop publishing; everything must end up archived; no frame lost in any file.
    await Promise.all(pubs.map((p) => p.stop('SIGINT')));
    const pubS = (Date.now() - pubStart) / 1000;
    const rows = await allArchived(s, P, 300_000);
    let worst = 0;
    let packets = 0;
    let seconds = 0;
    const byStream = new Map<string, typeof rows>();
    for (const r of rows) byStream.set(r.stream, [...(byStream.get(r.stream) ?? []), r]);
    let maxGapMs = 0;
    for (const [, list] of byStream) {
      list.sort((a, b) => a.start - b.start);
      for (let i = 0; i < list.length; i++) {
        const r = list[i];
        if (!r) continue;
        const file = join(s.recordDir, r.fileName);
        const n = await videoPackets(file);
        const d = Number((await probe(file)).format.duration);
        packets += n;
        seconds += d;
        worst = Math.max(worst, Math.abs(n - d * 25));
        const next = list[i + 1] as { start: number } | undefined;
        const end = (r as unknown as { end: number }).end;
        if (next) maxGapMs = Math.max(maxGapMs, Math.abs(next.start - end));
      }
    }
    console.log(`${rows.length} files archived; ${packets} video frames in ${seconds.toFixed(1)} s of files (${(packets / seconds).toFixed(2)} fps), publishing lasted ~${pubS.toFixed(0)} s × ${P}`);
    console.log(`worst file: |frames − 25 × duration| = ${worst.toFixed(1)}; largest gap between consecutive files of a stream: ${maxGapMs} ms`);
    console.log(`rows: ${(await allRows(s)).length}`);
  } finally {
    await Promise.all(pubs.map((p) => p.stop('SIGKILL')));
    await s.stop();
    s3.destroy();
    await store.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
