/**
 * Buffers cut from reused slabs (the RTMP path's tag bytes): one ArrayBuffer per slab, and a slab goes back to its
 * pool, to be cut again, once nothing holds any buffer cut from it. No fresh external memory per tag, so the media
 * rate drives no V8 garbage collection.
 *
 * Who keeps a buffer cut from a slab past the call that handed it over says so: `holdBytes(b)` when it starts
 * keeping it, `releaseBytes(b)` when it no longer reads it (for bytes written to a pipe: once the write completed).
 * Someone that keeps a buffer without that promise calls `pinBytes(b)`: its slab is never reused (the GC frees it).
 * A missed release only keeps a slab from being reused; a release too early lets its bytes be overwritten.
 * All three are no-ops for buffers not cut from a slab.
 */

interface Slab {
  readonly buf: Buffer;
  /** holders of any buffer cut from it, plus one while it is the pool's current slab */
  refs: number;
  /** a holder that does not release has one of its buffers: never reused */
  pinned: boolean;
  readonly pool: SlabPool;
}

const slabOf = new WeakMap<ArrayBufferLike, Slab>();

/** Counters of a SlabPool. */
export interface SlabPoolStats {
  /** slabs allocated over the pool's life */
  readonly created: number;
  /** times a released slab was cut again */
  readonly reused: number;
  /** released slabs waiting to be cut again */
  readonly free: number;
}

/** Cuts buffers from slabs of `slabBytes`, reusing released slabs (at most `maxFree` kept waiting). */
export class SlabPool {
  private cur: Slab | null = null;
  private used = 0;
  private readonly free: Slab[] = [];
  private created = 0;
  private reused = 0;

  constructor(
    readonly slabBytes = 256 * 1024,
    /** released slabs kept for reuse; more are left to the GC */
    private readonly maxFree = 32,
    /** requests larger than this get a buffer of their own (not reused) */
    readonly maxCut = slabBytes / 4,
  ) {}

  /** `size` bytes, uninitialised. */
  alloc(size: number): Buffer {
    if (size > this.maxCut) return Buffer.allocUnsafe(size);
    let s = this.cur;
    if (!s || this.used + size > this.slabBytes) {
      this.cur = null;
      if (s) this.unref(s);
      s = this.free.pop() ?? null;
      while (s && (s.pinned || s.refs !== 0)) s = this.free.pop() ?? null;
      if (s) this.reused++;
      else {
        s = { buf: Buffer.allocUnsafeSlow(this.slabBytes), refs: 0, pinned: false, pool: this };
        slabOf.set(s.buf.buffer, s);
        this.created++;
      }
      s.refs = 1;
      this.cur = s;
      this.used = 0;
    }
    const b = s.buf.subarray(this.used, this.used + size);
    this.used += (size + 7) & ~7;
    return b;
  }

  stats(): SlabPoolStats {
    return { created: this.created, reused: this.reused, free: this.free.length };
  }

  /** @internal one holder less; at none the slab waits to be cut again */
  unref(s: Slab): void {
    s.refs--;
    if (s.refs > 0) return;
    // below 0: released more often than held (a bug elsewhere): never cut it again
    if (s.refs < 0) s.pinned = true;
    if (s.refs < 0 || s === this.cur || s.pinned || this.free.length >= this.maxFree) return;
    this.free.push(s);
  }
}

/** The caller keeps `b` until its releaseBytes(b). */
export function holdBytes(b: Uint8Array): void {
  const s = slabOf.get(b.buffer);
  if (s) s.refs++;
}

/** The caller's holdBytes(b) ends: it no longer reads `b`. */
export function releaseBytes(b: Uint8Array): void {
  const s = slabOf.get(b.buffer);
  if (s) s.pool.unref(s);
}

/** `b` is kept by someone that will not release it: its slab is never cut again. */
export function pinBytes(b: Uint8Array): void {
  const s = slabOf.get(b.buffer);
  if (s) s.pinned = true;
}
