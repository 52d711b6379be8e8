import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { allArchived, archiveConf, publishRtmp, swiftForFile } from '../helpers/archive';
import { assertPlaybackRun, frameSums, splitRuns } from '../helpers/frames';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { type Proc, waitFor } from '../helpers/proc';
import type { RecordingRow as Row } from '../helpers/recorded-file';
import { baseConf, rtmpPort, type Service, startService } from '../helpers/service';

// Issue 17 (last gap): /rest-api/playback and /segments over files whose local copy is gone (only in the archive
// bucket, issue 16), read from a real S3-compatible store (OpenStack Swift + s3api).

const FPS = 25;
/** keyframe interval of the clip: 1 s */
const GOP_S = 1;
const EXTRA = ['record_rotation=5', 'stream_record_policy_template={streamName}-{startTimeMillis}', 'playback_max_duration=600', ''].join('\n');
const BUCKET = 'playback';

const swift = swiftForFile({ buckets: [BUCKET] });
const work = mkdtempSync(join(tmpdir(), 'edgerec-pb-archive-'));

after(() => {
  rmSync(work, { recursive: true, force: true });
});

function mediaFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.(mp4|ts|webm)$/.test(f) && !f.startsWith('.')) : [];
}

async function rows(s: Service, stream: string): Promise<Array<Row & { archive: { state: string; local: boolean } | null }>> {
  const r = await s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Array<Row & { archive: { state: string; local: boolean } | null }> }).recordings;
}

/** GET a playback answer whole; the body, headers, ms to first byte and in all. */
async function play(s: Service, query: string, name: string, headers: Record<string, string> = {}): Promise<{ path: string; body: Buffer; headers: Headers; status: number; firstByteMs: number; totalMs: number }> {
  const t0 = performance.now();
  const r = await fetch(`${s.base}/rest-api/playback?${query}`, { headers });
  if (r.status !== 200 && r.status !== 206) assert.fail(`playback ${query} → ${r.status}: ${await r.text()}`);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Buffer[] = [];
  let firstByteMs = -1;
  for (let i = 0; i < 1_000_000; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    if (firstByteMs < 0) firstByteMs = performance.now() - t0;
    chunks.push(Buffer.from(value));
  }
  const totalMs = performance.now() - t0;
  const body = Buffer.concat(chunks);
  const path = join(work, name);
  writeFileSync(path, body);
  return { path, body, headers: r.headers, status: r.status, firstByteMs, totalMs };
}

async function applied(s: Service, text: string): Promise<void> {
  const n = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(text);
  await waitFor('the config edit to apply', () => s.logs().filter((l) => l.msg === 'config applied').length > n, 10_000, 100);
}

