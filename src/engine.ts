import type Database from 'better-sqlite3';
import type { RouteDeps } from './api/routes';
import { Archiver } from './archive/archiver';
import type { ConfDiff } from './conf/diff';
import type { Conf } from './conf/types';
import type { IngestContext } from './ingest/publish';
import { startRtmp } from './ingest/rtmp/start';
import { RtspCameras } from './ingest/rtsp/cameras';
import { startWhip } from './ingest/whip/start';
import { errMessage } from './lib/errors';
import type { Logger } from './lib/log';
import type { Part } from './part';
import { HostPool } from './pipeline/host-pool';
import { h264EncoderChoice, probeH264Encoders } from './pipeline/hw-encoders';
import { FragmentFinalizer } from './recorder/fragment-finalizer';
import { RecordingManager } from './recorder/manager';
import { PipelineReconciler } from './recorder/reconcile';
import { TmpSpace, spillDir } from './recorder/tmp-space';
import { CutCache } from './store/cut-cache';
import type { CutsStore } from './store/cuts';
import { recoverAtStart } from './store/recover';
import type { RecordingsStore } from './store/recordings';
import { Retention } from './store/retention';
import { LivenessSampler } from './system/health';
import { Metrics } from './system/metrics';

/** What the engine is built from (given by the root, src/app.ts). */
export interface EngineContext {
  /** the running config (read at each use: it changes on reload) */
  readonly conf: () => Conf;
  readonly store: RecordingsStore;
  /** the cut cache index (table cuts) */
  readonly cuts: CutsStore;
  /** the open index database (parts with their own tables, e.g. the archive queue) */
  readonly db: Database.Database;
  readonly log: Logger;
}

/** The started engine: its parts in start order (stop them in reverse) and what the routes answer from. */
export interface Engine {
  readonly parts: readonly Part[];
  readonly routes: Omit<RouteDeps, 'version' | 'health'>;
}

/**
 * Builds the recording engine and the ingests. If a step fails, the parts already started are closed (in
 * reverse) before the error is passed on.
 */
export async function startEngine(ctx: EngineContext): Promise<Engine> {
  const parts: Part[] = [];
  try {
    const routes = await buildEngine(ctx, (p) => parts.push(p));
    return { parts, routes };
  } catch (err) {
    for (const p of parts.reverse()) {
      await p.close().catch((e: unknown) => ctx.log.error({ part: p.name, reason: errMessage(e) }, 'part failed to stop after a failed start'));
    }
    throw err;
  }
}

