import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AppError } from '../../../src/lib/errors';
import { childBoxes, makeBox, makeFullBox, parseHeader } from '../../../src/mp4/boxes';
import { copyRanges, spanReads } from '../../../src/mp4/copy';
import { Mp4FormatError } from '../../../src/mp4/format-error';
import { layoutMedia } from '../../../src/mp4/layout';
import { BoxFile, type ByteReader } from '../../../src/mp4/reader';
import { holdsMp4Media } from '../../../src/mp4/scan';
import { readHeaderTimes, withDuration } from '../../../src/mp4/track';

/** A ByteReader over a buffer. */
function reader(buf: Buffer): ByteReader {
  return { read: async (b, off, len, pos) => ({ bytesRead: buf.copy(b, off, pos, Math.min(buf.length, pos + len)) }) };
}

/** A box with a 64-bit size (largesize) holding `body`. */
function largeBox(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(1, 0);
  h.write(type, 4, 'latin1');
  h.writeBigUInt64BE(BigInt(16 + body.length), 8);
  return Buffer.concat([h, body]);
}

async function collect(file: BoxFile): Promise<Array<[string, number, number, number]>> {
  const out: Array<[string, number, number, number]> = [];
  for await (const b of file.boxes()) out.push([b.type, b.start, b.body, b.end]);
  return out;
}

describe('box reader', () => {
  it('reads 32-bit, 64-bit and to-the-end sizes with one BoxRef shape', () => {
    const buf = Buffer.concat([makeBox('ftyp', Buffer.alloc(8)), largeBox('mdat', Buffer.alloc(20)), Buffer.from([0, 0, 0, 0]), Buffer.from('free'), Buffer.alloc(6)]);
    assert.deepEqual(childBoxes(buf).map((b) => [b.type, b.start, b.body, b.end, b.size]), [
      ['ftyp', 0, 8, 16, 16],
      ['mdat', 16, 32, 52, 36],
      ['free', 52, 60, 66, 14],
    ]);
    assert.equal(parseHeader(buf, 16, 15), null, 'a 64-bit header that does not fit');
  });

  it('walks the top-level boxes of a file; the last may run past the end; a header smaller than itself throws', async () => {
    const whole = Buffer.concat([makeBox('ftyp', Buffer.alloc(8)), largeBox('moof', Buffer.alloc(4)), makeBox('mdat', Buffer.alloc(100))]);
    const cut = whole.subarray(0, whole.length - 40);
    assert.deepEqual(await collect(new BoxFile(reader(cut), cut.length)), [['ftyp', 0, 8, 16], ['moof', 16, 32, 36], ['mdat', 36, 44, 144]]);
    const bad = Buffer.concat([makeBox('ftyp', Buffer.alloc(8)), Buffer.from([0, 0, 0, 4]), Buffer.from('junk')]);
    await assert.rejects(collect(new BoxFile(reader(bad), bad.length)), (e: unknown) => e instanceof Mp4FormatError && /bad box header at byte 16/.test(e.reason));
  });

  it('finds media in a tmp file: a moof or a non-empty mdat, after a 64-bit box', async () => {
    const head = Buffer.concat([makeBox('ftyp', Buffer.alloc(8)), largeBox('free', Buffer.alloc(3))]);
    assert.equal(await holdsMp4Media(reader(head), head.length), false);
    const withMdat = Buffer.concat([head, makeBox('mdat', Buffer.alloc(9))]);
    assert.equal(await holdsMp4Media(reader(withMdat), withMdat.length), true);
    const junk = Buffer.from('not an mp4 at all');
    assert.equal(await holdsMp4Media(reader(junk), junk.length), false);
  });

  it('its one error is a 422 BAD_MEDIA that names the reason', () => {
    const e = new Mp4FormatError('stsz says 3 samples');
    assert.ok(e instanceof AppError);
    assert.deepEqual([e.code, e.status, e.reason], ['BAD_MEDIA', 422, 'stsz says 3 samples']);
    assert.match(e.message, /damaged or unsupported MP4 \[reason: stsz says 3 samples\]/);
  });
});

