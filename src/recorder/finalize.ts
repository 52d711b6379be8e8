import { constants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError, errMessage } from '../lib/errors';
import type { Logger } from '../lib/log';
import { cutUtf8, numberedName } from '../conf/template';

/** One finished tmp file to make into a file in record_dir. */
export interface FinalizeJob {
  /** the tmp file written by the muxer */
  readonly src: string;
  /** wanted absolute path in record_dir; a free `<base>(N).<ext>` is used if it exists */
  readonly dst: string;
  /** writes a new file at `tmpDst` from `src` (e.g. a remux); without it the file is moved or copied */
  readonly transform?: (src: string, tmpDst: string) => Promise<void>;
}

/** Where the file ended up and its size. */
export interface FinalizeResult {
  readonly path: string;
  readonly bytes: number;
}

export interface FinalizerOptions {
  /** file_recorder_thread_pool_max_size: jobs run at once, the rest wait in order */
  readonly concurrency: number;
  readonly log: Logger;
}

/** link() errors that mean "this file system has no hard links": fall back to rename. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);
/** Bound on `(N)` suffixes tried before giving up. */
const MAX_SUFFIX = 10_000;

function codeOf(err: unknown): string | undefined {
  const c = (err as NodeJS.ErrnoException | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false;
    throw err;
  }
}

async function unlinkQuiet(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if (codeOf(err) !== 'ENOENT') throw err;
  });
}

async function fsyncFile(path: string, flags: string | number = 'r'): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Persist a rename/link in `dir`; some file systems cannot fsync a folder. Never throws: the file is in place. */
async function fsyncDir(dir: string, log: Logger): Promise<void> {
  try {
    await fsyncFile(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    if (!['EINVAL', 'EISDIR', 'ENOTSUP', 'EBADF', 'EPERM'].includes(codeOf(err) ?? '')) {
      log.warn({ dir, err: errMessage(err) }, 'cannot fsync the record folder');
    }
  }
}

/** `dst`, then `<base>(1).<ext>`, `(2)`… each cut to 255 bytes keeping the suffix. */
function candidate(dst: string, n: number): string {
  return n === 0 ? dst : join(dirname(dst), numberedName(basename(dst), n));
}

/**
 * Moves (same file system), copies (other file system) or transforms finished tmp files into record_dir,
 * `concurrency` at a time. A file appears under its final name only when complete and synced; an existing
 * file is never overwritten; on any failure the tmp file is kept and the partial file removed.
 */
export class Finalizer {
  private limit: number;
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private seq = 0;
  private readonly log: Logger;

  constructor(opts: FinalizerOptions) {
    this.limit = Finalizer.checkConcurrency(opts.concurrency);
    this.log = opts.log;
  }

  private static checkConcurrency(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new AppError('INTERNAL', `finalizer concurrency ${n} is not allowed: use an integer ≥ 1`);
    return n;
  }

  /** Queue a job (FIFO); resolves with the final path, rejects with the reason (src kept). */
  finalize(job: FinalizeJob): Promise<FinalizeResult> {
    return new Promise<FinalizeResult>((resolve, reject) => {
      this.queue.push(() => {
        this.running++;
        this.run(job)
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.pump();
          });
      });
      this.pump();
    });
  }

  /** Change the number of jobs run at once (hot reload); queued jobs start at once if it grew. */
  setConcurrency(n: number): void {
    this.limit = Finalizer.checkConcurrency(n);
    this.pump();
  }

  /** Resolves when no job is queued or running. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Jobs running now. */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.running < this.limit) {
      const next = this.queue.shift();
      if (!next) break;
      next();
    }
    if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async run(job: FinalizeJob): Promise<FinalizeResult> {
    const dir = dirname(job.dst);
    const partial = join(dir, `.${cutUtf8(basename(job.dst), 200)}.${process.pid}-${++this.seq}.part`);
    let path: string;
    let how: string;
    try {
      await stat(job.src);
      await mkdir(dir, { recursive: true });
      if (job.transform) {
        await job.transform(job.src, partial);
        const st = await stat(partial).catch(() => null);
        if (!st || st.size === 0) throw new AppError('INTERNAL', 'the transform wrote no file');
        path = await this.publishSynced(partial, job.dst);
        how = 'transformed';
      } else {
        await fsyncFile(job.src);
        try {
          path = await this.publish(job.src, job.dst);
          how = 'moved';
        } catch (err) {
          if (codeOf(err) !== 'EXDEV') throw err;
          await copyFile(job.src, partial);
          path = await this.publishSynced(partial, job.dst);
          how = 'copied';
        }
      }
    } catch (err) {
      await unlinkQuiet(partial).catch(() => undefined);
      const code = codeOf(err);
      const reason = code === 'ENOSPC' ? `no space left on the device of ${dir}` : errMessage(err);
      throw new AppError('INTERNAL', `finalize failed [src:${job.src}, dst:${job.dst}, reason:${reason}]; the tmp file is kept`, { cause: err });
    }
    // The file is in place: what follows can only warn, a tmp file left behind is not a failed finalize.
    await fsyncDir(dir, this.log);
    await unlinkQuiet(job.src).catch((err: unknown) =>
      this.log.warn({ src: job.src, err: errMessage(err) }, 'finalized, but the tmp file could not be removed'),
    );
    const { size } = await stat(path);
    this.log.debug({ src: job.src, path, bytes: size, how }, 'file placed');
    return { path, bytes: size };
  }

  /** fsync `from`, place it at a free name, remove `from`. */
  private async publishSynced(from: string, dst: string): Promise<string> {
    await fsyncFile(from);
    const path = await this.publish(from, dst);
    await unlinkQuiet(from).catch((err: unknown) =>
      this.log.warn({ partial: from, err: errMessage(err) }, 'finalized, but the partial file could not be removed'),
    );
    return path;
  }

  /**
   * Give `from` the first free name among dst, `(1)`, `(2)`…: link() fails on an existing name, so nothing
   * is overwritten even if another writer races us. `from` stays (a second link) unless links are not
   * supported, where it is renamed after an existence check. EXDEV is thrown to the caller.
   */
  private async publish(from: string, dst: string): Promise<string> {
    for (let n = 0; n <= MAX_SUFFIX; n++) {
      const to = candidate(dst, n);
      try {
        await link(from, to);
        return to;
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EEXIST') continue;
        if (!NO_LINKS.has(code ?? '')) throw err;
        if (await exists(to)) continue;
        await rename(from, to);
        return to;
      }
    }
    throw new AppError('INTERNAL', `no free name: ${dst} and ${MAX_SUFFIX} numbered variants exist`);
  }
}
