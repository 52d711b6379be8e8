import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeClip, probe } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { rtmpPort, startService } from '../helpers/service';
import { procUsage, treeUsage } from '../helpers/usage';

// Issue 15: back-pressure on the RTMP path. A media host that does not take media (here frozen with SIGSTOP, the
// way a stalled disk write freezes a muxer) must not make the service hold what the publisher keeps sending: the
// service drops past its backlog bound (16 MiB per host) and says so; its RSS stays bounded.

/**
 * What the service may gain while the host is frozen, whatever the freeze's length: the 16 MiB backlog bound, plus
 * the dropped tags' Buffers until V8 collects them (it forces a full GC when external memory has grown by ~64 MiB
 * since the last one), plus slack. Measured: 65–73 MB while 250 MiB arrived; without the bound 738 MB for 700 MiB.
 */
const MAX_RSS_GROWTH_MB = 96;
/** under the service's 8 s ping timeout, which would kill the frozen host */
const FREEZE_MS = 6000;

test('a frozen media host: the service drops past its backlog bound, its RSS stays bounded, the recording ends playable', async (t) => {
  // 720p at ~4 Mbit/s pushed at 60× real time (~30 MB/s): a publisher far faster than the frozen host, yet a rate
  // the service parses without falling behind (unthrottled, ffmpeg sent 300+ MB/s and the peak RSS measured V8's
  // collection lag of the dropped tags, not the bound)
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '1280x720' });
  const s = await startService({ conf: 'stream_record_policy_template={streamName}\nlog_level=info\n', env: { EDGEREC_LOG_LEVEL: 'info' } });
  t.after(() => s.stop('SIGKILL'));
  const port = await rtmpPort(s);
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-readrate', '60', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/flood`]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor(
    'the recording to run',
    async () => {
      const r = await s.post('/rest-api/recorder/find_all');
      return Array.isArray(r.body) && r.body.length === 1;
    },
    30_000,
    100,
  );
  // media reaches the file: the pipeline runs and the stream pushes into it (freezing the host before the pipeline
  // started would only hold the recording back, with nothing pushed and nothing to bound)
  const written = () => {
    const walk = (d: string): number => (existsSync(d) ? readdirSync(d, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? walk(join(d, e.name)) : statSync(join(d, e.name)).size), 0) : 0);
    return walk(s.tmpDir);
  };
  await waitFor('media written by the pipeline', () => written() > 1024 * 1024, 30_000, 100);
  const host = treeUsage(s.proc.pid).hosts[0];
  assert.ok(host, 'one media host');
  const bytesIn = async () => {
    const r = await s.post('/rest-api/stream/find', { name: 'flood' });
    const x = (r.body as { status?: string; bytesIn?: number }[]).find((y) => y.status === 'publishing');
    return Number(x?.bytesIn ?? 0);
  };
  const rss0 = procUsage(s.proc.pid)?.rssKb ?? 0;
  const in0 = await bytesIn();
  process.kill(host.pid, 'SIGSTOP');
  let frozen = true;
  t.after(() => (frozen ? process.kill(host.pid, 'SIGCONT') : undefined));
  let peak = rss0;
  const t0 = Date.now();
  for (let i = 0; i < 200 && Date.now() - t0 < FREEZE_MS; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, procUsage(s.proc.pid)?.rssKb ?? 0);
  }
  const received = (await bytesIn()) - in0;
  process.kill(host.pid, 'SIGCONT');
  frozen = false;
  // the publisher really sent more than the bound while the host was frozen: the bound is what held the memory
  assert.ok(received > (MAX_RSS_GROWTH_MB + 64) * 1048576, `the publisher sent ${(received / 1048576).toFixed(1)} MiB during the freeze (needs > ${MAX_RSS_GROWTH_MB + 64} MiB to test the bound)`);
  const growthMb = (peak - rss0) / 1024;
  t.diagnostic(`frozen ${FREEZE_MS} ms: ${(received / 1048576).toFixed(1)} MiB arrived, service RSS ${(rss0 / 1024).toFixed(0)} → peak ${(peak / 1024).toFixed(0)} MB`);
  assert.ok(growthMb < MAX_RSS_GROWTH_MB, `service RSS grew ${growthMb.toFixed(1)} MB while ${(received / 1048576).toFixed(0)} MiB arrived (allowed < ${MAX_RSS_GROWTH_MB})`);
  await waitFor('the drop to be logged', () => s.logs().some((l) => l.msg === 'media host backlog' && /not keeping up/.test(String(l.reason))), 10_000, 100).catch(async (err: unknown) => {
    const warns = s.logs().filter((l) => Number(l.level) >= 40 || /recording|pipeline|host/.test(String(l.msg)));
    const rec = (await s.post('/rest-api/stream/find_all')).body;
    throw new Error(`${String(err)}; streams: ${JSON.stringify(rec).slice(0, 1500)}; logged: ${JSON.stringify(warns).slice(0, 4000)}`);
  });
  // the host thawed: the recording goes on and ends as a playable file
  await pub.stop('SIGKILL');
  const file = await waitFor(
    'the file',
    async () => {
      const r = await s.json('/rest-api/recordings?stream=flood&limit=10');
      const rows = (r.body as { recordings: { state: string; fileName: string }[] }).recordings;
      return rows.length > 0 && rows.every((x) => x.state === 'complete') ? rows[0]?.fileName : null;
    },
    30_000,
    200,
  );
  assert.ok(readdirSync(s.recordDir).includes(file), `${file} in record_dir`);
  const p = await probe(`${s.recordDir}/${file}`);
  assert.deepEqual(p.streams.map((x) => x.codec_name).sort(), ['aac', 'h264']);
});
