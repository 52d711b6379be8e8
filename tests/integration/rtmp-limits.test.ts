import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { encodeAmf0Cmd } from 'node-media-server/src/protocol/amf.js';
import { makeClip } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';
import { rtmpPort, startService } from '../helpers/service';

// Issue 18 items 3 and 4: connections that never publish cannot lock publishers out or hold memory.

const TOKEN = 'hostile-ingest-token';

/** Resident set size of a process, bytes. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A type-0 chunk header on chunk stream `cid` for a message of `length` bytes of `type` on message stream 0. */
function chunkHeader(cid: number, length: number, type: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = cid;
  b.writeUIntBE(length, 4, 3);
  b[7] = type;
  return b;
}

/** `payload` as one message in chunks of `chunkSize` (type-3 headers between them). */
function message(cid: number, type: number, payload: Buffer, chunkSize: number): Buffer {
  const parts = [chunkHeader(cid, payload.length, type)];
  for (let o = 0; o < payload.length; o += chunkSize) {
    if (o > 0) parts.push(Buffer.from([0xc0 | cid]));
    parts.push(payload.subarray(o, Math.min(payload.length, o + chunkSize)));
  }
  return Buffer.concat(parts);
}

test('500 idle RTMP connections (a byte every 3 s, reconnecting 1 s after a drop) do not lock out a publisher with the token: it records within 2 s', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '320x180', gop: 25 });
  const s = await startService({ conf: `publish_auth_token=${TOKEN}\nstream_record_policy_template={streamName}-{startTimeMillis}\n` });
  t.after(() => s.stop());
  const port = await rtmpPort(s);

  // 250 from the publisher's own address, 250 from 25 other loopback addresses; those reconnect when dropped.
  const sockets = new Set<Socket>();
  let stopping = false;
  let connects = 0;
  let reconnects = 0;
  const open = (localAddress: string, reconnect: boolean): void => {
    if (stopping || connects >= 5000) return;
    connects++;
    const sock = connect({ port, host: '127.0.0.1', localAddress });
    sockets.add(sock);
    let timer: NodeJS.Timeout | null = null;
    sock.on('connect', () => {
      sock.write(Buffer.from([3])); // C0, then C1 one byte at a time
      timer = setInterval(() => sock.write(Buffer.from([0])), 3000);
    });
    sock.on('error', () => undefined);
    sock.on('data', () => undefined);
    sock.on('close', () => {
      if (timer) clearInterval(timer);
      sockets.delete(sock);
      if (reconnect && !stopping) {
        reconnects++;
        setTimeout(() => open(localAddress, true), 1000);
      }
    });
  };
  t.after(() => {
    stopping = true;
    for (const x of sockets) x.destroy();
  });
  const flood = 250;
  for (let i = 0; i < flood; i++) open('127.0.0.1', false);
  for (let i = 0; i < flood; i++) open(`127.0.1.${1 + (i % 25)}`, true);
  await waitFor('500 connections made', () => connects >= 2 * flood && [...sockets].every((x) => !x.connecting), 15_000, 50);
  await new Promise((r) => setTimeout(r, 1000));
  const h = (await s.json('/rest-api/health')).body as { rtmp: { pending: number } };
  t.diagnostic(`pending at the service: ${h.rtmp.pending}, connections open at the attacker: ${sockets.size}, reconnects: ${reconnects}`);
  assert.ok(h.rtmp.pending <= 64, `pending connections held within rtmp_max_pending_connections: ${h.rtmp.pending}`);

  const t0 = Date.now();
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/victim?token=${TOKEN}`]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor(
    'the publisher to record',
    async () => {
      const r = await s.post('/rest-api/recorder/find_all');
      return r.status === 200 && (r.body as { mediaSessionId: string; fileName: string }[]).some((x) => x.fileName.startsWith('victim-'));
    },
    2000,
    25,
  );
  t.diagnostic(`recording ${Date.now() - t0} ms after the publisher started`);
  for (const l of s.logs().filter((x) => x.stream === 'victim' || String(x.msg).includes('token shown'))) t.diagnostic(`${Date.parse(String(l.time)) - t0} ms ${String(l.msg)}`);
  // It goes on recording while the flood goes on, and its file is complete at the end.
  const done = await pub.exited;
  assert.equal(done.code, 0, pub.output());
  const rows = await waitFor(
    'the victim file to be complete',
    async () => {
      const r = await s.json('/rest-api/recordings?stream=victim&limit=100');
      const list = (r.body as { recordings: { state: string; durationMs: number }[] }).recordings;
      return list.length > 0 && list.every((x) => x.state === 'complete') ? list : null;
    },
    20_000,
    100,
  );
  const ms = rows.reduce((n, x) => n + x.durationMs, 0);
  assert.ok(ms > 4500, `the victim recorded its 6 s clip: ${ms} ms`);
  assert.ok(reconnects > 0, 'the flood was being dropped and came back');
});

test('20 max-size messages on unauthenticated RTMP connections: service RSS stays within 100 MB of its baseline', async (t) => {
  // 20 attackers as if from 20 addresses: with the default per-address cap (8) the later connections displace the
  // earlier ones before their handshake answer when the service is slow to answer (14/20 in one clean-clone run);
  // the cap is tested on its own above, here every attacker must get its message out
  const s = await startService({ conf: `publish_auth_token=${TOKEN}\nrtmp_max_pending_per_ip=32\n` });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const maxMessage = 8 * 1024 * 1024; // rtmp_max_message_size default
  const maxChunk = 1024 * 1024; // rtmp_max_chunk_size default
  await new Promise((r) => setTimeout(r, 1500));
  const baseline = rssOf(s.proc.pid);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(s.proc.pid))), 20);
  t.after(() => clearInterval(sampler));

  const connectCmd = encodeAmf0Cmd({ cmd: 'connect', transId: 1, cmdObj: { app: 'live', tcUrl: `rtmp://127.0.0.1:${port}/live`, type: 'nonprivate' } });
  const setChunk = Buffer.alloc(4);
  setChunk.writeUInt32BE(maxChunk);
  const payload = Buffer.alloc(maxMessage, 0x17); // "filled to the last byte"
  const attack = (): Promise<number> =>
    new Promise((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let got = 0;
      let sent = 0;
      sock.on('error', () => undefined);
      sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)])));
      sock.on('data', (d) => {
        got += d.length;
        if (sent === 0 && got >= 1 + 2 * 1536) {
          sent = 1;
          sock.write(Buffer.alloc(1536)); // C2
          sock.write(message(3, 20, connectCmd, 128));
          sock.write(message(2, 1, setChunk, 128));
          sock.write(message(6, 9, payload, maxChunk), () => (sent = 2));
        }
      });
      sock.on('close', () => resolve(sent));
      setTimeout(() => sock.destroy(), 20_000).unref();
    });
  const results = await Promise.all(Array.from({ length: 20 }, attack));
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(sampler);
  peak = Math.max(peak, rssOf(s.proc.pid));
  t.diagnostic(`RSS baseline ${(baseline / 1e6).toFixed(0)} MB, peak ${(peak / 1e6).toFixed(0)} MB; attackers that got their bytes out: ${results.filter((x) => x === 2).length}/20`);
  assert.ok(results.every((x) => x >= 1), 'every attacker got through the handshake');
  assert.ok(peak - baseline < 100 * 1024 * 1024, `RSS grew ${((peak - baseline) / 1e6).toFixed(0)} MB`);
  const h = await s.json('/rest-api/health');
  assert.equal(h.status, 200, 'the service is fine');
});

