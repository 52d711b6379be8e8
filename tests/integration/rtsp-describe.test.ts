import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { describeRtsp } from '../../src/protocols/rtsp/describe';
import { decodeErrors, probe } from '../helpers/media';
import { rejectsWith } from '../helpers/rtsp-errors';
import { freePort, start, waitFor } from '../helpers/proc';
import { RTSP_MOUNTS, startRtspServer, type RtspMount } from '../helpers/rtsp-server';

const run = promisify(execFile);

const EXPECT: Record<RtspMount, { codecs: { video: string | null; audio: string | null }; ffprobe: string[] }> = {
  h264aac: { codecs: { video: 'H264', audio: 'AAC' }, ffprobe: ['video:h264', 'audio:aac'] },
  h264: { codecs: { video: 'H264', audio: null }, ffprobe: ['video:h264'] },
  h265: { codecs: { video: 'H265', audio: null }, ffprobe: ['video:hevc'] },
  h264pcma: { codecs: { video: 'H264', audio: 'PCMA' }, ffprobe: ['video:h264', 'audio:pcm_alaw'] },
  h264pcmu: { codecs: { video: 'H264', audio: 'PCMU' }, ffprobe: ['video:h264', 'audio:pcm_mulaw'] },
  mjpeg: { codecs: { video: 'MJPEG', audio: null }, ffprobe: ['video:mjpeg'] },
  aac: { codecs: { video: null, audio: 'AAC' }, ffprobe: ['audio:aac'] },
};
const PASSWORD = 'S3cr#t:pw@x';


test('describeRtsp learns every mount of a real RTSP server, and ffprobe streams the same codecs', async (t) => {
  const srv = await startRtspServer();
  t.after(() => srv.stop());
  for (const mount of Object.keys(RTSP_MOUNTS) as RtspMount[]) {
    const d = await describeRtsp(srv.url(mount), { timeoutMs: 5000 });
    assert.deepEqual(d.codecs, EXPECT[mount].codecs, mount);
    assert.match(d.sdp, /^v=0/);
    assert.equal(d.contentBase, `${srv.url(mount)}/`);
    assert.ok(d.media.every((m) => m.control.startsWith('stream=')), `${mount}: controls ${d.media.map((m) => m.control)}`);
  }
  for (const mount of Object.keys(RTSP_MOUNTS) as RtspMount[]) {
    const { stdout } = await run(
      'ffprobe',
      ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_type,codec_name', '-of', 'csv=p=0', srv.url(mount)],
      { timeout: 20_000 },
    );
    const streams = stdout.trim().split('\n').map((l) => l.split(',').reverse().join(':')).sort();
    assert.deepEqual(streams, [...EXPECT[mount].ffprobe].sort(), mount);
  }
  await rejectsWith(describeRtsp(srv.url('nope'), { timeoutMs: 5000 }), 'not-found');
  const noRtsps = await rejectsWith(describeRtsp(srv.url('h264').replace('rtsp:', 'rtsps:'), { timeoutMs: 5000 }), 'bad-url');
  assert.match(noRtsps.message, /rtsps:\/\/ .* not supported/);
});

test('Basic and Digest credentials from the URL; wrong ones give a 401 error without the password', async (t) => {
  for (const method of ['basic', 'digest'] as const) {
    const srv = await startRtspServer({ auth: { user: 'cam', password: PASSWORD, method } });
    t.after(() => srv.stop());
    const ok = await describeRtsp(srv.url('h264aac', { user: 'cam', password: PASSWORD }), { timeoutMs: 5000 });
    assert.deepEqual(ok.codecs, { video: 'H264', audio: 'AAC' }, method);
    assert.doesNotMatch(ok.contentBase, /cam:|S3cr/, 'Content-Base carries no credentials');
    const wrong = await rejectsWith(describeRtsp(srv.url('h264aac', { user: 'cam', password: 'Wr0ngPass' }), { timeoutMs: 5000 }), 'unauthorized');
    assert.equal(wrong.status, 401);
    assert.match(wrong.message, /wrong credentials for 127\.0\.0\.1:\d+/);
    assert.ok(!wrong.message.includes('Wr0ngPass') && !wrong.message.includes('cam:'), wrong.message);
    const none = await rejectsWith(describeRtsp(srv.url('h264aac'), { timeoutMs: 5000 }), 'unauthorized');
    assert.match(none.message, /needs credentials/);
  }
});

