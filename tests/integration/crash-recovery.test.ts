import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { type Proc, start, waitFor } from '../helpers/proc';
import { startRtspServer } from '../helpers/rtsp-server';
import { type Service, alive, descendantPids, rtmpPort, startService } from '../helpers/service';
import type { RecordingRow as Row } from '../helpers/recorded-file';

const run = promisify(execFile);

// SIGKILL of the whole service while it records an RTSP camera and an RTMP publisher, then a restart on the same
// folder: what was recorded is recovered into playable files, once, and the hook runs for them. As the issue asks:
// 30 s recorded, at least 28 s recovered per stream.

const RECORD_MS = 30_000;


async function rows(s: Service): Promise<Row[]> {
  const r = await s.json('/rest-api/recordings?limit=1000');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** A folder with a hook script that appends "$1|$2" to hook.log. */
function serviceDir(): { dir: string; hook: string; hookLog: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-crash-'));
  const hookLog = join(dir, 'hook.log');
  const hook = join(dir, 'hook.sh');
  writeFileSync(hook, `#!/bin/sh\necho "$1|$2" >> '${hookLog}'\n`);
  chmodSync(hook, 0o755);
  return { dir, hook, hookLog };
}

function publish(port: number, clip: string, name: string): Proc {
  return start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/${name}`]);
}

/** Freeze the service and every descendant first (nothing can react), then SIGKILL them all, like a power cut. */
async function killTree(s: Service): Promise<number[]> {
  const pids = [s.proc.pid, ...descendantPids(s.proc.pid)];
  for (const p of pids) signal(p, 'SIGSTOP');
  for (const p of pids) signal(p, 'SIGKILL');
  await s.proc.exited;
  await waitFor('every process of the service tree to die', () => pids.every((p) => !alive(p)), 5000, 20);
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * The file plays without errors and holds H.264 + AAC. With `cutShort`, a fragment killed within its first
 * seconds may hold only the track whose first MP4 fragment reached the disk (mp4mux writes one track's fragment
 * at a time); it is then at most ~2 s long.
 */
async function assertPlays(path: string, cutShort = false): Promise<number> {
  const p = await probe(path);
  const codecs = p.streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort();
  const oneTrack = codecs.length === 1 && ['audio:aac', 'video:h264'].includes(codecs[0] ?? '');
  if (cutShort && oneTrack) assert.ok(Number(p.format.duration) <= 3, `${basename(path)} holds ${codecs[0]} only, for ${p.format.duration} s: only a fragment killed in its first seconds may`);
  else assert.deepEqual(codecs, ['audio:aac', 'video:h264'], `codecs of ${basename(path)}`);
  assert.equal(await decodeErrors(path), '', `${basename(path)} decodes without errors`);
  return Number(p.format.duration);
}

test('SIGKILL of the service while recording a camera and an RTMP publisher: both recovered after restart', async (t) => {
  const rtsp = await startRtspServer();
  t.after(() => rtsp.stop());
  const { dir, hook, hookLog } = serviceDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const s1 = await startService({ dir, conf: `camera.cam1.url=${rtsp.url('h264aac')}\non_record_hook_script=${hook}\n` });
  t.after(() => s1.stop('SIGKILL'));
  const pub = publish(await rtmpPort(s1), clip, 'pub1');
  t.after(() => pub.stop('SIGKILL'));

  const open = await waitFor(
    'the camera and the publisher to record',
    async () => {
      const rs = await rows(s1);
      const cam = rs.find((r) => r.stream === 'cam1' && r.state === 'recording');
      const rtmp = rs.find((r) => r.stream === 'pub1' && r.state === 'recording');
      return cam && rtmp ? { cam, rtmp } : null;
    },
    30_000,
    200,
  );
  const startedAt = Math.max(open.cam.start, open.rtmp.start);
  const liveness = async () => ((await s1.json('/rest-api/health')).body as { liveness?: Record<string, { live: boolean }> }).liveness;
  // the liveness sampler runs every second: both streams live once, then at every sample until the kill
  await waitFor('both streams live in health', async () => {
    const l = await liveness();
    return l?.cam1?.live && l?.pub1?.live;
  }, 10_000, 200);
  // Bytes must keep reaching the tmp files of both streams for RECORD_MS (health liveness).
  await waitFor(
    `${RECORD_MS} ms of recording with both streams live`,
    async () => {
      const h = (await s1.json('/rest-api/health')).body as { liveness?: Record<string, { live: boolean }> };
      assert.ok(h.liveness?.cam1?.live && h.liveness?.pub1?.live, `liveness: ${JSON.stringify(h.liveness)}`);
      return Date.now() - startedAt >= RECORD_MS;
    },
    RECORD_MS + 20_000,
    500,
  );

  // SIGKILL of the service alone: its media hosts must not outlive it.
  const hosts = descendantPids(s1.proc.pid).filter((p) => cmdline(p).includes('host-worker'));
  assert.ok(hosts.length >= 1, 'the service runs its pipelines in media host processes');
  const killedAt = Date.now();
  process.kill(s1.proc.pid, 'SIGKILL');
  await s1.proc.exited;
  await waitFor('the media hosts to exit after the service died', () => hosts.every((p) => !alive(p)), 6000, 20);
  const hostsGoneMs = Date.now() - killedAt;
  t.diagnostic(`media hosts gone ${hostsGoneMs} ms after SIGKILL of the service`);
  assert.ok(hostsGoneMs <= 2500, `media hosts took ${hostsGoneMs} ms to exit (≤ 2 s expected, 0.5 s slack for a busy box)`);
  await pub.stop('SIGKILL');
  assert.ok(readdirSync(s1.tmpDir).length >= 2, 'the crash left the temp files behind');

  // Restart on the same folder without the camera, so the temp folder must end up empty.
  const s2 = await startService({ dir, conf: `on_record_hook_script=${hook}\n` });
  t.after(() => s2.stop());
  const after = await waitFor(
    'both rows recovered',
    async () => {
      const rs = await rows(s2);
      return rs.filter((r) => r.state === 'recovered').length >= 2 ? rs : null;
    },
    30_000,
    200,
  );
  assert.deepEqual(after.map((r) => `${r.stream}:${r.state}`).sort(), ['cam1:recovered', 'pub1:recovered'], JSON.stringify(after));
  for (const r of after) {
    const path = join(s2.recordDir, r.fileName);
    assert.ok(existsSync(path), `${r.fileName} is in record_dir`);
    const seconds = await assertPlays(path);
    const recordedS = (killedAt - r.start) / 1000;
    t.diagnostic(`${r.stream}: recorded ${recordedS.toFixed(1)} s, recovered ${seconds.toFixed(1)} s`);
    assert.ok(seconds >= recordedS - 2, `${r.stream}: ${seconds} s recovered of ${recordedS.toFixed(1)} s recorded`);
    if (seconds < 28) {
      const story = s1.logs().filter((l) => Number(l.level) >= 30 && /camera|recorder|finalize|tmp-space|retention/.test(String(l.component)));
      assert.fail(`${r.stream}: ${seconds} s recovered of a 30 s recording; the service said:\n${story.map((l) => JSON.stringify(l).slice(0, 400)).join('\n').slice(-6000)}`);
    }
    assert.ok(seconds <= recordedS + 3, `${r.stream}: ${seconds} s is not more than was recorded`);
  }
  assert.deepEqual(readdirSync(s2.recordDir).sort(), after.map((r) => r.fileName).sort(), 'record_dir holds exactly the recovered files');
  assert.deepEqual(readdirSync(s2.tmpDir), [], 'nothing is left in the temp folder');
  const hooked = await waitFor('the hook to run for both files', () => {
    const lines = existsSync(hookLog) ? readFileSync(hookLog, 'utf8').trim().split('\n') : [];
    return lines.length >= 2 ? lines : null;
  });
  assert.deepEqual(hooked.sort(), after.map((r) => `${r.stream}|${join(s2.recordDir, r.fileName)}`).sort());
});

test('SIGKILL of the service tree during finalizations (2 s rotation): nothing lost, nothing duplicated', async (t) => {
  const rtsp = await startRtspServer();
  t.after(() => rtsp.stop());
  const { dir, hook, hookLog } = serviceDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const conf = `record_rotation=2\nstream_record_policy_template={streamName}-{startTimeMillis}\non_record_hook_script=${hook}\n`;
  // The kill must land inside a finalization, every run: the service remuxes with gst-launch-1.0
  // (EDGEREC_REMUX=gst; the built-in remux goes through the same Finalizer steps: hidden .part name, fsync, link,
  // row update), found on PATH. A wrapper first on PATH runs the real one, then, once armed, stays in the
  // finalization (its output written, the finalizer waiting for it to exit) until the tree is killed.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const armed = join(dir, 'armed');
  const inside = join(dir, 'inside-finalization');
  writeFileSync(
    join(bin, 'gst-launch-1.0'),
    `#!/bin/sh\n/usr/bin/gst-launch-1.0 "$@"\nrc=$?\nif [ -e '${armed}' ]; then echo $$ >> '${inside}'; sleep 300; fi\nexit $rc\n`,
  );
  chmodSync(join(bin, 'gst-launch-1.0'), 0o755);
  const s1 = await startService({ dir, conf: `${conf}camera.cam1.url=${rtsp.url('h264aac')}\n`, env: { EDGEREC_REMUX: 'gst', PATH: `${bin}:${process.env.PATH ?? ''}` } });
  t.after(() => s1.stop('SIGKILL'));
  const pub = publish(await rtmpPort(s1), clip, 'pub1');
  t.after(() => pub.stop('SIGKILL'));
  await waitFor('a few finished fragments of both streams', async () => {
    const rs = await rows(s1);
    return rs.filter((r) => r.stream === 'cam1' && r.state === 'complete').length >= 2 && rs.filter((r) => r.stream === 'pub1' && r.state === 'complete').length >= 2;
  }, 40_000, 200);

  // Land the kill while a remux into record_dir runs (the wrapper, a child of the service, holds it open).
  writeFileSync(armed, '');
  const held = await waitFor('a finalization held open by the wrapper', () => (existsSync(inside) ? readFileSync(inside, 'utf8').trim().split('\n') : null), 20_000, 20);
  const holder = Number(held[0]);
  assert.ok(descendantPids(s1.proc.pid).includes(holder), 'the finalization in progress belongs to the service');
  const partials = readdirSync(join(dir, 'records')).filter((f) => f.startsWith('.'));
  assert.ok(partials.length >= 1, `the remux output is written and not yet linked into place: ${JSON.stringify(readdirSync(join(dir, 'records')))}`);
  const killed = await killTree(s1);
  await pub.stop('SIGKILL');
  assert.ok(killed.includes(holder), 'the kill landed during the finalization');
  t.diagnostic(`killed ${killed.length} processes during a finalization (${partials.length} remux output(s) not yet in place)`);

  // The window the finalizer's order leaves: a file linked into record_dir before its row said so. Put one
  // there for an open fragment (any playable MP4 stands for its remux), marking the row as the finalizer does first.
  const db = new Database(join(dir, 'edgerec.db'));
  const open = db.prepare("SELECT id, file_name AS fileName, tmp_path AS tmpPath, start_ms AS startMs FROM recordings WHERE state = 'recording' AND stream_name = 'pub1' AND tmp_path IS NOT NULL").get() as
    | { id: number; fileName: string; tmpPath: string; startMs: number }
    | undefined;
  assert.ok(open, 'the crash left an open pub1 fragment');
  const placed = join(dir, 'records', open.fileName);
  db.prepare("UPDATE recordings SET state = 'finalizing', end_ms = ?, path = ?, updated_ms = ? WHERE id = ?").run(open.startMs + 1000, placed, Date.now(), open.id);
  db.close();
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', clip, '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', placed]);
  const before = readdirSync(join(dir, 'records')).filter((f) => !f.startsWith('.'));

  const s2 = await startService({ dir, conf });
  t.after(() => s2.stop());
  const rs = await rows(s2);
  const states = rs.map((r) => r.state);
  assert.ok(!states.includes('recording') && !states.includes('finalizing'), `every row is finished after the restart: ${JSON.stringify(states)}`);
  // With the media hosts SIGKILLed too, what they held in memory is gone (splitmuxsink holds a GOP, filesink
  // 64 KB): a fragment open for less than that may have no complete MP4 fragment on disk. Only the last
  // fragment of a stream may fail, and only for that reason; its temp file is kept.
  const failed = rs.filter((r) => r.state === 'failed');
  for (const f of failed) {
    const last = rs.filter((r) => r.stream === f.stream).sort((a, b) => b.start - a.start)[0];
    assert.equal(last?.id, f.id, `only the last fragment of ${f.stream} may fail: ${JSON.stringify(f)}`);
    assert.match(f.error ?? '', /no complete media box/, 'a failed recovery says why');
  }
  t.diagnostic(`${failed.length} open fragment(s) held no complete media fragment on disk`);
  assert.ok(rs.some((r) => r.state === 'recovered'), 'the open fragments were recovered');
  const placedRow = rs.find((r) => r.id === open.id);
  assert.equal(placedRow?.state, 'recovered');
  assert.equal(placedRow?.fileName, open.fileName, 'the file placed before the crash is adopted, not remuxed again');

  const files = readdirSync(s2.recordDir);
  assert.deepEqual(files.filter((f) => /\(\d+\)\.mp4$/.test(f)), [], 'no "(N)" duplicates');
  assert.deepEqual(files.filter((f) => f.startsWith('.')), [], 'no partial remux outputs left');
  assert.deepEqual(files.sort(), rs.filter((r) => r.state !== 'failed').map((r) => r.fileName).sort(), 'one file per row, one row per file');
  for (const f of before) assert.ok(files.includes(f), `${f} (finished before the crash) is still there`);
  assert.equal(readdirSync(s2.tmpDir).length, failed.length, 'nothing but the failed fragments is left in the temp folder');
  for (const r of rs.filter((x) => x.state === 'recovered')) await assertPlays(join(s2.recordDir, r.fileName), true);
  // Fragments of each stream follow each other: nothing recorded before the crash is missing in between.
  for (const stream of ['cam1', 'pub1']) {
    const mine = rs.filter((r) => r.stream === stream).sort((a, b) => a.start - b.start);
    for (let i = 1; i < mine.length; i++) {
      const prev = mine[i - 1];
      const cur = mine[i];
      if (!prev || !cur || prev.end === null) continue;
      assert.ok(Math.abs(cur.start - prev.end) <= 1500, `${stream}: gap between ${prev.fileName} and ${cur.fileName}`);
    }
  }
  const hookLines = await waitFor('the hook for every recovered file', () => {
    const lines = existsSync(hookLog) ? readFileSync(hookLog, 'utf8').trim().split('\n') : [];
    return rs.filter((r) => r.state === 'recovered').every((r) => lines.includes(`${r.stream}|${join(s2.recordDir, r.fileName)}`)) ? lines : null;
  });
  assert.equal(new Set(hookLines).size, hookLines.length, 'the hook ran once per file');
});