async function buildEngine(ctx: EngineContext, addPart: (p: Part) => void): Promise<Engine['routes']> {
  const { conf, store, log, db } = ctx;

  // Hardware H.264 encoders in the registry (used for MJPEG cameras), probed while the hosts start; else x264enc.
  const probing = probeH264Encoders();
  const pool = new HostPool({ size: conf().media_host_count });
  await pool.start();
  log.info({ h264Encoders: await probing }, 'h264 encoders probed');
  addPart({ name: 'media-hosts', close: () => pool.close(), health: () => ({ mediaHosts: pool.stats(), h264Encoders: h264EncoderChoice() }) });

  const finalizer = new FragmentFinalizer(conf, store);
  // record_tmp_dir nearly full: open fragments rotate early and new ones go to the spill dir until it has room.
  const tmpSpace = new TmpSpace(conf);
  await tmpSpace.check();
  tmpSpace.start();
  addPart(tmpSpace);
  const tmpDir = () => tmpSpace.dir();
  const manager = new RecordingManager({ conf, pool, store, finalizer, tmpDir });
  tmpSpace.on('low', () => {
    const n = manager.rotateIn(conf().record_tmp_dir, 'record_tmp_dir is nearly full');
    log.warn({ rotated: n, spillDir: tmpSpace.dir() }, 'rotated the recordings in record_tmp_dir early into the spill dir');
  });
  tmpSpace.on('ok', () => {
    const n = manager.rotateIn(spillDir(conf()), 'record_tmp_dir has room again');
    log.info({ rotated: n }, 'rotated the spilled recordings back into record_tmp_dir');
  });
  const metrics = new Metrics({
    streams: () => manager.counts().streams,
    recordingsActive: () => manager.counts().recordingsActive,
    dirs: () => ({ record: conf().record_dir, tmp: conf().record_tmp_dir }),
    hosts: () => pool.stats().length,
  });
  finalizer.on('finalized', (f) => {
    metrics.filesFinalized.inc();
    metrics.bytesWritten.inc(f.bytes);
    metrics.finalizeSeconds.observe(f.ms / 1000);
  });
  finalizer.on('failed', () => metrics.filesFailed.inc());
  // Before anything records: what a crash or power loss left behind becomes playable files.
  await recoverAtStart(conf(), store, finalizer, spillDir(conf()));
  const cutCache = new CutCache(conf, ctx.cuts);
  await cutCache.removeStaleParts();
  addPart({ name: 'cut-cache', close: async () => undefined, health: () => cutCache.health() });
  // Archive (issue 16): every finished file is queued by a trigger in the index; the archiver uploads them in order.
  const archiver = new Archiver({ conf, db, registry: metrics.registry });
  finalizer.on('finalized', () => archiver.kick());
  const retention = new Retention(
    conf,
    store,
    30_000,
    {
      localOldest: (n) => archiver.store.localOldest(n),
      localArchivedOldest: (n) => archiver.store.localArchivedOldest(n),
      localArchivedEndedBefore: (ms, n) => archiver.store.localArchivedEndedBefore(ms, n),
      markLocalGone: (id) => archiver.store.markLocalGone(id),
      enabled: () => archiver.enabled,
    },
    cutCache,
  );
  retention.start();
  addPart(retention);
  addPart({
    name: 'archive-retention',
    // archive_keep_local_days applies at once, not at the next pass
    applyConf: (_c, diff) => {
      if (diff.changedKeys.includes('archive_keep_local_days') || diff.changedKeys.includes('archive_s3_endpoint')) void retention.runOnce();
    },
    close: async () => undefined,
  });
  // A fragment that does not fit in record_dir: free space now rather than at the next 30 s pass.
  finalizer.on('nospace', () => void retention.runOnce());
  const liveness = new LivenessSampler(() => store.listUnfinished().filter((r) => r.state === 'recording').map((r) => ({ stream: r.streamName, tmpPath: r.tmpPath })));
  liveness.start();
  addPart({ name: 'liveness', close: async () => liveness.close(), health: () => liveness.health() });

  const managerPart: Part = {
    name: 'recordings',
    applyConf: (c: Conf, diff: ConfDiff) => {
      if (diff.changedKeys.includes('file_recorder_thread_pool_max_size')) finalizer.setConcurrency(c.file_recorder_thread_pool_max_size);
      return manager.applyConf(c);
    },
    close: () => {
      // Fragments waiting for space stay in tmp, `finalizing`: the next start recovers them.
      finalizer.stopRetrying();
      return manager.close();
    },
    health: () => ({ streams: manager.counts(), timestampRepairs: timestampRepairs(), ...finalizer.health() }),
  };
  addPart(managerPart);
  // Every pipeline a host runs belongs to a recording the manager knows; a pass ends (and finalizes) any other.
  const reconciler = new PipelineReconciler({
    running: () => pool.running(),
    known: () => manager.knownPipelineIds(),
    end: (id) => pool.endPipeline(id),
    onOrphan: () => metrics.orphanPipelines.inc(),
  });
  reconciler.start();
  addPart({ name: 'reconcile', close: () => reconciler.close(), health: () => ({ orphanPipelinesStopped: reconciler.stopped }) });

  /** Per live stream with any, the timestamp repairs its ingest made (health). */
  function timestampRepairs(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const v of manager.findAll() as unknown as Record<string, unknown>[]) {
      const r = v.timestampRepairs as Record<string, number> | undefined;
      if (r && Object.values(r).some((n) => n > 0)) out[String(v.name)] = r;
    }
    return out;
  }

  // Push ingests: one line each (src/ingest/publish.ts is their contract).
  const ingestCtx: IngestContext = {
    conf,
    log,
    streams: manager,
    onRepair: (stream, kind) => metrics.timestampRepairs.inc({ stream, kind }),
    onRejected: (protocol) => metrics.publishRejected.inc({ protocol }),
    onDropped: (protocol, reason) => {
      if (protocol === 'rtmp') metrics.rtmpDropped.inc({ reason });
    },
  };
  addPart(await startRtmp(ingestCtx));
  const whip = await startWhip(ingestCtx);
  addPart(whip);

  // RTSP cameras (last: they start pulling at once)
  const cameras = new RtspCameras({ conf, pool, store, finalizer, tmpDir, onReconnect: (name) => metrics.reconnects.inc({ stream: name }), onRepair: (name, kind, n) => metrics.timestampRepairs.inc({ stream: name, kind }, n) }, manager);
  cameras.start();
  addPart({ name: 'rtsp', applyConf: (c, d) => cameras.applyConf(c, d), close: () => cameras.close(), health: () => cameras.health() });

  // Last added, first stopped: uploads are aborted (back to the queue) before the recordings finalize.
  archiver.start();
  addPart(archiver);

  return { conf, store, manager, archiver, cutCache, metrics, whip: () => whip.ingest };
}
