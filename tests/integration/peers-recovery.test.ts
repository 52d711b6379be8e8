import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { makeClip } from '../helpers/media';
import { settledRecordings } from '../helpers/recorded-file';
import { baseConf, startService } from '../helpers/service';

const run = promisify(execFile);

// Issue 12 (real peers) item 5: startup recovery of tmp files that have no row: kept (recovered) when they hold
// media, removed (and logged) when they are a muxer's header alone (what a camera failing at SETUP left).

test('startup: a rowless tmp file with media is recovered, one with no media is removed and logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-peers-recover-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(join(dir, 'records'), { recursive: true });
  writeFileSync(join(dir, 'edgerec.properties'), baseConf(dir));
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 3, size: '320x240' });
  const withMedia = join(tmp, 'rec-11111111-2222-3333-4444-555555555555-g1-00000.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', '-f', 'mp4', withMedia]);
  // ftyp + an empty moov: the ~1 KB file a muxer leaves when no media ever reached it
  const box = (type: string, body: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.from(type, 'latin1'), body]);
  const sized = (b: Buffer) => (b.writeUInt32BE(b.length, 0), b);
  const empty = join(tmp, 'rec-66666666-7777-8888-9999-aaaaaaaaaaaa-g1-00000.mp4');
  writeFileSync(empty, Buffer.concat([sized(box('ftyp', Buffer.from('iso6\0\0\0\0iso6mp41', 'latin1'))), sized(box('moov', Buffer.alloc(900)))]));
  const s = await startService({ dir });
  t.after(() => s.stop());
  const rows = await settledRecordings(s, 'unknown', 30_000);
  assert.deepEqual(rows.map((r) => [r.fileName.startsWith('recovered-rec-1111'), r.state]), [[true, 'recovered']], JSON.stringify(rows));
  assert.ok(!existsSync(empty), 'the header-only file is removed');
  assert.ok(s.logs().some((l) => l.msg === 'removed a temp file with no row and no media' && String(l.file).startsWith('rec-6666')), 'and that is logged');
});
