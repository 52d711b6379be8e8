import { stat, truncate, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Conf } from '../conf/types';
import { AppError, errMessage, errnoOf } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { TypedEmitter } from '../lib/typed-emitter';
import { runGstLaunch } from '../pipeline/gst-launch';
import { describeRemux } from '../pipeline/launch';
import type { Codecs, Container } from '../pipeline/types';
import type { RecordingPatch, RecordingsStore } from '../store/recordings';
import type { FileJob } from '../store/recover';
import { Finalizer } from './finalize';
import { readFmp4 } from '../mp4/scan';
import { Mp4FormatError } from '../mp4/format-error';
import { remuxFmp4 } from '../mp4/remux';
import { runHook } from './hook';
import { safeJoin } from '../conf/template';

/** A fragment whose muxer has finished (or died): to be made into a file in record_dir. */
export interface FragmentJob extends FileJob {
  /** the final file name given the end time (epoch ms) */
  readonly name: (endMs: number) => string;
  /** state to give the row when done: 'complete', or 'recovered' after a crash */
  readonly finalState?: 'complete' | 'recovered';
}

/** A finalization error kept for health. */
export interface FinalizeError {
  readonly at: number;
  readonly stream: string;
  readonly rowId: number;
  readonly error: string;
  readonly noSpace: boolean;
}

/** Delay between attempts while a fragment cannot be placed for lack of space. */
const NO_SPACE_RETRY_MS = 3000;
/** Errors kept for health. */
const ERRORS_KEPT = 10;

/** True when an error, or one it wraps (`cause`), says the device is full. */
export function isNoSpace(err: unknown): boolean {
  return errnoOf(err) === 'ENOSPC';
}

export type FragmentFinalizerEvents = {
  finalized: [{ rowId: number; path: string; bytes: number; durationMs: number; ms: number }];
  /** an empty fragment's row was removed (nothing was written) */
  dropped: [{ rowId: number }];
  failed: [{ rowId: number; error: string }];
  /** a fragment could not be placed for lack of space; it stays `finalizing` in tmp and is retried */
  nospace: [{ rowId: number; error: string }];
};

/** Turns finished fragments into files: index row → finalizing, remux/move into record_dir, row → complete, hook. */
export class FragmentFinalizer extends TypedEmitter<FragmentFinalizerEvents> {
  private readonly finalizer: Finalizer;
  private readonly log = rootLog.child({ component: 'finalize' });
  private pending = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly retries = new Map<NodeJS.Timeout, FragmentJob>();
  private settledWaiters: (() => void)[] = [];
  private readonly errors: FinalizeError[] = [];
  private closing = false;

  constructor(
    private readonly conf: () => Conf,
    private readonly store: RecordingsStore,
    private readonly noSpaceRetryMs = NO_SPACE_RETRY_MS,
  ) {
    super();
    this.finalizer = new Finalizer({ concurrency: conf().file_recorder_thread_pool_max_size, log: this.log });
  }

  /** Apply file_recorder_thread_pool_max_size after a reload. */
  setConcurrency(n: number): void {
    this.finalizer.setConcurrency(n);
  }

  /**
   * Queue a fragment; never throws. Failures mark the row failed and keep the tmp file; lack of space keeps the
   * row `finalizing` and the tmp file, and retries every few seconds until it fits (or until stopRetrying()).
   */
  submit(job: FragmentJob): void {
    this.pending++;
    void this.attempt(job, 1);
  }

  /** Shutdown: fragments waiting for space stay `finalizing` with their tmp file (recovered at the next start). */
  stopRetrying(): void {
    this.closing = true;
    const waiting = [...this.retries];
    this.retries.clear();
    for (const [t, job] of waiting) {
      clearTimeout(t);
      this.log.warn({ stream: job.streamName, tmp: job.tmpPath }, 'stopping while a fragment waits for space; it is recovered at the next start');
      this.done();
    }
  }

  /** Health: queue, fragments waiting for space, the last errors. */
  health(): Record<string, unknown> {
    const last = this.errors[this.errors.length - 1] ?? null;
    return {
      finalizeQueue: this.pending,
      diskErrors: { waitingForSpace: this.retries.size, last: last?.noSpace ? last : (this.errors.filter((e) => e.noSpace).pop() ?? null) },
      lastErrors: [...this.errors],
    };
  }

