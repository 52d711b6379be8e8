import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type Database from 'better-sqlite3';
import { registerRoutes } from './api/routes';
import { HttpServer } from './api/server';
import { startEngine } from './engine';
import { ConfWatcher } from './conf/watch';
import { loadConf } from './conf/parse';
import type { ConfDiff } from './conf/diff';
import type { Conf } from './conf/types';
import { AppError, errMessage } from './lib/errors';
import { log } from './lib/log';
import type { Part } from './part';
import { closeDb, openDb } from './store/db';
import { CutsStore } from './store/cuts';
import { RecordingsStore } from './store/recordings';
import type { ConfState, HealthSources } from './system/health';
import { sdNotify, watchdogIntervalMs } from './system/notify';

export interface AppOptions {
  readonly confPath: string;
  /** relative paths in the config resolve against this */
  readonly installDir: string;
}

/** The composition root: builds the parts, starts them in order, applies config changes, stops in reverse. */
export class App {
  readonly startedAt = Date.now();
  readonly version: string;
  private watcher: ConfWatcher | null = null;
  private conf: Conf | null = null;
  private warnings: readonly string[] = [];
  private db: Database.Database | null = null;
  private store: RecordingsStore | null = null;
  private http: HttpServer | null = null;
  private readonly parts: Part[] = [];
  private watchdog: NodeJS.Timeout | null = null;
  private stopped: Promise<void> | null = null;

  constructor(private readonly opts: AppOptions) {
    this.version = readVersion(opts.installDir);
  }

  /** The running config (throws before start). */
  get config(): Conf {
    if (!this.conf) throw new AppError('INTERNAL', 'app not started');
    return this.conf;
  }

  /** Start order: config → store → API → media hosts → recorders → ingest. Rejects with code BAD_CONFIG on a bad config. */
  async start(): Promise<void> {
    const { conf, warnings } = loadConfOrThrow(this.opts.confPath, this.opts.installDir);
    this.conf = conf;
    this.warnings = warnings;
    log.level = conf.log_level;
    for (const w of warnings) log.warn({ component: 'conf' }, w);
    for (const dir of [conf.record_dir, conf.record_tmp_dir, conf.mp4_cutter_dir]) mkdirSync(dir, { recursive: true });

    const db = openDb(conf.db_path);
    this.db = db;
    const store = new RecordingsStore(db);
    this.store = store;

    this.http = new HttpServer({ log, authToken: () => this.conf?.rest_auth_token ?? '' });
    const engine = await startEngine({ conf: () => this.config, store, cuts: new CutsStore(db), db, log });
    this.parts.push(...engine.parts);
    registerRoutes(this.http.router, { ...engine.routes, version: this.version, health: this.healthSources() });
    const port = await this.http.listen(conf.rest_port, conf.rest_bind);
    log.info({ port, bind: conf.rest_bind, conf: this.opts.confPath, version: this.version }, 'edgerec listening');

    this.watcher = new ConfWatcher({ path: this.opts.confPath, installDir: this.opts.installDir });
    this.watcher.on('change', (next, diff, warns) => void this.applyConf(next, diff, warns));
    this.watcher.on('invalid', (err) => log.error({ component: 'conf', err: errMessage(err) }, 'config edit refused; the running config is kept'));
    await this.watcher.start();

    sdNotify('READY=1', `STATUS=listening on ${port}`);
    const every = watchdogIntervalMs();
    if (every > 0) this.watchdog = setInterval(() => this.pingWatchdog(), every);
  }

  /** Re-read the config now (SIGHUP). */
  reload(reason: string): void {
    log.info({ reason }, 'reloading config');
    sdNotify('RELOADING=1');
    this.watcher?.reload(reason);
    sdNotify('READY=1');
  }

  /** The bound REST port. */
  get port(): number {
    return this.http?.port ?? 0;
  }

  private async applyConf(next: Conf, diff: ConfDiff, warnings: string[]): Promise<void> {
    this.conf = next;
    this.warnings = warnings;
    log.level = next.log_level;
    log.info({ component: 'conf', changed: diff.changedKeys, camerasAdded: diff.camerasAdded, camerasRemoved: diff.camerasRemoved, camerasChanged: diff.camerasChanged }, 'config applied');
    for (const dir of [next.record_dir, next.record_tmp_dir, next.mp4_cutter_dir]) {
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        log.error({ err, dir }, 'cannot create folder');
      }
    }
    for (const p of this.parts) {
      if (!p.applyConf) continue;
      try {
        await p.applyConf(next, diff);
      } catch (err) {
        log.error({ err, part: p.name }, 'part failed to apply the config change');
      }
    }
  }

  private pingWatchdog(): void {
    // The event loop is alive if we get here; parts may veto (e.g. all media hosts wedged).
    sdNotify('WATCHDOG=1');
  }

  /** Graceful stop: API answers 503, ingest stops, recordings finalize, store closes. Safe twice. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    sdNotify('STOPPING=1');
    if (this.watchdog) clearInterval(this.watchdog);
    this.http?.setClosing();
    await this.watcher?.close();
    for (const p of [...this.parts].reverse()) {
      try {
        await p.close();
      } catch (err) {
        log.error({ err, part: p.name }, 'part failed to stop');
      }
    }
    await this.http?.close();
    if (this.db) closeDb(this.db);
    this.db = null;
  }

  private healthSources(): HealthSources {
    return {
      version: this.version,
      startedAt: this.startedAt,
      conf: (): ConfState => {
        const st = this.watcher?.state();
        return {
          ok: st ? st.ok : true,
          path: basename(this.opts.confPath), // the name only: no answer shows where files live
          loadedAt: st?.loadedAt ?? this.startedAt,
          lastError: st?.lastError ?? null,
          warnings: this.watcher?.warnings() ?? this.warnings,
        };
      },
      dirs: () => ({ recordDir: this.config.record_dir, tmpDir: this.config.record_tmp_dir }),
      sections: () => {
        const out: Record<string, unknown> = { recordings: this.store?.countByState() ?? {} };
        for (const p of this.parts) if (p.health) Object.assign(out, p.health());
        return out;
      },
      authEnabled: () => Boolean(this.conf?.rest_auth_token),
    };
  }
}

function loadConfOrThrow(path: string, installDir: string): { conf: Conf; warnings: string[] } {
  try {
    return loadConf(path, installDir);
  } catch (err) {
    throw new AppError('BAD_CONFIG', `config ${path}: ${errMessage(err)}`, { cause: err });
  }
}

function readVersion(installDir: string): string {
  try {
    return (JSON.parse(readFileSync(join(installDir, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
