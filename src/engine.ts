import type { App, Part } from './app';
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
import { RtmpIngest, type RtmpPublish } from './ingest/rtmp';
import { RtmpStream } from './ingest/rtmp-stream';
import { RtspCameras } from './ingest/rtsp';
import { WhipIngest, type WhipPublish } from './ingest/whip';
import { WhipStream } from './ingest/whip-stream';
import { log } from './lib/log';
import { HostPool } from './pipeline/host-pool';
import { h264EncoderChoice, probeH264Encoders } from './pipeline/hw-encoders';
import { FragmentFinalizer } from './recorder/fragment-finalizer';
import { RecordingManager } from './recorder/manager';
import { TmpSpace, spillDir } from './recorder/tmp-space';
import { LivenessSampler } from './system/health';
import { Metrics } from './system/metrics';
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
  const retention = new Retention(conf, store);
  retention.start();
  app.addPart(retention);
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
    health: () => ({ streams: manager.counts(), ...finalizer.health() }),
  };
  app.addPart(managerPart);

  // RTMP publishers
  const rtmpStreams = new Map<string, RtmpStream>();
  const rtmp = new RtmpIngest({ port: conf().rtmp_port, bind: conf().rest_bind, publishToken: () => conf().publish_auth_token, log });
  rtmp.on('publish', (pub: RtmpPublish) => {
    const s = new RtmpStream(pub);
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
  await rtmp.start();
  log.info({ rtmpPort: rtmp.port }, 'rtmp listening');
  app.addPart({ name: 'rtmp', close: () => rtmp.close(), health: () => ({ rtmp: { port: rtmp.port, publishing: rtmpStreams.size } }) });

  // WebRTC (WHIP) publishers
  const whipStreams = new Map<string, WhipStream>();
  const whip = new WhipIngest({ portRange: conf().webrtc_ice_port_range, publicIp: conf().webrtc_public_ip, loopback: true, log });
  whip.on('publish', (pub: WhipPublish) => {
    const s = new WhipStream(pub);
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
  const cameras = new RtspCameras({ conf, pool, store, finalizer, tmpDir, onReconnect: (name) => metrics.reconnects.inc({ stream: name }) }, manager);
  cameras.start();
  app.addPart({ name: 'rtsp', applyConf: (c, d) => cameras.applyConf(c, d), close: () => cameras.close(), health: () => cameras.health() });

  const r = http.router;
  registerControlRoutes(r, manager);
  registerRecordingsRoutes(r, store, conf);
  registerPlaybackRoutes(r, store, conf);
  registerFileRoutes(r, conf, createCutter({ cutDir: () => conf().mp4_cutter_dir }));
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
