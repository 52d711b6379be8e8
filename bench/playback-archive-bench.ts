/**
 * Reading archive-only files for playback: how to read N recorded files from the bucket (a real Swift + s3api on
 * 127.0.0.1). For each way, the time to parse every file's boxes (what the first byte of an answer waits for) and the
 * time to also read every sample byte (the whole answer), side by side with local files:
 *  - ranged GETs through ObjectReader (parse with a small block, media with a larger one), several block sizes;
 *  - whole-object fetch to a temp file, then parsed and read locally (the file removed after).
 * Usage: npx tsc && node dist/bench/playback-archive-bench.js [files] [runs]
 */
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ObjectReader, objectReads } from '../src/archive/object-reader';
import { S3Store } from '../src/archive/s3-store';
import { Throttle } from '../src/archive/throttle';
import { openSource, openSourceFrom, type SourceFile, type SourceHandle } from '../src/mp4/source';
import { createBucket, testClient } from '../tests/helpers/archive';
import { startSwift, SWIFT_ACCESS_KEY, SWIFT_SECRET_KEY } from '../tests/helpers/swift';

const run = promisify(execFile);
const FILES = Number(process.argv[2] ?? 60);
const RUNS = Number(process.argv[3] ?? 3);
const CACHE = '/tmp/edgerec-bench/playback';
const COPY = 1024 * 1024;

/** The 10 s 1080p clip of playback-bench, remuxed moov-last as the recorder writes it. */
async function clip(): Promise<string> {
  const src = join(CACHE, 'seg-1080p-10s.mp4');
  const out = join(CACHE, 'seg-1080p-10s-moovlast.mp4');
  if (existsSync(out)) return out;
  if (!existsSync(src)) throw new Error(`run bench/playback-bench.ts once first (it makes ${src})`);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', src, '-c', 'copy', `${out}.part.mp4`]);
  await run('mv', [`${out}.part.mp4`, out]);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function pool<T>(n: number, items: readonly T[], f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    for (let i = next++; i < items.length; i = next++) await f(items[i] as T);
  }));
}

/** Every sample byte of `src`, read in file order through `fh` in runs of up to 1 MiB (as the mp4 route copies). */
async function readMedia(fh: SourceHandle, src: SourceFile, buf: Buffer): Promise<number> {
  const runs: Array<[number, number]> = [];
  for (const t of src.tracks) for (let i = 0; i < t.table.count; i++) runs.push([t.table.offset[i] ?? 0, t.table.size[i] ?? 0]);
  runs.sort((a, b) => a[0] - b[0]);
  let bytes = 0;
  let at = -1;
  let len = 0;
  const flush = async () => {
    for (let done = 0; done < len; ) {
      const n = Math.min(COPY, len - done);
      await fh.read(buf, 0, n, at + done);
      done += n;
    }
    bytes += len;
  };
  for (const [o, l] of runs) {
    if (at >= 0 && o === at + len) len += l;
    else {
      if (at >= 0) await flush();
      at = o;
      len = l;
    }
  }
  if (at >= 0) await flush();
  return bytes;
}

