import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FlvParser, flvCodecs, rebaseTag } from '../../../../src/ingest/rtmp/flv';
import { makeClip } from '../../../helpers/media';

test('FlvParser splits a real FLV into tags, in any chunking, and keeps a clean start', async () => {
  const clip = readFileSync(await makeClip({ video: 'h264', audio: 'aac', seconds: 6, container: 'flv', gop: 25 }));
  const whole = new FlvParser().push(clip);
  // chunked at odd sizes gives the same tags
  const p = new FlvParser();
  const chunked = [];
  for (let off = 0, step = 1; off < clip.length; off += step, step = (step * 7 + 3) % 9000 || 1) chunked.push(...p.push(clip.subarray(off, off + step)));
  assert.equal(chunked.length, whole.length);
  assert.ok(whole.length > 6 * 25, `expected at least one tag per frame, got ${whole.length}`);
  const key = whole.filter((t) => t.keyframe);
  assert.ok(key.length >= 5 && key.length <= 8, `keyframes every second over 6 s, got ${key.length}`);
  assert.equal(whole.filter((t) => t.sequenceHeader).length, 2, 'one AVC and one AAC sequence header');
  assert.deepEqual(flvCodecs(p.configs().video, p.configs().audio), { video: 'H264', audio: 'AAC' });
  assert.deepEqual(p.flags(), { video: true, audio: true });
  const start = p.startTags();
  assert.equal(start[0]?.type, 18, 'metadata first');
  assert.ok(start[1]?.sequenceHeader && start[2]?.sequenceHeader, 'then the sequence headers');
  assert.ok(start[3]?.keyframe, 'then the GOP, from its keyframe');
  assert.equal(p.headerBytes()?.length, 13);
});

test('rebaseTag moves the timestamp, including the extended byte, and never below 0', () => {
  const tag = Buffer.alloc(11 + 2 + 4);
  tag[0] = 9;
  tag.writeUIntBE(2, 1, 3);
  const ts = 0x01_23_45_67;
  tag.writeUIntBE(ts & 0xffffff, 4, 3);
  tag[7] = ts >>> 24;
  const [parsed] = new FlvParser().push(Buffer.concat([Buffer.from('FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'), tag]));
  assert.ok(parsed);
  assert.equal(parsed.timestamp, ts);
  const moved = rebaseTag(parsed, ts - 1000);
  assert.equal(moved.readUIntBE(4, 3) | ((moved[7] ?? 0) << 24), 1000);
  assert.equal(rebaseTag(parsed, ts + 5).readUIntBE(4, 3), 0);
  assert.equal(parsed.bytes.readUIntBE(4, 3), ts & 0xffffff, 'the original is not changed');
});