test('refused, frozen and restarted servers: errors are quick and bounded', async (t) => {
  const closed = await freePort();
  const t0 = Date.now();
  const refused = await rejectsWith(describeRtsp(`rtsp://u:${encodeURIComponent(PASSWORD)}@127.0.0.1:${closed}/x`, { timeoutMs: 5000 }), 'refused');
  assert.ok(Date.now() - t0 < 2000, `refused after ${Date.now() - t0} ms`);
  assert.match(refused.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
  assert.ok(!refused.message.includes('S3cr'), refused.message);

  const srv = await startRtspServer();
  t.after(() => srv.stop());
  srv.pause();
  const t1 = Date.now();
  const frozen = await rejectsWith(describeRtsp(srv.url('h264'), { timeoutMs: 1500 }), 'timeout');
  const took = Date.now() - t1;
  srv.resume();
  assert.ok(took >= 1400 && took < 2500, `timed out after ${took} ms`);
  assert.match(frozen.message, new RegExp(`no answer to DESCRIBE from 127\\.0\\.0\\.1:${srv.port} within 1500 ms`));
  assert.deepEqual((await describeRtsp(srv.url('h264'), { timeoutMs: 5000 })).codecs, { video: 'H264', audio: null }, 'answers again after SIGCONT');

  await srv.kill('SIGKILL');
  await rejectsWith(describeRtsp(srv.url('h264'), { timeoutMs: 3000 }), 'refused');
  await srv.restart();
  assert.deepEqual((await describeRtsp(srv.url('h265'), { timeoutMs: 5000 })).codecs, { video: 'H265', audio: null }, 'same port after restart');
});

/** A loopback TCP server answering each connection with `answer(request)`; resolves with its port. */
async function tinyServer(t: { after(fn: () => unknown): void }, answer: (req: string, sock: Socket) => void): Promise<number> {
  const socks = new Set<Socket>();
  const srv: Server = createServer((sock) => {
    socks.add(sock);
    sock.on('data', (d) => answer(d.toString('latin1'), sock));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  const a = srv.address();
  return typeof a === 'object' && a ? a.port : 0;
}

test('one redirect is followed (credentials only to the same host); a second one and non-RTSP answers are errors', async (t) => {
  const srv = await startRtspServer({ auth: { user: 'cam', password: PASSWORD } });
  t.after(() => srv.stop());
  const seen: string[] = [];
  const redirector = await tinyServer(t, (req, sock) => {
    seen.push(req);
    const cseq = /CSeq: (\d+)/.exec(req)?.[1] ?? '1';
    sock.write(`RTSP/1.0 302 Moved\r\nCSeq: ${cseq}\r\nLocation: rtsp://127.0.0.1:${srv.port}/h264pcmu\r\n\r\n`);
  });
  const d = await describeRtsp(`rtsp://cam:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redirector}/old`, { timeoutMs: 5000 });
  assert.deepEqual(d.codecs, { video: 'H264', audio: 'PCMU' });
  assert.match(seen[0] ?? '', new RegExp(`^DESCRIBE rtsp://127\\.0\\.0\\.1:${redirector}/old RTSP/1\\.0\r\n`), 'credentials stripped from the request line');
  assert.match(seen[0] ?? '', /\r\nAccept: application\/sdp\r\n/);

  const loop: number = await tinyServer(t, (_req, sock) => {
    sock.write(`RTSP/1.0 301 Moved\r\nCSeq: 1\r\nLocation: rtsp://127.0.0.1:${loop}/again\r\n\r\n`);
  });
  const twice = await rejectsWith(describeRtsp(`rtsp://127.0.0.1:${loop}/x`, { timeoutMs: 5000 }), 'status');
  assert.match(twice.message, /redirects more than once/);

  const http = await tinyServer(t, (_req, sock) => sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  const notRtsp = await rejectsWith(describeRtsp(`rtsp://127.0.0.1:${http}/x`, { timeoutMs: 5000 }), 'bad-answer');
  assert.match(notRtsp.message, /does not speak RTSP/);
  const hangUp = await tinyServer(t, (_req, sock) => sock.destroy());
  const closedEarly = await rejectsWith(describeRtsp(`rtsp://127.0.0.1:${hangUp}/x`, { timeoutMs: 5000 }), 'bad-answer');
  assert.match(closedEarly.message, /closed the connection before answering/);
  const noSdp = await tinyServer(t, (_req, sock) => sock.write('RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'));
  await rejectsWith(describeRtsp(`rtsp://127.0.0.1:${noSdp}/x`, { timeoutMs: 5000 }), 'bad-answer');
});

test('GStreamer pulls /h264aac across the clip loop into an MP4 that plays', async (t) => {
  const srv = await startRtspServer();
  t.after(() => srv.stop());
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-rtsp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'pull.mp4');
  const q = 'queue max-size-time=3000000000 max-size-buffers=0 max-size-bytes=0';
  const launch = [
    `rtspsrc location=${srv.url('h264aac')} protocols=tcp latency=200 name=s`,
    `s. ! application/x-rtp,media=video ! rtph264depay ! h264parse ! ${q} ! m.video_0`,
    `s. ! application/x-rtp,media=audio ! rtpmp4gdepay ! aacparse ! ${q} ! m.audio_0`,
    `mp4mux name=m ! filesink location=${out}`,
  ].join(' ');
  const gst = start('gst-launch-1.0', ['-e', ...launch.split(' ')]);
  t.after(() => gst.stop('SIGKILL'));
  // 10.5 s of wall time crosses the 8 s clip's loop point.
  const t0 = Date.now();
  await waitFor('10.5 s of RTSP pulled into the MP4', () => Date.now() - t0 > 10_500 && statSync(out, { throwIfNoEntry: false })?.size, 20_000, 200);
  await gst.stop('SIGINT', 8000);
  assert.match(gst.output(), /EOS/, `gst-launch did not finish on EOS:\n${gst.output().slice(-1500)}`);
  const p = await probe(out);
  const byType = new Map(p.streams.map((s) => [s.codec_type, s]));
  assert.equal(byType.get('video')?.codec_name, 'h264');
  assert.equal(byType.get('audio')?.codec_name, 'aac');
  const dur = Number(p.format.duration);
  assert.ok(dur > 9 && dur < 13, `duration ${dur} s: the loop must continue past 8 s without a jump`);
  const frames = Number((byType.get('video') as { nb_frames?: string } | undefined)?.nb_frames);
  assert.ok(Math.abs(frames / 25 - Number(byType.get('video')?.duration)) < 0.5, `${frames} frames for ${byType.get('video')?.duration} s of video: no gap at the loop`);
  assert.equal(await decodeErrors(out), '');
});
