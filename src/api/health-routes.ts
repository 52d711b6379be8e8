import { collectHealth, type HealthSources } from '../system/health';
import { handle, sendJson } from './http';
import type { Router } from './server';

/** GET /rest-api/health. */
export function registerHealthRoutes(r: Router, src: HealthSources): void {
  r.get('/rest-api/health', handle(async (_req, res) => sendJson(res, 200, await collectHealth(src))));
}
