import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { PeriodicPass } from '../lib/periodic-pass';
import { TypedEmitter } from '../lib/typed-emitter';
import { type DiskUsage, diskUsage } from '../system/disk';

const log = rootLog.child({ component: 'tmp-space' });

/** Where fragments go while record_tmp_dir is nearly full: record_dir's disk, hidden from the file server. */
export const SPILL_DIR_NAME = '.edgerec-spill';

/** The spill directory for a config. */
export function spillDir(conf: Conf): string {
  return join(conf.record_dir, SPILL_DIR_NAME);
}

/** record_tmp_dir is nearly full below either figure... */
const LOW_PERCENT = 10;
const LOW_BYTES = 32 * 1024 * 1024;
/** ...and has room again above both (the gap keeps recordings from switching back and forth). */
const OK_PERCENT = 15;
const OK_BYTES = 40 * 1024 * 1024;

/** Pure: the next state from the disk figures (hysteresis between the low and the ok thresholds). */
export function nextTmpState(low: boolean, d: Pick<DiskUsage, 'freeBytes' | 'freePercent'>): boolean {
  if (!low) return d.freePercent < LOW_PERCENT || d.freeBytes < LOW_BYTES;
  return !(d.freePercent >= OK_PERCENT && d.freeBytes >= OK_BYTES);
}

export type TmpSpaceEvents = {
  /** record_tmp_dir became nearly full: new fragments go to the spill dir; open ones should rotate there */
  low: [];
  /** record_tmp_dir has room again: new fragments go back to it */
  ok: [];
};

/**
 * Watches record_tmp_dir (a small tmpfs on most boxes). Muxers write there until a fragment closes, so a tmpfs
 * that fills would end every recording: when it nears full, fragments are written to a spill directory on
 * record_dir's disk instead (the recorders rotate early into it), and back when it has room again.
 */
export class TmpSpace extends TypedEmitter<TmpSpaceEvents> {
  readonly name = 'tmp-space';
  private readonly passes: PeriodicPass;
  private low: { since: number; freeBytes: number; freePercent: number } | null = null;
  private spills = 0;

  constructor(
    private readonly conf: () => Conf,
    everyMs = 2000,
  ) {
    super();
    this.passes = new PeriodicPass(() => this.checkOnce(), { everyMs });
  }

  start(): void {
    this.passes.start();
  }

  /** The directory new fragments are written to. */
  dir(): string {
    return this.low ? spillDir(this.conf()) : this.conf().record_tmp_dir;
  }

  /** True while fragments are spilled to record_dir's disk. */
  get spilling(): boolean {
    return this.low !== null;
  }

  /** One check of record_tmp_dir (also called when a muxer's write failed). */
  check(): Promise<void> {
    return this.passes.run();
  }

  health(): Record<string, unknown> {
    return {
      tmpSpace: this.low
        ? { warning: 'record_tmp_dir is nearly full: new fragments are written to the spill dir', spilling: true, spillDir: 'record_dir/.edgerec-spill', timesSpilled: this.spills, ...this.low }
        : { warning: null, spilling: false, spillDir: 'record_dir/.edgerec-spill', timesSpilled: this.spills },
    };
  }

  close(): Promise<void> {
    return this.passes.close();
  }

  private async checkOnce(): Promise<void> {
    const c = this.conf();
    const d = await diskUsage(c.record_tmp_dir).catch(() => null);
    if (!d) return;
    let low = nextTmpState(this.low !== null, d);
    if (low && !this.low) {
      const made = await mkdir(spillDir(c), { recursive: true }).then(
        () => true,
        (err: unknown) => {
          log.error({ dir: spillDir(c), reason: errMessage(err) }, 'record_tmp_dir is nearly full and the spill dir cannot be made');
          return false;
        },
      );
      low = made;
    }
    if (low && !this.low) {
      this.low = { since: Date.now(), freeBytes: d.freeBytes, freePercent: d.freePercent };
      this.spills++;
      log.warn(
        { dir: c.record_tmp_dir, freeBytes: d.freeBytes, freePercent: d.freePercent, spillDir: spillDir(c) },
        'record_tmp_dir is nearly full: rotating open fragments and writing new ones to the spill dir',
      );
      this.emit('low');
    } else if (!low && this.low) {
      this.low = null;
      log.info({ dir: c.record_tmp_dir, freeBytes: d.freeBytes }, 'record_tmp_dir has space again; fragments go back to it');
      this.emit('ok');
    } else if (low && this.low) {
      this.low = { ...this.low, freeBytes: d.freeBytes, freePercent: d.freePercent };
    }
  }
}
