import { Transform, type TransformCallback } from 'node:stream';

/** A token bucket shared by every upload: at most `rate` bytes/s on average (0 = no limit), bursts of ~1/4 s. */
export class Throttle {
  private tokens = 0;
  private last = Date.now();
  private chain: Promise<void> = Promise.resolve();

  constructor(private rate: number) {}

  /** Change the limit (hot reload); 0 = no limit. */
  setRate(rate: number): void {
    this.rate = rate;
  }

  /** Resolves when `n` bytes may go out. Callers queue in order, so uploads share the rate; an abort ends the wait at once. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const run = this.chain.then(() => {
      if (signal?.aborted) throw aborted();
      return this.wait(n, signal);
    });
    this.chain = run.catch(() => undefined);
    if (!signal) return run;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(aborted());
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      run.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async wait(n: number, signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return;
    const now = Date.now();
    const burst = Math.max(65536, this.rate / 4);
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    const ms = Math.min(60_000, Math.ceil((-this.tokens / this.rate) * 1000));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(aborted());
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A pass-through stream that waits for the bucket before each chunk. */
  stream(signal?: AbortSignal): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.take(chunk.length, signal).then(
          () => cb(null, chunk),
          (err: unknown) => cb(err as Error),
        );
      },
    });
  }
}

function aborted(): Error {
  return Object.assign(new Error('upload aborted'), { name: 'AbortError' });
}
