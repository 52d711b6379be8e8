/**
 * Index (SQLite) benchmark: 1,000,000 rows (60 streams of ~10 s files, 4 with hour- to day-long files), then p50/p99 of a 100-row overlap page
 * (with and without a stream filter, first and next page) and of a single insert / finalize update, each in
 * its own transaction as the recorder does. Usage: node <build>/bench/index-bench.js [rows] [dbPath]
 * (an existing dbPath is measured again without refilling; it is kept).
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeDb, openDb } from '../src/store/db';
import { RecordingsStore, type ListQuery, type NewRecording } from '../src/store/recordings';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const STREAMS = 64;
const SAMPLES = 2000;
const WARMUP = 200;
const HOUR = 3_600_000;

/** Small seeded PRNG so every run queries the same points. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Streams 0..59 rotate every 10 s; 60..62 have rotation disabled (1–24 h sessions); 63 runs 3 days per file. */
const SHORT_STREAMS = 60;

function fill(path: string, rnd: () => number): { t0: number; t1: number; ms: number } {
  const db = openDb(path);
  const cols = ['file_name', 'path', 'tmp_path', 'stream_name', 'media_session_id', 'source_protocol', 'start_ms', 'end_ms', 'duration_ms', 'bytes', 'audio_codec', 'video_codec', 'container', 'fragment_index', 'state', 'error', 'created_ms', 'updated_ms'];
  const ins = db.prepare(`INSERT INTO recordings (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
  const t0 = Date.UTC(2025, 0, 1);
  const next = Array.from({ length: STREAMS }, (_, s) => t0 + Math.floor(rnd() * 10_000) + s);
  const frag = new Array<number>(STREAMS).fill(0);
  const add = (s: number, start: number, dur: number | null): void => {
    const end = dur === null ? null : start + dur;
    const idx = (frag[s] = (frag[s] ?? 0) + 1);
    const name = `cam${s}_${new Date(start).toISOString().replace(/[:.]/g, '-')}_${idx}.mp4`;
    const state = end === null ? 'recording' : rnd() < 0.0005 ? 'failed' : rnd() < 0.001 ? 'recovered' : 'complete';
    const bytes = end === null ? 0 : Math.floor((end - start) * 500 * (0.8 + rnd() * 0.4));
    ins.run(name, `/var/lib/edgerec/records/${name}`, end === null ? `/run/edgerec/tmp/${name}` : null, `cam${s}`, `ms-${s}`, s % 8 === 0 ? 'rtmp' : 'rtsp', start, end, dur, bytes, 'AAC', 'H264', 'mp4', idx, state, state === 'failed' ? 'no media was written' : null, end ?? start, end ?? start);
  };
  const started = performance.now();
  let t1 = t0;
  let count = 0;
  db.transaction(() => {
    for (let i = 0; count < ROWS - STREAMS; i++) {
      const s = i % SHORT_STREAMS;
      const start = next[s] ?? t0;
      // splitmuxsink cuts at the keyframe before the limit: 8–10 s files; now and then a camera is away a while
      const dur = 8000 + Math.floor(rnd() * 2000);
      add(s, start, dur);
      count++;
      next[s] = start + dur + (rnd() < 0.0002 ? Math.floor((rnd() * HOUR) / 2) : 0);
      t1 = Math.max(t1, start + dur);
      for (let l = SHORT_STREAMS; l < STREAMS && count < ROWS - STREAMS; l++) {
        const ls = next[l] ?? t0;
        const len = l === STREAMS - 1 ? 72 * HOUR : HOUR + Math.floor(rnd() * 23 * HOUR);
        if (ls + len > start) continue;
        add(l, ls, len);
        count++;
        next[l] = ls + len + Math.floor(rnd() * 60_000);
      }
    }
    for (let s = 0; s < STREAMS; s++) add(s, Math.min(next[s] ?? t0, t1), null);
  })();
  const ms = performance.now() - started;
  closeDb(db);
  return { t0, t1, ms };
}

/** Time bounds of a DB filled by an earlier run (a dbPath given twice re-measures without refilling). */
function bounds(path: string): { t0: number; t1: number; ms: number } {
  const db = openDb(path);
  const r = db.prepare('SELECT min(start_ms) AS t0, max(end_ms) AS t1 FROM recordings').get() as { t0: number; t1: number };
  closeDb(db);
  return { ...r, ms: 0 };
}

interface Stat {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly note: string;
}

function measure(name: string, fn: (i: number) => number | void, note: (results: number[]) => string = () => ''): Stat {
  for (let i = 0; i < WARMUP; i++) fn(i);
  const times: number[] = [];
  const results: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const a = process.hrtime.bigint();
    const r = fn(i);
    times.push(Number(process.hrtime.bigint() - a) / 1e6);
    if (typeof r === 'number') results.push(r);
  }
  times.sort((x, y) => x - y);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
  return { name, p50: at(0.5), p99: at(0.99), max: at(1), note: note(results) };
}

function main(): void {
  const dir = process.argv[3] ? null : mkdtempSync(join(tmpdir(), 'edgerec-index-bench-'));
  const path = dir ? join(dir, 'index.db') : (process.argv[3] ?? '');
  try {
    const reuse = existsSync(path);
    const f = reuse ? bounds(path) : fill(path, mulberry32(42));
    const db = openDb(path);
    const store = new RecordingsStore(db);
    const rows = Number(db.prepare('SELECT count(*) FROM recordings').pluck().get());
    const sizeMb = (statSync(path).size / 1e6).toFixed(0);
    const span = f.t1 - f.t0 - HOUR;
    const point = (i: number) => f.t0 + Math.floor(mulberry32(1000 + i)() * span);
    const rowsOf = (r: number[]) => `avg rows ${(r.reduce((a, b) => a + b, 0) / Math.max(1, r.length)).toFixed(1)}`;
    const page = (q: ListQuery) => store.list(q).rows.length;
    const nextPage = (q: ListQuery) => {
      const first = store.list(q);
      return first.next ? store.list({ ...q, after: first.next }).rows.length : 0;
    };
    const stats: Stat[] = [];
    stats.push(measure('page 100, [t, t+1h), all streams', (i) => page({ from: point(i), to: point(i) + HOUR, limit: 100 }), rowsOf));
    stats.push(measure('page 100, [t, t+1h), one stream', (i) => page({ stream: `cam${i % STREAMS}`, from: point(i), to: point(i) + HOUR, limit: 100 }), rowsOf));
    stats.push(measure('page 100, from t, open end, all streams', (i) => page({ from: point(i), limit: 100 }), rowsOf));
    stats.push(measure('pages 1+2 (cursor), one stream', (i) => nextPage({ stream: `cam${i % STREAMS}`, from: point(i), to: point(i) + HOUR, limit: 100 }), (r) => `page 2: ${rowsOf(r)}`));
    stats.push(measure('page 100, state=failed (rare), [t, t+1h)', (i) => page({ state: 'failed', from: point(i), to: point(i) + HOUR, limit: 100 }), rowsOf));
    let now = f.t1 + 10_000;
    const newIds: number[] = [];
    const newStarts: number[] = [];
    const newRow = (i: number): NewRecording => ({
      fileName: `cam${i % STREAMS}_{endTime}_${i}.mp4`,
      path: `/run/edgerec/tmp/bench_${i}.mp4`,
      tmpPath: `/run/edgerec/tmp/bench_${i}.mp4`,
      streamName: `cam${i % STREAMS}`,
      mediaSessionId: `ms-${i % STREAMS}`,
      sourceProtocol: 'rtsp',
      startMs: (now += 150),
      audioCodec: 'AAC',
      videoCodec: 'H264',
      container: 'mp4',
      fragmentIndex: i,
      state: 'recording',
    });
    stats.push(
      measure('insert (own transaction)', (i) => {
        const row = newRow(i);
        newIds.push(store.insert(row));
        newStarts.push(row.startMs);
      }),
    );
    stats.push(
      measure('finalize update (own transaction)', (i) => {
        const id = newIds[i] ?? 0;
        store.update(id, { state: 'complete', fileName: `done_${i}.mp4`, path: `/var/lib/edgerec/records/done_${i}.mp4`, tmpPath: null, endMs: (newStarts[i] ?? now) + 9_500, durationMs: 9_500, bytes: 5_000_000, error: null });
      }),
    );
    stats.push(measure('countByState + totalBytes', () => void (store.countByState(), store.totalBytes())));
    const c0 = performance.now();
    closeDb(db);
    const closeMs = performance.now() - c0;

    console.log(`rows ${rows.toLocaleString('en')} (${STREAMS} streams, ${((f.t1 - f.t0) / HOUR).toFixed(1)} h), file ${sizeMb} MB, ${f.ms ? `fill ${(f.ms / 1000).toFixed(1)} s (one transaction)` : 'reused'}, close incl. PRAGMA optimize ${closeMs.toFixed(0)} ms`);
    console.log(`${SAMPLES} samples each after ${WARMUP} warm-up, times in ms`);
    console.log('| operation | p50 | p99 | max | note |');
    console.log('|---|---:|---:|---:|---|');
    for (const s of stats) console.log(`| ${s.name} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.max.toFixed(3)} | ${s.note} |`);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

main();
