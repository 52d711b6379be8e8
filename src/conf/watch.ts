import { type FSWatcher, watch } from 'chokidar';
import { basename, dirname, resolve } from 'node:path';
import { AppError, errMessage } from '../lib/errors';
import { TypedEmitter } from '../lib/typed-emitter';
import { type ConfDiff, diffConf } from './diff';
import { ConfError, parseConf, readConfFile } from './parse';
import type { Conf } from './types';

/** Options of a ConfWatcher. */
export interface ConfWatcherOptions {
  /** the properties file */
  readonly path: string;
  /** relative paths in the file resolve against this */
  readonly installDir: string;
  /** ms of quiet after the last file event before reloading (default 150) */
  readonly settleMs?: number;
}

/** Events of a ConfWatcher. */
export type ConfWatcherEvents = {
  /** a valid edit changed something */
  change: [conf: Conf, diff: ConfDiff, warnings: string[]];
  /** an edit was refused; the running config is kept */
  invalid: [err: ConfError];
  /** unknown / duplicate / ignored keys of a newly loaded text, watcher trouble */
  warning: [msg: string];
};

/** Whether the file as it stands is in use, and the last refusal. */
export interface ConfWatcherState {
  readonly ok: boolean;
  readonly lastError: { readonly message: string; readonly at: number } | null;
  /** epoch ms of the last successful load */
  readonly loadedAt: number;
}

const READY_TIMEOUT_MS = 5000;

/** Watches the config file's folder (editors save by rename) and reloads on edits or reload() (SIGHUP). */
export class ConfWatcher extends TypedEmitter<ConfWatcherEvents> {
  private readonly path: string;
  private readonly dir: string;
  private readonly installDir: string;
  private readonly settleMs: number;
  private conf: Conf | null = null;
  private text: string | null = null;
  private fsw: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pendingSince = 0;
  private lastError: ConfWatcherState['lastError'] = null;
  private loadedAt = 0;
  private lastWarnings: readonly string[] = [];
  private closing: Promise<void> | null = null;

  constructor(opts: ConfWatcherOptions) {
    super();
    this.path = resolve(opts.path);
    this.dir = dirname(this.path);
    this.installDir = opts.installDir;
    this.settleMs = opts.settleMs ?? 150;
  }

  /** Load the file (rejects with ConfError when it is bad) and start watching; resolves when the watch is armed. */
  async start(): Promise<void> {
    if (this.closing) throw new AppError('INTERNAL', 'ConfWatcher is closed');
    if (this.fsw) return;
    const text = readConfFile(this.path);
    const { conf, warnings } = parseConf(text, { installDir: this.installDir });
    this.conf = conf;
    this.text = text;
    this.loadedAt = Date.now();
    this.lastWarnings = warnings;
    for (const w of warnings) this.emit('warning', w);

    const fsw = watch(this.dir, {
      ignoreInitial: true,
      depth: 0,
      // only the folder itself and our file: temp files of editors and other files are never stat'ed
      ignored: (p: string) => {
        const r = resolve(p);
        return r !== this.dir && r !== this.path;
      },
    });
    this.fsw = fsw;
    fsw.on('all', (_event, p) => {
      if (basename(p) === basename(this.path) && resolve(p) === this.path) this.schedule();
    });
    fsw.on('error', (err) => this.emit('warning', `config watcher error on ${this.dir}: ${errMessage(err)}`));
    await new Promise<void>((done) => {
      const t = setTimeout(() => {
        this.emit('warning', `config watcher on ${this.dir} not ready after ${READY_TIMEOUT_MS} ms; edits may be missed until SIGHUP`);
        done();
      }, READY_TIMEOUT_MS);
      fsw.once('ready', () => {
        clearTimeout(t);
        done();
      });
    });
  }

  /** Re-read the file now (`reason` is for the caller's log); true when it was valid. */
  reload(reason: string): boolean {
    const prev = this.conf;
    if (!prev || this.closing) return false;
    let text: string;
    let parsed: ReturnType<typeof parseConf>;
    try {
      text = readConfFile(this.path);
      parsed = parseConf(text, { installDir: this.installDir });
    } catch (err) {
      const ce = err instanceof ConfError ? err : new ConfError(`${reason}: ${errMessage(err)}`, { key: '', value: '', allowed: '', line: null });
      this.lastError = { message: ce.message, at: Date.now() };
      this.emit('invalid', ce);
      return false;
    }
    const fresh = text !== this.text;
    this.conf = parsed.conf;
    this.text = text;
    this.lastError = null;
    this.loadedAt = Date.now();
    this.lastWarnings = parsed.warnings;
    if (fresh) for (const w of parsed.warnings) this.emit('warning', w);
    const diff = diffConf(prev, parsed.conf);
    if (!diff.empty) this.emit('change', parsed.conf, diff, parsed.warnings);
    return true;
  }

  /** Warnings of the config in use (unknown keys, ignored keys...). */
  warnings(): readonly string[] {
    return this.lastWarnings;
  }

  /** The config in use (the last valid one). */
  current(): Conf {
    if (!this.conf) throw new AppError('INTERNAL', 'ConfWatcher not started');
    return this.conf;
  }

  /** Whether the file is in use, the last refusal, when it was last loaded. */
  state(): ConfWatcherState {
    return { ok: this.lastError === null, lastError: this.lastError, loadedAt: this.loadedAt };
  }

  /** Stop watching; safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      const fsw = this.fsw;
      this.fsw = null;
      await fsw?.close();
    })();
    return this.closing;
  }

  private schedule(): void {
    if (this.closing) return;
    const now = Date.now();
    if (this.timer) {
      // a file written without pause keeps postponing: reload at the latest 4 settle periods after the first event
      if (now - this.pendingSince > 4 * this.settleMs) return;
      clearTimeout(this.timer);
    } else {
      this.pendingSince = now;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload('file changed');
    }, this.settleMs);
  }
}
