import type { App, Part } from './app';
import { createArchiveReads } from './api/archive-reads';
import { Archiver } from './archive/archiver';
import { createCutter } from './api/cutter';
import { registerFileRoutes } from './api/files';
import { handle, sendJson } from './api/http';
import { registerOpenApiRoutes } from './api/openapi-routes';
import { registerPageRoutes } from './api/page-routes';
import { registerPlaybackRoutes } from './api/playback-routes';
import { registerRecordingsRoutes } from './api/recordings-routes';
import { registerControlRoutes } from './api/rest';
import { registerWhipRoutes } from './api/whip-routes';
import type { ConfDiff } from './conf/diff';
import type { Conf } from './conf/types';
import { RtmpIngest, type RtmpPublish } from './ingest/rtmp/ingest';
import { RtmpStream } from './ingest/rtmp/stream';
import { RtspCameras } from './ingest/rtsp';
import { WhipIngest, type WhipPublish } from './ingest/whip';
import { WhipStream } from './ingest/whip-stream';
import { log } from './lib/log';
import { HostPool } from './pipeline/host-pool';
import { h264EncoderChoice, probeH264Encoders } from './pipeline/hw-encoders';
import { FragmentFinalizer } from './recorder/fragment-finalizer';
import { RecordingManager } from './recorder/manager';
import { PipelineReconciler } from './recorder/reconcile';
import { TmpSpace, spillDir } from './recorder/tmp-space';
import { LivenessSampler } from './system/health';
import { Metrics } from './system/metrics';
import { CutCache } from './store/cut-cache';
import { recoverAtStart } from './store/recover';
import { Retention } from './store/retention';

