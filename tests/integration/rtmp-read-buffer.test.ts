import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { RtmpIngest, type RtmpPublish } from '../../src/ingest/rtmp/ingest';
import { makeClip } from '../helpers/media';
import { start, waitFor } from '../helpers/proc';

const run = promisify(execFile);

// Issue 15: the RTMP ingest reads every connection into one reused buffer (no Buffer per socket read). Whatever
// keeps bytes from a read past its callback would see them overwritten by the next read, of this connection or
// another: the media out of the ingest must be the publisher's, packet for packet.

/** MD5 of every packet's payload, per track in order: "video" and "audio" lists. */
async function packetHashes(file: string): Promise<Record<string, string[]>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_data_hash', 'MD5', '-show_entries', 'packet=codec_type,data_hash', '-of', 'csv=p=0', file], { maxBuffer: 64 * 1024 * 1024 });
  const out: Record<string, string[]> = { video: [], audio: [] };
  for (const line of stdout.trim().split('\n')) {
    const [kind, hash] = line.split(',');
    if (kind && hash) (out[kind] ??= []).push(hash);
  }
  return out;
}

test('two publishers at full speed through a 997-byte read buffer: every audio and video packet arrives intact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-rtmp-rb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = pino({ level: 'warn' }, new Writable({ write: (_c, _e, cb) => cb() }));
  // 997 bytes: every RTMP chunk (ffmpeg sends 4096-byte chunks) and nearly every tag straddles reads
  const ingest = new RtmpIngest({ port: 0, bind: '127.0.0.1', publishToken: () => '', log, readBufferBytes: 997 });
  const collected = new Map<string, Buffer[]>();
  const ended = new Set<string>();
  ingest.on('publish', (pub: RtmpPublish) => {
    const chunks: Buffer[] = [];
    collected.set(pub.name, chunks);
    pub.onData((c) => chunks.push(c));
    pub.onEnd(() => ended.add(pub.name));
  });
  await ingest.start();
  t.after(() => ingest.close());
  // 720p H.264 + AAC, 2 × 6 s (~10 MB); no -re: the two publishers' reads interleave in the shared buffer
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 6, size: '1280x720' });
  const names = ['rb_a', 'rb_b'];
  const pubs = names.map((n) => start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-stream_loop', '1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${ingest.port}/live/${n}`]));
  t.after(() => Promise.all(pubs.map((p) => p.stop('SIGKILL'))));
  await waitFor('both publishes accepted', () => names.every((n) => collected.has(n)), 20_000, 20);
  await waitFor('both publishes ended', () => names.every((n) => ended.has(n)), 60_000, 20);
  // what the publishers sent: the same ffmpeg command into a file (ffmpeg's RTMP output is its FLV muxer)
  const sent = join(dir, 'sent.flv');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-stream_loop', '1', '-i', clip, '-c', 'copy', '-f', 'flv', sent]);
  const want = await packetHashes(sent);
  assert.ok((want.video?.length ?? 0) > 200 && (want.audio?.length ?? 0) > 400, `the clip has packets: ${want.video?.length} video, ${want.audio?.length} audio`);
  for (const n of names) {
    const file = join(dir, `${n}.flv`);
    const bytes = Buffer.concat(collected.get(n) ?? []);
    writeFileSync(file, bytes);
    const got = await packetHashes(file);
    for (const kind of ['video', 'audio'] as const) {
      const g = got[kind] ?? [];
      const w = want[kind] ?? [];
      const firstBad = w.findIndex((h, i) => g[i] !== h);
      assert.equal(firstBad, -1, `${n}: ${kind} packet ${firstBad} of ${w.length} sent differs or is missing (${g.length} arrived)`);
      assert.equal(g.length, w.length, `${n}: ${kind} packets arrived, sent`);
    }
    console.log(`# ${n}: ${bytes.length} FLV bytes, ${want.video?.length} video + ${want.audio?.length} audio packets identical`);
  }
});
