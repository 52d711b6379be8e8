import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The ETag an S3 store computes for an object uploaded in parts of `partSize` (pure): the MD5 hex of the bytes when
 * it went up in one PUT (size ≤ partSize, as lib-storage does), else MD5 of the parts' binary MD5s + "-<parts>".
 */
export function expectedEtag(partMd5s: readonly Buffer[], wholeMd5: Buffer): string {
  if (partMd5s.length <= 1) return wholeMd5.toString('hex');
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}

/** The ETag as a store answers it, without quotes, lower case. */
export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '').trim().toLowerCase();
}

/** A pass-through stream that hashes the bytes going by: the whole MD5 and one MD5 per part of `partSize`. */
export class PartHasher extends Transform {
  private readonly whole = createHash('md5');
  private part: Hash = createHash('md5');
  private inPart = 0;
  private readonly parts: Buffer[] = [];
  bytes = 0;
  /** called with the running byte count */
  onBytes: ((n: number) => void) | undefined;

  constructor(private readonly partSize: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.whole.update(chunk);
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      // A full part is closed only when more bytes follow (a file of exactly k parts ends with a full part).
      if (this.inPart === this.partSize) this.closePart();
      const n = Math.min(chunk.length - off, this.partSize - this.inPart);
      this.part.update(chunk.subarray(off, off + n));
      this.inPart += n;
      off += n;
    }
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }

  private closePart(): void {
    this.parts.push(this.part.digest());
    this.part = createHash('md5');
    this.inPart = 0;
  }

  /** After the stream ended: the ETag the store should answer. */
  result(): { etag: string; md5: string; bytes: number } {
    const parts = [...this.parts];
    if (this.inPart > 0 || parts.length === 0) parts.push(this.part.copy().digest());
    const whole = this.whole.copy().digest();
    return { etag: expectedEtag(parts, whole), md5: whole.toString('hex'), bytes: this.bytes };
  }
}