describe('box writer', () => {
  it('a version 0 duration too large for 32 bits widens the box to version 1', () => {
    const body = Buffer.alloc(96); // mvhd v0: times 4+4, timescale, duration, then the rest
    body.writeUInt32BE(11, 0);
    body.writeUInt32BE(22, 4);
    body.writeUInt32BE(90_000, 8);
    body.writeUInt32BE(5, 12);
    body.writeUInt32BE(0xabcdef, 92);
    const raw = makeFullBox('mvhd', 0, 0, body);
    const box = { type: 'mvhd', raw, body: raw.subarray(8) };
    const small = withDuration(box, 1234);
    assert.deepEqual(readHeaderTimes({ type: 'mvhd', raw: small, body: small.subarray(8) }), { timescale: 90_000, duration: 1234 });
    const big = withDuration(box, 5e9);
    const b = big.subarray(8);
    assert.equal(b[0], 1, 'version 1');
    assert.equal(big.length, raw.length + 12);
    assert.deepEqual(readHeaderTimes({ type: 'mvhd', raw: big, body: b }), { timescale: 90_000, duration: 5e9 });
    assert.deepEqual([Number(b.readBigUInt64BE(4)), Number(b.readBigUInt64BE(12)), b.readUInt32BE(b.length - 4)], [11, 22, 0xabcdef]);
  });
});

describe('media layout and copy', () => {
  it('puts back-to-back samples of a track in one chunk, in source order, and refuses overlapping samples', () => {
    const video = { offset: [100, 110, 300], size: [10, 20, 5], sdi: [1, 1, 1], a: 0, b: 3 };
    const audio = { offset: [130, 140], size: [10, 10], sdi: [1, 1], a: 0, b: 2 };
    const m = layoutMedia([video, audio]);
    assert.deepEqual(m.chunks, [[{ first: 0, count: 2, offset: 0 }, { first: 2, count: 1, offset: 50 }], [{ first: 0, count: 2, offset: 30 }]]);
    assert.deepEqual(m.pieces, [{ file: 0, src: 100, len: 50, out: 0 }, { file: 0, src: 300, len: 5, out: 50 }]);
    assert.equal(m.dataLen, 55);
    assert.throws(() => layoutMedia([video, { ...audio, offset: [125, 140] }]), /overlaps other samples/);
  });

  it('plans reads that span small gaps, per file, in offset order, split at the largest read', () => {
    const ranges = [{ file: 1, src: 500, len: 10 }, { file: 0, src: 0, len: 10 }, { file: 0, src: 15, len: 10 }, { file: 0, src: 1000, len: 30 }, { file: 1, src: 490, len: 5 }];
    const { reads, segments } = spanReads(ranges, 100);
    assert.deepEqual(reads, [{ file: 0, src: 0, len: 25 }, { file: 0, src: 1000, len: 30 }, { file: 1, src: 490, len: 20 }]);
    assert.deepEqual(segments, [[[2, 10, 10]], [[0, 0, 10]], [[0, 15, 10]], [[1, 0, 30]], [[2, 0, 5]]]);
    const split = spanReads([{ src: 0, len: 10 }, { src: 12, len: 25 }], 100, 16);
    assert.deepEqual(split.reads, [{ file: 0, src: 0, len: 16 }, { file: 0, src: 16, len: 16 }, { file: 0, src: 32, len: 5 }]);
    assert.deepEqual(split.segments, [[[0, 0, 10]], [[0, 12, 4], [1, 0, 16], [2, 0, 5]]]);
  });

  it('copies ranges across small and large gaps, block by block, to the right place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerec-copy-'));
    try {
      const src = Buffer.alloc(300_000);
      for (let i = 0; i < src.length; i++) src[i] = (i * 7) % 251;
      const ranges = [{ src: 10, len: 5000 }, { src: 5100, len: 70_000 }, { src: 200_000, len: 3 }, { src: 200_010, len: 90_000 }];
      const out = await open(join(dir, 'out'), 'w+');
      const end = await copyRanges(reader(src), out, ranges, 7, 16 * 1024);
      await out.close();
      const want = Buffer.concat([Buffer.alloc(7), ...ranges.map((r) => src.subarray(r.src, r.src + r.len))]);
      assert.equal(end, want.length);
      assert.ok(readFileSync(join(dir, 'out')).equals(want));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