test('playback over files only in the archive: same answer as from the local files, decodes, frames match; a mixed range; 502 when the store is off or gone', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 25, size: '320x180', fps: FPS, gop: FPS * GOP_S });
  const short = await makeClip({ video: 'h264', audio: 'aac', seconds: 12, size: '320x180', fps: FPS, gop: FPS * GOP_S });
  const srcSums = await frameSums(clip);
  const shortSums = await frameSums(short);
  assert.equal(new Set(srcSums).size, srcSums.length, 'the source clip has distinct frames');
  const confOn = (extra: Record<string, number> = {}) => baseConf(s.dir) + EXTRA + archiveConf(swift.store, BUCKET, extra);
  const s = await startService({ conf: EXTRA + archiveConf(swift.store, BUCKET) });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const procs: Proc[] = [];
  t.after(() => Promise.all(procs.map((p) => p.stop('SIGKILL'))));

  // Session A: 25 s in 5 s files, every file archived (local copies still there).
  const a = publishRtmp(port, 'cam', clip);
  procs.push(a);
  await a.exited;
  await allArchived(s, 4, 90_000);
  await new Promise((r) => setTimeout(r, 2000));
  await allArchived(s, (await rows(s, 'cam')).length, 60_000);
  const filesA = (await rows(s, 'cam')).sort((x, y) => x.start - y.start);
  assert.ok(filesA.length >= 4, `rotation made ${filesA.length} files`);
  const firstA = filesA[0] as Row;
  const lastA = filesA[filesA.length - 1] as Row;
  const from = firstA.start + 3000;
  const to = (lastA.end as number) - 3000;
  const q = `stream=cam&from=${from}&to=${to}`;
  const local = { mp4: await play(s, `${q}&format=mp4`, 'local.mp4'), fmp4: await play(s, `${q}&format=fmp4`, 'local.fmp4.mp4') };

  // archive_keep_local_days=0: the local copies go, the rows stay (only in the bucket now).
  await applied(s, confOn({ archive_keep_local_days: 0 }));
  await waitFor('the local copies to be deleted', () => mediaFiles(s.recordDir).length === 0, 20_000, 200);
  const gone = await rows(s, 'cam');
  assert.ok(gone.length === filesA.length && gone.every((r) => r.archive?.state === 'archived' && r.archive.local === false), 'every file only in the archive');

  const boundaries = filesA.slice(1).map((f) => f.start).filter((b) => b > from && b < to);
  assert.ok(boundaries.length >= 2, 'the range spans ≥ 2 joins (≥ 3 archive-only files)');
  for (const format of ['mp4', 'fmp4'] as const) {
    const got = await play(s, `${q}&format=${format}`, `archive.${format}.mp4`);
    // the bytes are the very answer the local files gave (nothing lost, nothing read from the wrong place)
    assert.ok(got.body.equals(local[format].body), `${format}: the answer from the bucket is byte-identical to the answer from the local files (${got.body.length} vs ${local[format].body.length} bytes)`);
    const r = await assertPlaybackRun(got.path, got.headers, { format, from, to, gopS: GOP_S, fps: FPS, source: srcSums, joins: boundaries.length });
    console.log(
      `${format}: ${filesA.length} archive-only files, ${r.frames} frames = source ${r.at}..${r.at + r.frames - 1}, ${r.durationS.toFixed(3)} s for ${(to - from) / 1000} s; ` +
        `first byte ${got.firstByteMs.toFixed(0)} ms (local ${local[format].firstByteMs.toFixed(0)}), total ${got.totalMs.toFixed(0)} ms (local ${local[format].totalMs.toFixed(0)}), ${got.body.length} bytes`,
    );
  }
  const seg = await s.json(`/rest-api/playback/segments?${q}`);
  assert.equal(seg.status, 200, JSON.stringify(seg.body));
  const spans = (seg.body as { spans: Array<{ files: number; archiveOnlyFiles: number }> }).spans;
  assert.equal(spans.length, 1, JSON.stringify(seg.body));
  assert.ok((spans[0]?.files ?? 0) >= 3 && spans[0]?.archiveOnlyFiles === spans[0]?.files, `segments: every file of the span is archive-only: ${JSON.stringify(spans)}`);

  // a byte range of the mp4 form, read from the bucket
  const etag = (await fetch(`${s.base}/rest-api/playback?${q}`, { method: 'HEAD' })).headers.get('etag') ?? '';
  const size = local.mp4.body.length;
  const part = await play(s, q, 'archive.part.mp4', { range: `bytes=${size - 300_000}-${size - 1000}`, 'if-range': etag });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(local.mp4.body.subarray(size - 300_000, size - 999)), 'a byte range from the bucket matches the whole answer');

  // Session B, local copies kept: a range over the tail of A (archive-only) and the head of B (local).
  await applied(s, confOn({ archive_keep_local_days: 30 }));
  const b = publishRtmp(port, 'cam', short);
  procs.push(b);
  await b.exited;
  const all = await waitFor('session B archived and finished', async () => {
    const r = await rows(s, 'cam');
    return r.length >= filesA.length + 2 && r.every((x) => x.state === 'complete' && x.archive?.state === 'archived') ? r : null;
  }, 60_000, 250);
  const filesB = all.filter((r) => r.archive?.local === true).sort((x, y) => x.start - y.start);
  assert.ok(filesB.length >= 2, 'session B is local');
  const firstB = filesB[0] as Row;
  const mFrom = lastA.start - 2000;
  const mTo = (filesB[filesB.length - 1]?.end as number) - 1000;
  const mq = `stream=cam&from=${mFrom}&to=${mTo}`;
  const mseg = await s.json(`/rest-api/playback/segments?${mq}`);
  const mspans = (mseg.body as { spans: Array<{ files: number; archiveOnlyFiles: number }> }).spans;
  assert.deepEqual(mspans.map((x) => x.archiveOnlyFiles), [2, 0], `segments: A's files are archive-only, B's local: ${JSON.stringify(mseg.body)}`);
  for (const format of ['mp4', 'fmp4'] as const) {
    const got = await play(s, `${mq}&format=${format}`, `mixed.${format}.mp4`);
    assert.equal(got.headers.get('x-playback-gaps'), `${lastA.end}-${firstB.start}`, `${format}: the gap between the sessions is reported`);
    assert.equal(await decodeErrors(got.path), '', `${format} (mixed) decodes cleanly`);
    const dur = Number((await probe(got.path)).format.duration);
    const start = Number(got.headers.get('x-playback-start'));
    assert.ok(Math.abs(dur - (mTo - start) / 1000) <= 0.3, `${format}: ${dur} s from ${start} to ${mTo}`);
    const sums = await frameSums(got.path);
    const split = splitRuns(srcSums, shortSums, sums);
    assert.ok(split > 0, `${format}: the frames are the tail of session A (from the bucket) then session B (local)`);
    console.log(`${format} mixed: ${split} frames from the bucket + ${sums.length - split} local; ${dur.toFixed(3)} s; first byte ${got.firstByteMs.toFixed(0)} ms, total ${got.totalMs.toFixed(0)} ms`);
  }

  // The store gone (killed): a clear 502, for both formats and for the mixed range; the service stays up.
  await swift.store.kill();
  for (const query of [`${q}&format=mp4`, `${q}&format=fmp4`, mq]) {
    const t0 = Date.now();
    const r = await s.json(`/rest-api/playback?${query}`);
    assert.equal(r.status, 502, `${query}: ${JSON.stringify(r.body)}`);
    const e = r.body as { code: string; error: string };
    assert.equal(e.code, 'ARCHIVE_UNAVAILABLE');
    assert.match(e.error, /only in the archive, and the archive store did not answer/);
    assert.equal(e.error.includes(s.dir), false, 'no absolute path in the answer');
    assert.ok(Date.now() - t0 < 15_000, `answered in ${Date.now() - t0} ms`);
  }
  // Local files still play with the store gone.
  const bOnly = await play(s, `stream=cam&from=${firstB.start + 500}&to=${mTo}`, 'b-only.mp4');
  assert.equal(await decodeErrors(bOnly.path), '', 'local files still play');

  // Archiving switched off: the files only in the archive are a 502 naming the settings.
  await applied(s, baseConf(s.dir) + EXTRA);
  const off = await s.json(`/rest-api/playback?${q}`);
  assert.equal(off.status, 502, JSON.stringify(off.body));
  assert.equal((off.body as { code: string }).code, 'ARCHIVE_UNAVAILABLE');
  assert.match((off.body as { error: string }).error, /only in the archive, and archiving is off or misconfigured \(archive_s3_\*\)/);
  assert.equal((await s.json('/rest-api/health')).status, 200, 'the service is up');
});
