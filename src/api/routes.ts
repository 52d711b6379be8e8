import type { Archiver } from '../archive/archiver';
import type { Conf } from '../conf/types';
import type { WhipIngest } from '../ingest/whip/whip-ingest';
import type { RecordingManager } from '../recorder/manager';
import type { CutCache } from '../store/cut-cache';
import type { RecordingsStore } from '../store/recordings';
import type { HealthSources } from '../system/health';
import type { Metrics } from '../system/metrics';
import { createArchiveReads } from './archive-reads';
import { createCutter } from './cutter';
import { registerFileRoutes } from './files';
import { registerHealthRoutes } from './health-routes';
import { handle, sendJson } from './http';
import { registerOpenApiRoutes } from './openapi-routes';
import { registerPageRoutes } from './page-routes';
import { registerPlaybackRoutes } from './playback-routes';
import { registerRecordingsRoutes } from './recordings-routes';
import { registerControlRoutes } from './rest';
import type { Router } from './server';
import { registerWhipRoutes } from './whip-routes';

/** What the routes answer from: the parts the root built. */
export interface RouteDeps {
  readonly version: string;
  readonly conf: () => Conf;
  readonly health: HealthSources;
  readonly store: RecordingsStore;
  readonly manager: RecordingManager;
  readonly archiver: Archiver;
  readonly cutCache: CutCache;
  readonly metrics: Metrics;
  readonly whip: () => WhipIngest | null;
}

/** Every route of the service, registered here and nowhere else. */
export function registerRoutes(r: Router, d: RouteDeps): void {
  const { conf, archiver } = d;
  registerHealthRoutes(r, d.health);
  registerControlRoutes(r, d.manager);
  // With archiving off, rows show no archive part unless they are in the archive already.
  registerRecordingsRoutes(r, d.store, conf, (id) => {
    const a = archiver.store.info(id);
    return a && (archiver.enabled || a.state === 'archived') ? a : null;
  });
  registerPlaybackRoutes(r, d.store, conf, { onlyArchived: (id) => archiver.store.archivedOnlyById(id), client: () => archiver.client });
  const cutter = createCutter({ cache: d.cutCache });
  registerFileRoutes(r, conf, cutter, createArchiveReads(archiver.store, () => archiver.client, cutter));
  registerWhipRoutes(r, d.whip, () => conf().publish_auth_token);
  registerPageRoutes(r);
  registerOpenApiRoutes(r, d.version);
  r.get(
    '/metrics',
    handle(async (_req, res) => {
      const text = await d.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': d.metrics.registry.contentType });
      res.end(text);
    }),
  );
  r.get('/rest-api/streams', handle((_req, res) => sendJson(res, 200, d.manager.findAll())));
}
