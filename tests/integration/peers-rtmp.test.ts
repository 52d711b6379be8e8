import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FlvParser } from '../../src/ingest/rtmp/flv';
import { decodeErrors, makeClip, probe } from '../helpers/media';
import { checkPeerFile } from '../helpers/peer-file';
import { start, waitFor } from '../helpers/proc';
import { download, settledRecordings } from '../helpers/recorded-file';
import { rtmpPort, startService } from '../helpers/service';

// Issue 12 (real peers) item 1 and issue 18 item 9: an RTMP publisher whose video timestamps repeat and step back
// (x264enc ! flvmux ! rtmp2sink on a loaded box did that) must give one clean file, as long as what was sent.

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'edgerec-peers-rtmp-'));

function setTs(b: Buffer, ts: number): void {
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b[7] = (ts >>> 24) & 0xff;
}

/** The clip as FLV with video timestamps repeated (three pairs) and stepping back 80 ms once; audio untouched. */
async function damagedFlv(): Promise<{ path: string; seconds: number }> {
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', seconds: 12, container: 'flv', gop: 25, size: '320x240' }));
  const p = new FlvParser();
  const tags = p.push(clip);
  const out = [p.headerBytes() ?? Buffer.alloc(0)];
  let n = 0;
  let prev = 0;
  let last = 0;
  for (const t of tags) {
    const b = Buffer.from(t.bytes);
    if (t.type === 9 && !t.sequenceHeader) {
      n++;
      if (n === 40 || n === 80 || n === 160) setTs(b, prev); // equal to the tag before
      if (n === 120) setTs(b, prev - 80); // backward
      prev = t.timestamp;
      last = t.timestamp;
    }
    out.push(b);
  }
  const path = join(work, 'damaged.flv');
  writeFileSync(path, Buffer.concat(out));
  return { path, seconds: (last + 40) / 1000 };
}

test('an FLV with repeated and backward video timestamps, replayed over RTMP by ffmpeg: one clean file as long as what was sent', async (t) => {
  const flv = await damagedFlv();
  const s = await startService({ conf: 'stream_record_policy_template={streamName}-{startTimeMillis}-{endTimeMillis}\n' });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  // -c copy: ffmpeg passes the repeated timestamps through as they are (the backward one becomes a repeat)
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', flv.path, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/jumpy`]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor('ffmpeg to finish publishing', () => pub.child.exitCode !== null, 40_000, 200);
  const rows = await settledRecordings(s, 'jumpy', 30_000);
  assert.deepEqual(rows.map((r) => r.state), ['complete'], `one complete file, no failed row: ${JSON.stringify(rows.map((r) => [r.fileName, r.state, r.error]))}`);
  const row = rows[0];
  assert.ok(row?.url);
  const file = await download(s.base, row.url, work);
  const facts = await checkPeerFile(file, row);
  assert.deepEqual(facts.tracks, ['audio:aac', 'video:h264']);
  assert.ok(Math.abs(facts.seconds - flv.seconds) <= 0.1, `the file holds ${facts.seconds} s, ${flv.seconds} s were sent`);
  // counted (health and find_all) and logged once per burst, not per frame
  const repairLines = s.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('timestamps the muxer cannot take'));
  assert.ok(repairLines.length >= 1 && repairLines.length <= 4, `repair bursts logged ${repairLines.length} times`);
  const m = await fetch(`${s.base}/metrics`).then((r) => r.text());
  assert.match(m, /edgerec_timestamp_repairs\{stream="jumpy",kind="nudged"\} [1-9]/);
});