/** Builds the recording engine and the ingests on a started App, registers their routes and parts. */
export async function startEngine(app: App): Promise<void> {
  const conf = (): Conf => app.config;
  const store = app.store;
  const http = app.http;
  if (!store || !http) throw new Error('engine needs the store and the HTTP server');

  // Hardware H.264 encoders in the registry (used for MJPEG cameras), probed while the hosts start; else x264enc.
  const probing = probeH264Encoders();
  const pool = new HostPool({ size: conf().media_host_count });
  await pool.start();
  log.info({ h264Encoders: await probing }, 'h264 encoders probed');
  app.addPart({ name: 'media-hosts', close: () => pool.close(), health: () => ({ mediaHosts: pool.stats(), h264Encoders: h264EncoderChoice() }) });

  const finalizer = new FragmentFinalizer(conf, store);
  // record_tmp_dir nearly full: open fragments rotate early and new ones go to the spill dir until it has room.
  const tmpSpace = new TmpSpace(conf);
  await tmpSpace.check();
  tmpSpace.start();
  app.addPart(tmpSpace);
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
  await recoverAtStart(conf(), store, finalizer);
  if (!app.cuts) throw new Error('engine needs the cut index');
  const cutCache = new CutCache(conf, app.cuts);
  await cutCache.removeStaleParts();
  app.addPart({ name: 'cut-cache', close: async () => undefined, health: () => cutCache.health() });
  // Archive (issue 16): every finished file is queued by a trigger in the index; the archiver uploads them in order.
  const db = app.index;
  if (!db) throw new Error('engine needs the index database');
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
  app.addPart(retention);
  app.addPart({
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
  app.addPart({ name: 'liveness', close: async () => liveness.close(), health: () => liveness.health() });

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
  app.addPart(managerPart);
  // Every pipeline a host runs belongs to a recording the manager knows; a pass ends (and finalizes) any other.
  const reconciler = new PipelineReconciler({
    running: () => pool.running(),
    known: () => manager.knownPipelineIds(),
    end: (id) => pool.endPipeline(id),
    onOrphan: () => metrics.orphanPipelines.inc(),
  });
  reconciler.start();
  app.addPart({ name: 'reconcile', close: () => reconciler.close(), health: () => ({ orphanPipelinesStopped: reconciler.stopped }) });

  /** Per live stream with any, the timestamp repairs its ingest made (health). */
  function timestampRepairs(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const v of manager.findAll() as unknown as Record<string, unknown>[]) {
      const r = v.timestampRepairs as Record<string, number> | undefined;
      if (r && Object.values(r).some((n) => n > 0)) out[String(v.name)] = r;
    }
    return out;
  }

  // RTMP publishers
  const rtmpStreams = new Map<string, RtmpStream>();
  const rtmp = new RtmpIngest({
    port: conf().rtmp_port,
    bind: conf().rest_bind,
    publishToken: () => conf().publish_auth_token,
    log,
    limits: () => {
      const c = conf();
      return {
        maxPending: c.rtmp_max_pending_connections,
        maxPendingPerIp: c.rtmp_max_pending_per_ip,
        handshakeTimeoutMs: c.rtmp_handshake_timeout * 1000,
        maxMessageSize: c.rtmp_max_message_size,
        maxChunkSize: c.rtmp_max_chunk_size,
        maxPendingBytes: c.rtmp_max_pending_bytes,
      };
    },
  });
  rtmp.on('publish', (pub: RtmpPublish) => {
    const s = new RtmpStream(pub, {
      audioHold: conf().record_audio_buffer_max_size,
      onRepair: (kind) => metrics.timestampRepairs.inc({ stream: pub.name, kind }),
    });
    rtmpStreams.set(pub.id, s);
    const flag = pub.query.record;
    const record = flag === 'true' ? true : flag === 'false' ? false : conf().record_flash_published_streams;
    manager.addStream(s, { record });
  });
  rtmp.on('unpublish', (pub: RtmpPublish) => {
    const s = rtmpStreams.get(pub.id);
    if (!s) return;
    rtmpStreams.delete(pub.id);
    void manager.removeStream(s.mediaSessionId).finally(() => s.end());
  });
  rtmp.on('rejected', () => metrics.publishRejected.inc({ protocol: 'rtmp' }));
  rtmp.on('dropped', (reason) => metrics.rtmpDropped.inc({ reason }));
  await rtmp.start();
  log.info({ rtmpPort: rtmp.port }, 'rtmp listening');
  app.addPart({ name: 'rtmp', close: () => rtmp.close(), health: () => ({ rtmp: { port: rtmp.port, publishing: rtmpStreams.size, pending: rtmp.pendingCount } }) });

  // WebRTC (WHIP) publishers
  const whipStreams = new Map<string, WhipStream>();
  const whip = new WhipIngest({
    portRange: conf().webrtc_ice_port_range,
    publicIp: conf().webrtc_public_ip,
    loopback: true,
    log,
    maxMediaSections: () => conf().webrtc_max_media_sections,
  });
  whip.on('publish', (pub: WhipPublish) => {
    const s = new WhipStream(pub, { onRepair: (kind) => metrics.timestampRepairs.inc({ stream: pub.name, kind }) });
    whipStreams.set(pub.id, s);
    manager.addStream(s, { record: pub.record ?? conf().record_webrtc_streams });
  });
  whip.on('unpublish', (pub: WhipPublish) => {
    const s = whipStreams.get(pub.id);
    if (!s) return;
    whipStreams.delete(pub.id);
    void manager.removeStream(s.mediaSessionId).finally(() => s.end());
  });
  app.addPart({ name: 'whip', close: async () => whip.close(), health: () => ({ webrtc: { publishing: whipStreams.size } }) });

  // RTSP cameras (last: they start pulling at once)
  const cameras = new RtspCameras({ conf, pool, store, finalizer, tmpDir, onReconnect: (name) => metrics.reconnects.inc({ stream: name }), onRepair: (name, kind, n) => metrics.timestampRepairs.inc({ stream: name, kind }, n) }, manager);
  cameras.start();
  app.addPart({ name: 'rtsp', applyConf: (c, d) => cameras.applyConf(c, d), close: () => cameras.close(), health: () => cameras.health() });

  // Last added, first stopped: uploads are aborted (back to the queue) before the recordings finalize.
  archiver.start();
  app.addPart(archiver);

  const r = http.router;
  registerControlRoutes(r, manager);
  // With archiving off, rows show no archive part unless they are in the archive already.
  registerRecordingsRoutes(r, store, conf, (id) => {
    const a = archiver.store.info(id);
    return a && (archiver.enabled || a.state === 'archived') ? a : null;
  });
  registerPlaybackRoutes(r, store, conf, { onlyArchived: (id) => archiver.store.archivedOnlyById(id), client: () => archiver.client });
  const cutter = createCutter({ cache: cutCache });
  registerFileRoutes(r, conf, cutter, createArchiveReads(archiver.store, () => archiver.client, cutter));
  registerWhipRoutes(r, () => whip, () => conf().publish_auth_token);
  registerPageRoutes(r);
  registerOpenApiRoutes(r, app.version);
  r.get(
    '/metrics',
    handle(async (_req, res) => {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
      res.end(text);
    }),
  );
  r.get('/rest-api/streams', handle((_req, res) => sendJson(res, 200, manager.findAll())));
}
