import type { ConfDiff } from './conf/diff';
import type { Conf } from './conf/types';

/** A part of the service with a lifecycle and an interest in config changes (the root stops parts in reverse order). */
export interface Part {
  readonly name: string;
  /** apply a valid config change; parts whose settings did not change return at once */
  applyConf?(conf: Conf, diff: ConfDiff): void | Promise<void>;
  /** stop; safe twice */
  close(): Promise<void>;
  /** a section of the health answer */
  health?(): Record<string, unknown>;
}
