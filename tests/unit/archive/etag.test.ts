import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { expectedEtag, normalizeEtag, PartHasher } from '../../../src/archive/etag';

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

/** The S3 multipart ETag computed the long way: parts of partSize, the last one shorter (or full). */
function s3Etag(data: Buffer, partSize: number): string {
  if (data.length <= partSize) return md5(data).toString('hex');
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += partSize) parts.push(md5(data.subarray(off, off + partSize)));
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

async function hashIn(data: Buffer, partSize: number, chunk: number): Promise<ReturnType<PartHasher['result']>> {
  const h = new PartHasher(partSize);
  const chunks: Buffer[] = [];
  for (let off = 0; off < data.length; off += chunk) chunks.push(data.subarray(off, off + chunk));
  await pipeline(Readable.from(chunks), h, new Writable({ write: (_c, _e, cb) => cb() }));
  return h.result();
}

test('PartHasher: the ETag of one PUT or of N parts, whatever the chunking, including sizes on a part boundary', async () => {
  const part = 1000;
  for (const size of [0, 1, 999, 1000, 1001, 2000, 2001, 3500]) {
    const data = randomBytes(size);
    for (const chunk of [1, 7, 256, 1000, 4096]) {
      const r = await hashIn(data, part, chunk);
      assert.equal(r.etag, s3Etag(data, part), `size ${size}, chunks of ${chunk}`);
      assert.equal(r.md5, md5(data).toString('hex'));
      assert.equal(r.bytes, size);
    }
  }
});

test('expectedEtag and normalizeEtag', () => {
  const a = md5(Buffer.from('a'));
  assert.equal(expectedEtag([a], a), a.toString('hex'));
  assert.match(expectedEtag([a, a], a), /^[0-9a-f]{32}-2$/);
  assert.equal(normalizeEtag('"ABC-2"'), 'abc-2');
});