  private async attempt(job: FragmentJob, n: number): Promise<void> {
    const retry = await this.run(job, n).catch(() => false);
    if (retry && !this.closing) {
      const t = setTimeout(() => {
        this.retries.delete(t);
        void this.attempt(job, n + 1);
      }, this.noSpaceRetryMs);
      this.retries.set(t, job);
      this.wake();
      return;
    }
    this.done();
  }

  /** Resolves when nothing runs: every fragment is done or waiting for space (start-up recovery must not block on a full disk). */
  settled(): Promise<void> {
    if (this.pending === this.retries.size) return Promise.resolve();
    return new Promise((r) => this.settledWaiters.push(r));
  }

  private done(): void {
    this.pending--;
    this.wake();
  }

  private wake(): void {
    if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    if (this.pending === this.retries.size) for (const w of this.settledWaiters.splice(0)) w();
  }

  /**
   * Cut what a killed muxer left half-written at the end of a fragmented MP4 (see readFmp4); returns the codecs
   * of the tracks that hold samples (a fragment cut before its first audio has none).
   */
  private async trimMp4(path: string, size: number, codecs: Codecs): Promise<Codecs> {
    const f = await readFmp4(path);
    if (f.fragments === 0 || (!f.video && !f.audio)) throw new AppError('INTERNAL', `no complete media box in ${basename(path)} (${size} bytes): the muxer stopped before it wrote a whole fragment`);
    if (f.length < size) {
      await truncate(path, f.length);
      this.log.warn({ tmp: path, size, kept: f.length }, 'cut the incomplete end of a fragment a muxer did not finish');
    }
    const held = { video: f.video ? codecs.video : null, audio: f.audio ? codecs.audio : null };
    if (held.video !== codecs.video || held.audio !== codecs.audio) this.log.warn({ tmp: path, codecs, held }, 'a track of the fragment holds no samples; finalizing the others');
    return held;
  }

  /**
   * Fragmented MP4 → plain MP4 in this process (moov rebuilt from the fragments, samples copied: ~4x less CPU than
   * a gst-launch remux); anything it does not expect falls back to gst-launch (EDGEREC_REMUX=gst: always).
   */
  private async remuxMp4(src: string, tmpDst: string, conf: Conf, gst: (src: string, dst: string) => Promise<void>): Promise<void> {
    if (process.env.EDGEREC_REMUX !== 'gst') {
      try {
        await remuxFmp4(src, tmpDst, { moovFirst: conf.mp4_container_moov_first });
        return;
      } catch (err) {
        if (isNoSpace(err)) throw err;
        const reason = err instanceof Mp4FormatError ? err.reason : errMessage(err);
        this.log.warn({ tmp: src, reason }, 'remuxing with gst-launch: the fragment has a layout the built-in remux does not take');
      }
    }
    await gst(src, tmpDst);
  }

  /** Update the job's row; a failing index is logged, never thrown (the file's state is what matters here). */
  private updateRow(job: FragmentJob, patch: RecordingPatch, what: string): void {
    try {
      this.store.update(job.rowId, patch);
    } catch (e) {
      this.log.error({ err: e, id: job.rowId }, what);
    }
  }