// Third-party RTMP clients from Debian's archive: GStreamer's rtmp2sink (its own RTMP code) and rtmpsink (librtmp,
// the library many encoders are built on), each behind flvmux — what a GStreamer-based encoder box publishes with.
// The clip is paced in real time by `identity sync=true`; at its end the publisher sends deleteStream and closes the
// connection itself: gst-launch must end without an error (rtmp2sink failed with "connection closed remotely" when the
// server hung up first) and the recording must hold what was sent (rtmp2sink's jittered AAC timestamps made the guard
// nudge every later frame: 8.6 s of audio for 8 s sent, or a stalled muxer).
for (const sink of ['rtmp2sink', 'rtmpsink'] as const) test(`GStreamer ${sink} publishes H.264 + AAC with ?record=true: one clean file as long as what was sent, and the publisher ends without an error`, async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 8, container: 'flv', gop: 25, size: '320x240' });
  const s = await startService({ conf: 'stream_record_policy_template={streamName}-{startTimeMillis}-{endTimeMillis}\n' });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const pipeline = [
    'filesrc', `location=${clip}`, '!', 'flvdemux', 'name=d',
    'd.video', '!', 'queue', '!', 'h264parse', '!', 'identity', 'sync=true', '!', 'flvmux', 'streamable=true', 'name=m', '!',
    sink, `location=rtmp://127.0.0.1:${port}/live/${sink}?record=true`,
    'd.audio', '!', 'queue', '!', 'aacparse', '!', 'identity', 'sync=true', '!', 'm.',
  ];
  const pub = start('gst-launch-1.0', ['-e', ...pipeline]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor('gst-launch-1.0 to finish publishing', () => pub.child.exitCode !== null || pub.child.signalCode !== null, 40_000, 200);
  const { code } = await pub.exited;
  assert.equal(code, 0, `gst-launch-1.0 … ${sink} ended with ${String(code)}: ${pub.output().slice(-1500)}`);
  assert.doesNotMatch(pub.output(), /ERROR/, `${sink} reported no error`);
  const rows = await settledRecordings(s, sink, 30_000);
  assert.deepEqual(rows.map((r) => r.state), ['complete'], `one complete file: ${JSON.stringify(rows.map((r) => [r.fileName, r.state, r.error]))}`);
  const row = rows[0];
  assert.ok(row?.url);
  const file = await download(s.base, row.url, work);
  const facts = await checkPeerFile(file, row);
  assert.deepEqual(facts.tracks, ['audio:aac', 'video:h264']);
  assert.ok(Math.abs(facts.seconds - 8) <= 0.3, `the file holds ${facts.seconds} s of the 8 s sent`);
});

// A hand-made quirk: a publisher whose audio starts 3 s after its video (an encoder whose audio device opens late).
// In the clip, video starts at 23 ms (ffmpeg's AAC priming) and the audio at 3 s.
// flvdemux has one thread for both tracks; with queue's default 1 s per branch, splitmuxsink held the video waiting
// for audio, the full queue blocked the demuxer, and the audio never came: no file at all (1.5 s late: 2 s of 10 lost
// and "no EOS in time").
test('audio starting 3 s after the video: the file holds all the video with the audio in its place, and it is finalized at once when the publisher leaves', async (t) => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 10, container: 'flv', gop: 25, size: '320x240' });
  const late = join(work, 'audio-late.flv');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', clip, '-itsoffset', '3', '-i', clip, '-map', '0:v', '-map', '1:a', '-c', 'copy', late]);
  const s = await startService({ conf: '' });
  t.after(() => s.stop());
  const port = await rtmpPort(s);
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', late, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/latecam?record=true`]);
  t.after(() => pub.stop('SIGKILL'));
  await waitFor('ffmpeg to finish publishing', () => pub.child.exitCode !== null, 40_000, 200);
  const rows = await settledRecordings(s, 'latecam', 6_000);
  assert.deepEqual(rows.map((r) => r.state), ['complete'], `one complete file: ${JSON.stringify(rows.map((r) => [r.fileName, r.state, r.error]))}`);
  assert.equal(s.logs().filter((l) => String(l.msg).startsWith('no EOS in time')).length, 0, 'the pipeline ended on its EOS, not on the watchdog');
  const file = await download(s.base, rows[0]?.url ?? '', work);
  const p = await probe(file);
  const v = p.streams.find((x) => x.codec_type === 'video');
  assert.ok(p.streams.some((x) => x.codec_type === 'audio'), 'the late audio is in the file');
  assert.ok(Math.abs(Number(v?.duration) - 10) <= 0.3, `the file holds ${String(v?.duration)} s of the 10 s of video sent`);
  // and the audio keeps its place: a silent frame at 0, then the first real frame 3 s after the first video frame
  // (GStreamer's fragmented mp4mux starts every track of a file at 0: without the filler it played 3 s early)
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file]);
  const [a0, a1] = stdout.trim().split('\n').map(Number);
  const { stdout: vout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', '-read_intervals', '%+#1', file]);
  const v0 = Number(vout.trim().split('\n')[0]);
  assert.equal(a0, v0, 'the audio track starts with the video');
  assert.ok(Math.abs((a1 ?? 0) - v0 - 2.977) <= 0.05, `the first real audio frame is ${String(a1)} s into the file, 2.977 s after the video's first frame (${v0} s) as sent`);
  assert.equal(s.logs().filter((l) => String(l.msg).startsWith('audio starts after the video')).length, 1, 'said once in the log');
  assert.equal(await decodeErrors(file), '', 'the file decodes with no error (the silent frame included)');
});
