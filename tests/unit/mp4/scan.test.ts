import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { readFmp4 } from '../../../src/mp4/scan';

const run = promisify(execFile);
let dir = '';
let whole: Buffer;
/** top-level boxes of the whole file: [type, offset, length] */
let boxes: [string, number, number][] = [];

// A real fragmented MP4 as the recorder writes it (mp4mux fragment-duration=1000): video and audio fragments.
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerec-fmp4-'));
  const path = join(dir, 'av.mp4');
  await run('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=75', '!', 'video/x-raw,width=320,height=180,framerate=25/1', '!', 'x264enc', 'key-int-max=25', '!', 'h264parse', '!', 'mux.video_0',
    'audiotestsrc', 'num-buffers=130', '!', 'avenc_aac', '!', 'aacparse', '!', 'mux.audio_0', 'mp4mux', 'name=mux', 'fragment-duration=1000', '!', 'filesink', `location=${path}`]);
  whole = readFileSync(path);
  for (let off = 0; off + 8 <= whole.length && boxes.length < 1000; ) {
    const len = whole.readUInt32BE(off);
    boxes.push([whole.toString('latin1', off + 4, off + 8), off, len]);
    off += len;
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function readPrefix(bytes: number) {
  const p = join(dir, `cut-${bytes}.mp4`);
  writeFileSync(p, whole.subarray(0, bytes));
  return readFmp4(p);
}

test('a whole fragmented MP4: every fragment complete, both tracks hold samples', async () => {
  const f = await readFmp4(join(dir, 'av.mp4'));
  assert.equal(f.length, whole.length);
  assert.equal(f.fragments, boxes.filter((b) => b[0] === 'mdat').length);
  assert.ok(f.fragments >= 3, `${f.fragments} fragments`);
  assert.deepEqual([f.video, f.audio], [true, true]);
});

test('cut inside an mdat: the complete part ends before that fragment\'s moof', async () => {
  const mdats = boxes.filter((b) => b[0] === 'mdat');
  const last = mdats[mdats.length - 1];
  assert.ok(last);
  const moof = boxes[boxes.indexOf(last) - 1];
  assert.equal(moof?.[0], 'moof');
  const f = await readPrefix(last[1] + Math.floor(last[2] / 2));
  assert.equal(f.length, moof?.[1]);
  assert.equal(f.fragments, mdats.length - 1);
});

test('cut after the first fragment: only the track that fragment holds (a remux must not wait for the other)', async () => {
  const first = boxes.find((b) => b[0] === 'mdat');
  assert.ok(first);
  const f = await readPrefix(first[1] + first[2]);
  assert.equal(f.fragments, 1);
  assert.equal(f.video !== f.audio, true, `one track only in the first fragment: video ${f.video}, audio ${f.audio}`);
});

test('moov only (killed before the first fragment): no fragments, no samples', async () => {
  const moov = boxes.find((b) => b[0] === 'moov');
  assert.ok(moov);
  const f = await readPrefix(moov[1] + moov[2] + 100);
  assert.deepEqual([f.fragments, f.video, f.audio], [0, false, false]);
  assert.equal(f.length, moov[1] + moov[2]);
});