  private noteError(job: FragmentJob, error: string, noSpace: boolean): void {
    this.errors.push({ at: Date.now(), stream: job.streamName, rowId: job.rowId, error, noSpace });
    if (this.errors.length > ERRORS_KEPT) this.errors.shift();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Fragments queued or running. */
  get queued(): number {
    return this.pending;
  }

  /** One attempt; true when it should be retried (no space). */
  private async run(job: FragmentJob, attempt: number): Promise<boolean> {
    const t0 = Date.now();
    const conf = this.conf();
    const row = this.store.get(job.rowId);
    if (!row || row.state === 'complete' || row.state === 'recovered') {
      // Never finalize a fragment twice: the second would find its tmp file gone and undo the first.
      this.log.warn({ rowId: job.rowId, state: row?.state ?? 'deleted', tmp: job.tmpPath }, 'fragment already finalized; the second request is ignored');
      return false;
    }
    try {
      const dst = job.placedPath ?? safeJoin(conf.record_dir, job.name(job.endMs));
      // The row names its intended file before it exists: recovery then knows a file placed just before a crash.
      this.store.update(job.rowId, { state: 'finalizing', endMs: job.endMs, path: dst });
      const durationMs = Math.max(0, job.endMs - job.startMs);
      let res: { path: string; bytes: number };
      if (job.placedPath) {
        res = { path: job.placedPath, bytes: (await stat(job.placedPath)).size };
        if (job.tmpPath) await unlink(job.tmpPath).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      } else {
        const st = await stat(job.tmpPath).catch(() => null);
        if (st && st.size === 0 && job.finalState === undefined) {
          // A pipeline that failed before writing a byte (its disk full, retried every few seconds): nothing was
          // recorded, so no row is kept for it.
          this.store.delete(job.rowId);
          await unlink(job.tmpPath).catch(() => undefined);
          this.log.info({ stream: job.streamName, tmp: job.tmpPath }, 'dropped an empty fragment (nothing was written)');
          this.emit('dropped', { rowId: job.rowId });
          return false;
        }
        if (!st || st.size === 0) throw new AppError('INTERNAL', `no media was written to ${basename(job.tmpPath)}`);
        const codecs = job.container === 'mp4' ? await this.trimMp4(job.tmpPath, st.size, job.codecs) : job.codecs;
        const remux = describeRemuxFor({ ...job, codecs }, conf);
        // bounded: a remux that waits on something the file lacks must not hold a finalizer slot for good
        const timeoutMs = 60_000 + Math.round(st.size / 2000);
        const gst = remux ? (src: string, tmpDst: string) => runGstLaunch(remux(src, tmpDst), timeoutMs) : undefined;
        res = await this.finalizer.finalize({
          src: job.tmpPath,
          dst,
          transform: job.container === 'mp4' && gst ? (src, tmpDst) => this.remuxMp4(src, tmpDst, conf, gst) : gst,
        });
      }
      this.store.update(job.rowId, {
        state: job.finalState ?? 'complete',
        fileName: basename(res.path),
        path: res.path,
        tmpPath: null,
        endMs: job.endMs,
        durationMs,
        bytes: res.bytes,
        error: null,
      });
      const ms = Date.now() - t0;
      this.log.info({ stream: job.streamName, file: basename(res.path), bytes: res.bytes, durationMs, ms }, 'file finalized');
      this.emit('finalized', { rowId: job.rowId, path: res.path, bytes: res.bytes, durationMs, ms });
      if (conf.on_record_hook_script) {
        await runHook(conf.on_record_hook_script, [job.streamName, res.path], { timeoutMs: conf.on_record_hook_timeout * 1000, log: this.log });
      }
      return false;
    } catch (err) {
      const error = errMessage(err);
      if (isNoSpace(err) && !this.closing) {
        this.noteError(job, error, true);
        const lvl = attempt === 1 || attempt % 20 === 0 ? 'warn' : 'debug';
        this.log[lvl]({ stream: job.streamName, tmp: job.tmpPath, attempt, reason: error }, 'no space to finalize; the fragment stays in tmp and is retried');
        this.updateRow(job, { state: 'finalizing', error: `waiting for space: ${error}` }, 'cannot note the wait on the row');
        this.emit('nospace', { rowId: job.rowId, error });
        return true;
      }
      this.noteError(job, error, isNoSpace(err));
      this.log.error({ stream: job.streamName, tmp: job.tmpPath, reason: error }, 'finalizing failed; the tmp file is kept');
      // path back to the tmp file: the intended name may belong to another file
      this.updateRow(job, { state: this.closing && isNoSpace(err) ? 'finalizing' : 'failed', error, path: job.tmpPath }, 'cannot mark the row failed');
      this.emit('failed', { rowId: job.rowId, error });
      return false;
    }
  }
}

function describeRemuxFor(job: FragmentJob, conf: Conf): ((src: string, dst: string) => string) | null {
  const probe = describeRemux('/probe-src', '/probe-dst', job.container, job.codecs, { moovFirst: conf.mp4_container_moov_first });
  if (probe === null) return null;
  return (src, dst) =>
    describeRemux(src, dst, job.container, job.codecs, { moovFirst: conf.mp4_container_moov_first }) ?? '';
}
