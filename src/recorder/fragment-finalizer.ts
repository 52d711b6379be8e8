import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { TypedEmitter } from '../lib/typed-emitter';
import { runGstLaunch } from '../pipeline/gst-launch';
import { describeRemux } from '../pipeline/launch';
import type { Codecs, Container } from '../pipeline/types';
import type { RecordingsStore } from '../store/recordings';
import { Finalizer } from './finalize';
import { runHook } from './hook';
import { safeJoin } from './naming';

/** A fragment whose muxer has finished (or died): to be made into a file in record_dir. */
export interface FragmentJob {
  readonly rowId: number;
  readonly tmpPath: string;
  readonly container: Container;
  readonly codecs: Codecs;
  readonly streamName: string;
  /** the final file name given the end time (epoch ms) */
  readonly name: (endMs: number) => string;
  readonly startMs: number;
  readonly endMs: number;
  /** state to give the row when done: 'complete', or 'recovered' after a crash */
  readonly finalState?: 'complete' | 'recovered';
}

export type FragmentFinalizerEvents = {
  finalized: [{ rowId: number; path: string; bytes: number; durationMs: number; ms: number }];
  failed: [{ rowId: number; error: string }];
};

/** Turns finished fragments into files: index row → finalizing, remux/move into record_dir, row → complete, hook. */
export class FragmentFinalizer extends TypedEmitter<FragmentFinalizerEvents> {
  private readonly finalizer: Finalizer;
  private readonly log = rootLog.child({ component: 'finalize' });
  private pending = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly conf: () => Conf,
    private readonly store: RecordingsStore,
  ) {
    super();
    this.finalizer = new Finalizer({ concurrency: conf().file_recorder_thread_pool_max_size, log: this.log });
  }

  /** Apply file_recorder_thread_pool_max_size after a reload. */
  setConcurrency(n: number): void {
    this.finalizer.setConcurrency(n);
  }

  /** Queue a fragment; never throws (failures mark the row failed and keep the tmp file). */
  submit(job: FragmentJob): void {
    this.pending++;
    void this.run(job).finally(() => {
      this.pending--;
      if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
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

  private async run(job: FragmentJob): Promise<void> {
    const t0 = Date.now();
    const conf = this.conf();
    try {
      this.store.update(job.rowId, { state: 'finalizing', endMs: job.endMs });
      const st = await stat(job.tmpPath).catch(() => null);
      if (!st || st.size === 0) throw new Error(`no media was written to ${basename(job.tmpPath)}`);
      const durationMs = Math.max(0, job.endMs - job.startMs);
      const dst = safeJoin(conf.record_dir, job.name(job.endMs));
      const remux = describeRemuxFor(job, conf);
      const res = await this.finalizer.finalize({
        src: job.tmpPath,
        dst,
        transform: remux ? (src: string, tmpDst: string) => runGstLaunch(remux(src, tmpDst), 10 * 60_000) : undefined,
      });
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
    } catch (err) {
      const error = errMessage(err);
      this.log.error({ stream: job.streamName, tmp: job.tmpPath, reason: error }, 'finalizing failed; the tmp file is kept');
      try {
        this.store.update(job.rowId, { state: 'failed', error });
      } catch (e) {
        this.log.error({ err: e }, 'cannot mark the row failed');
      }
      this.emit('failed', { rowId: job.rowId, error });
    }
  }
}

function describeRemuxFor(job: FragmentJob, conf: Conf): ((src: string, dst: string) => string) | null {
  const probe = describeRemux('/probe-src', '/probe-dst', job.container, job.codecs, { moovFirst: conf.mp4_container_moov_first });
  if (probe === null) return null;
  return (src, dst) =>
    describeRemux(src, dst, job.container, job.codecs, { moovFirst: conf.mp4_container_moov_first }) ?? '';
}
