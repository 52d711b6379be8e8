import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { rtmpPort, startService } from '../helpers/service';

// systemd integration without systemd: a fake NOTIFY_SOCKET (a unix datagram listener in Python — Node cannot
// bind one) receives what systemd-notify sends for the service (the unit has NotifyAccess=all for that child).
// Then a graceful stop (SIGTERM) finalizes the running recording.

const LISTENER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('LISTENING', flush=True)
while True:
    data = s.recv(65536)
    print('%d %s' % (int(time.time() * 1000), data.decode('utf-8', 'replace').replace('\\n', '|')), flush=True)
`;

interface Datagram {
  at: number;
  text: string;
}

test('READY once listening, WATCHDOG while alive, none while frozen; SIGTERM finalizes the running recording', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-sd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'notify.sock');
  const listener = start('/usr/bin/python3', ['-c', LISTENER, sock]);
  t.after(() => listener.stop('SIGKILL'));
  await waitFor('the notify listener', () => listener.output().includes('LISTENING'), 10_000, 20);
  const received = (): Datagram[] =>
    listener
      .output()
      .split('\n')
      .map((l) => /^(\d+) (.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ at: Number(m[1]), text: m[2] ?? '' }));
  const pings = (from = 0, to = Infinity) => received().filter((d) => d.text.split('|').includes('WATCHDOG=1') && d.at >= from && d.at < to);

  const s = await startService({ dir, conf: '', env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '2000000' } });
  t.after(() => s.stop('SIGKILL'));
  const listening = s.logs().find((l) => l.msg === 'edgerec listening');
  const ready = await waitFor('READY=1', () => received().find((d) => d.text.split('|').includes('READY=1')), 10_000, 50);
  assert.ok(ready.at >= new Date(String(listening?.time)).getTime() - 5, 'READY=1 comes once the API listens');
  const api = await s.json('/rest-api/health');
  assert.equal(api.status, 200, 'the API answers when READY=1 has been sent');

  // WATCHDOG_USEC=2 s: a ping every second (half the period).
  const t0 = Date.now();
  await waitFor('three watchdog pings', () => pings(t0).length >= 3, 10_000, 100);

  // Frozen (SIGSTOP): no pings, so systemd would kill and restart it; thawed: pings again.
  process.kill(s.proc.pid, 'SIGSTOP');
  const frozenAt = Date.now();
  t.after(() => {
    try {
      process.kill(s.proc.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  });
  // A bare wait is the point here: nothing may arrive during it. 500 ms grace for a ping already on its way.
  await new Promise((r) => setTimeout(r, 3500));
  const whileFrozen = pings(frozenAt + 500, Date.now());
  process.kill(s.proc.pid, 'SIGCONT');
  assert.deepEqual(whileFrozen, [], 'no WATCHDOG=1 while the service is frozen');
  const thawed = Date.now();
  await waitFor('pings after SIGCONT', () => pings(thawed).length >= 1, 10_000, 100);

  // Graceful stop while an RTMP publisher records: the file is complete after the stop.
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6 });
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${await rtmpPort(s)}/live/graceful`]);
  t.after(() => pub.stop('SIGKILL'));
  const rows = async () => ((await s.json('/rest-api/recordings')).body as { recordings: { fileName: string; state: string; start: number }[] }).recordings;
  const rec = await waitFor('the recording to run', async () => (await rows()).find((r) => r.state === 'recording'), 20_000, 200);
  await waitFor('4 s of recording', () => Date.now() - rec.start >= 4000, 10_000, 200);
  const stopAt = Date.now();
  process.kill(s.proc.pid, 'SIGTERM');
  const exit = await s.proc.exited;
  assert.equal(exit.code, 0, `a clean exit after SIGTERM: ${s.proc.output().slice(-1500)}`);
  assert.ok(received().some((d) => d.text.split('|').includes('STOPPING=1')), 'STOPPING=1 is sent');
  const files = readdirSync(s.recordDir).filter((f) => f.endsWith('.mp4'));
  assert.equal(files.length, 1, `one finished file: ${files.join(', ')}`);
  const path = join(s.recordDir, files[0] ?? '');
  const p = await probe(path);
  assert.deepEqual(p.streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  const seconds = Number(p.format.duration);
  const recorded = (stopAt - rec.start) / 1000;
  assert.ok(seconds >= recorded - 1.5, `${seconds} s in the file, ${recorded.toFixed(1)} s recorded before SIGTERM`);
  assert.equal(await decodeErrors(path), '');
  assert.deepEqual(readdirSync(s.tmpDir), [], 'nothing left in tmp');
  const stopped = s.logs().filter((l) => l.msg === 'file finalized');
  assert.equal(stopped.length, 1, 'finalized before the exit, not at the next start');
});