test('a wrong token in the connect URL is refused at connect, before createStream or publish', async (t) => {
  const s = await startService({ conf: `publish_auth_token=${TOKEN}\n` });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const answer = await new Promise<string>((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    sock.on('error', () => undefined);
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)])));
    sock.on('data', (d) => {
      got += d.length;
      chunks.push(d);
      if (got >= 1 + 2 * 1536 && got - d.length < 1 + 2 * 1536) {
        sock.write(Buffer.alloc(1536));
        const cmd = encodeAmf0Cmd({ cmd: 'connect', transId: 1, cmdObj: { app: 'live', tcUrl: `rtmp://127.0.0.1:${port}/live?token=wrong` } });
        sock.write(message(3, 20, cmd, 128));
      }
    });
    sock.on('close', () => resolve(Buffer.concat(chunks).subarray(1 + 2 * 1536).toString('latin1')));
    setTimeout(() => sock.destroy(), 10_000).unref();
  });
  assert.match(answer, /NetStream\.Publish\.Unauthorized/);
  assert.doesNotMatch(answer, /NetConnection\.Connect\.Success/);
  await waitFor('the refusal in the log', () => s.logs().some((l) => l.msg === 'RTMP publisher refused' && l.reason === 'publish token wrong'), 5000, 50);
  assert.ok(!s.proc.output().includes('token=wrong'), 'the presented token is not logged');
});

test('a peer that sends commands but never reads the answers is dropped before they pile up', async (t) => {
  const s = await startService({ conf: `publish_auth_token=${TOKEN}\n` });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const connectCmd = message(3, 20, encodeAmf0Cmd({ cmd: 'connect', transId: 1, cmdObj: { app: 'live', tcUrl: `rtmp://127.0.0.1:${port}/live` } }), 128);
  const flood = Buffer.concat([Buffer.from([3]), Buffer.alloc(1536 * 2), ...Array.from({ length: 40_000 }, () => connectCmd)]);
  const baseline = rssOf(s.proc.pid);
  const t0 = Date.now();
  const sock = connect(port, '127.0.0.1', () => sock.write(flood));
  sock.pause(); // never read
  sock.on('error', () => undefined);
  t.after(() => sock.destroy());
  await waitFor(
    'the connection dropped for a limit (not the deadline)',
    async () => /edgerec_rtmp_pending_dropped_total\{reason="limit"\} 1/.test(String((await s.json('/metrics')).body)),
    9000,
    100,
  );
  t.diagnostic(`dropped after ${Date.now() - t0} ms; RSS ${(baseline / 1e6).toFixed(0)} → ${(rssOf(s.proc.pid) / 1e6).toFixed(0)} MB`);
  assert.match(String((await s.json('/metrics')).body), /edgerec_rtmp_pending_dropped_total\{reason="limit"\} 1\n/);
});
