/**
 * Crash loss: an ffmpeg RTMP publisher (`-re -c copy`, its own progress every 0.1 s) into the service; after
 * RECORD_S (+ a random part of a GOP, so the kill lands anywhere in a GOP) of published media the whole service
 * tree is frozen and SIGKILLed (a power cut), then the service is
 * restarted on the same folder and recovers. Loss = media the publisher had sent at the kill (its out_time) minus
 * the media in every file of the stream afterwards (ffprobe durations). One run per GOP.
 * Usage: node dist/bench/crash-loss.js [GOP seconds list, default 1,4] [record s, default 20] [runs, default 3]
 * CRASH_LOSS_CONF: config lines instead of record_rotation=600 (\n-separated).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClip, probe } from '../tests/helpers/media';
import { start, waitFor } from '../tests/helpers/proc';
import { alive, descendantPids, rtmpPort, type Service, startService } from '../tests/helpers/service';

const GOPS = (process.argv[2] ?? '1,4').split(',').map(Number);
const RECORD_S = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 3);
const CONF = `stream_record_policy_template={streamName}-{startTimeMillis}\n${process.env.CRASH_LOSS_CONF ?? 'record_rotation=600'}\n`;

interface Row { stream: string; state: string; fileName: string }

async function rows(s: Service): Promise<Row[]> {
  return ((await s.json('/rest-api/recordings?limit=1000')).body as { recordings: Row[] }).recordings;
}

async function oneRun(gopS: number): Promise<{ sentS: number; recoveredS: number; files: number }> {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, size: '640x360', gop: 25 * gopS });
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-crash-loss-'));
  try {
    const s1 = await startService({ dir, conf: CONF });
    let outS = 0;
    const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-progress', 'pipe:1', '-stats_period', '0.1', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s1)}/live/loss`]);
    pub.child.stdout?.on('data', (b: Buffer) => {
      for (const m of b.toString().matchAll(/out_time_us=(\d+)/g)) outS = Number(m[1]) / 1e6;
    });
    await waitFor('the recording', async () => (await rows(s1)).some((r) => r.state === 'recording'), 20_000, 100);
    const killAtS = RECORD_S + Math.random() * gopS;
    await waitFor(`${killAtS.toFixed(2)} s published`, () => outS >= killAtS, (RECORD_S + gopS) * 1000 + 20_000, 20);
    // power cut: freeze the whole tree first (nothing can react), then SIGKILL it; the publisher's progress then
    const pids = [s1.proc.pid, ...descendantPids(s1.proc.pid)];
    for (const p of pids) process.kill(p, 'SIGSTOP');
    const sentS = outS;
    for (const p of pids) process.kill(p, 'SIGKILL');
    await pub.stop('SIGKILL');
    await waitFor('the tree gone', () => pids.every((p) => !alive(p)), 5000, 20);
    const s2 = await startService({ dir, conf: 'stream_record_policy_template={streamName}-{startTimeMillis}\n' });
    try {
      const done = await waitFor('recovery', async () => {
        const rs = (await rows(s2)).filter((r) => r.stream === 'loss');
        return rs.length > 0 && rs.every((r) => r.state === 'complete' || r.state === 'recovered' || r.state === 'failed') ? rs : null;
      }, 30_000, 200);
      let recoveredS = 0;
      for (const r of done.filter((x) => x.state !== 'failed')) recoveredS += Number((await probe(join(s2.recordDir, r.fileName))).format.duration);
      return { sentS, recoveredS, files: done.length };
    } finally {
      await s2.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  for (const gop of GOPS) {
    const losses: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await oneRun(gop);
      losses.push(r.sentS - r.recoveredS);
      console.log(`GOP ${gop} s run ${i + 1}: sent ${r.sentS.toFixed(2)} s, recovered ${r.recoveredS.toFixed(2)} s in ${r.files} file(s): lost ${(r.sentS - r.recoveredS).toFixed(2)} s`);
    }
    console.log(`GOP ${gop} s: loss min ${Math.min(...losses).toFixed(2)} / max ${Math.max(...losses).toFixed(2)} s over ${RUNS} runs`);
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