async function main(): Promise<void> {
  const file = await clip();
  const size = (await readFile(file)).length;
  const store = await startSwift();
  const work = mkdtempSync(join(tmpdir(), 'edgerec-pbarch-bench-'));
  try {
    const admin = testClient(store);
    await createBucket(admin, 'bench');
    const body = await readFile(file);
    const keys = Array.from({ length: FILES }, (_v, i) => `box/cam/2026-12-03/seg-${String(i).padStart(3, '0')}.mp4`);
    await pool(4, keys, async (k) => {
      await admin.send(new PutObjectCommand({ Bucket: 'bench', Key: k, Body: body }));
    });
    admin.destroy();
    const s3 = new S3Store({ endpoint: store.endpoint, region: 'us-east-1', forcePathStyle: true, bucket: 'bench', accessKeyId: SWIFT_ACCESS_KEY, secretAccessKey: SWIFT_SECRET_KEY }, new Throttle(0));

    type Way = { name: string; go: () => Promise<{ parseMs: number; totalMs: number; gets: number; bytes: number }> };
    const ranged = (parseBlock: number, dataBlock: number, ahead: boolean): Way => ({
      name: `ranged GETs, parse block ${parseBlock / 1024} KiB, media block ${dataBlock / 1024} KiB${ahead ? ' + read-ahead' : ''}`,
      go: async () => {
        const g0 = objectReads.gets;
        const t0 = performance.now();
        const srcs: SourceFile[] = new Array(FILES);
        await pool(8, keys.map((k, i) => ({ k, i })), async ({ k, i }) => {
          srcs[i] = await openSourceFrom(new ObjectReader(s3, k, size, k, undefined, parseBlock), size);
        });
        const parseMs = performance.now() - t0;
        const buf = Buffer.allocUnsafe(COPY);
        let bytes = 0;
        for (const [i, k] of keys.entries()) {
          const r = new ObjectReader(s3, k, size, k, undefined, dataBlock, ahead);
          bytes += await readMedia(r, srcs[i] as SourceFile, buf);
          await r.close();
        }
        return { parseMs, totalMs: performance.now() - t0, gets: objectReads.gets - g0, bytes };
      },
    });
    const whole: Way = {
      name: 'whole object to a temp file, then read locally',
      go: async () => {
        const t0 = performance.now();
        const paths: string[] = new Array(FILES);
        const srcs: SourceFile[] = new Array(FILES);
        await pool(8, keys.map((k, i) => ({ k, i })), async ({ k, i }) => {
          const p = join(work, `f${i}.mp4`);
          const o = await s3.get(k, undefined);
          await pipeline(o.Body as Readable, createWriteStream(p));
          paths[i] = p;
          srcs[i] = await openSource(p);
        });
        const parseMs = performance.now() - t0;
        const buf = Buffer.allocUnsafe(COPY);
        let bytes = 0;
        for (const [i, src] of srcs.entries()) {
          bytes += await readMedia(src.fh, src, buf);
          await src.fh.close();
          await rm(paths[i] as string);
        }
        return { parseMs, totalMs: performance.now() - t0, gets: FILES, bytes };
      },
    };
    const localDir = join(work, 'local');
    mkdirSync(localDir);
    const localPaths = keys.map((_k, i) => join(localDir, `l${i}.mp4`));
    for (const p of localPaths) await run('cp', [file, p]);
    const local: Way = {
      name: 'local files (for reference)',
      go: async () => {
        const t0 = performance.now();
        const srcs: SourceFile[] = new Array(FILES);
        await pool(8, localPaths.map((p, i) => ({ p, i })), async ({ p, i }) => {
          srcs[i] = await openSource(p);
          await srcs[i]?.fh.close();
        });
        const parseMs = performance.now() - t0;
        const buf = Buffer.allocUnsafe(COPY);
        let bytes = 0;
        for (const [i, p] of localPaths.entries()) {
          const fh = await open(p, 'r');
          bytes += await readMedia(fh, srcs[i] as SourceFile, buf);
          await fh.close();
        }
        return { parseMs, totalMs: performance.now() - t0, gets: 0, bytes };
      },
    };
    const MiB = 1024 * 1024;
    const ways = [local, ranged(64 * 1024, 2 * MiB, false), ranged(64 * 1024, 4 * MiB, false), ranged(64 * 1024, 2 * MiB, true), ranged(64 * 1024, 4 * MiB, true), ranged(64 * 1024, 8 * MiB, true), whole];
    const res = new Map<string, Array<{ parseMs: number; totalMs: number; gets: number; bytes: number }>>();
    for (const w of ways) await w.go(); // warm-up
    for (let r = 0; r < RUNS; r++) for (const w of ways) res.set(w.name, [...(res.get(w.name) ?? []), await w.go()]);
    console.log(`${FILES} files of ${(size / 1e6).toFixed(2)} MB (10 s 1080p25 4 Mbit/s + AAC, moov last), ${RUNS} runs, load ${loadavg()[0]?.toFixed(2)}`);
    console.log('| way | parse all (first byte waits for it), ms | whole read, ms | GETs | MB read |');
    console.log('|---|---:|---:|---:|---:|');
    for (const w of ways) {
      const xs = res.get(w.name) ?? [];
      console.log(`| ${w.name} | ${median(xs.map((x) => x.parseMs)).toFixed(0)} | ${median(xs.map((x) => x.totalMs)).toFixed(0)} | ${xs[0]?.gets} | ${((xs[0]?.bytes ?? 0) / 1e6).toFixed(0)} |`);
    }
    s3.destroy();
  } finally {
    rmSync(work, { recursive: true, force: true });
    await store.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
