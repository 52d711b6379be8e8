import { sendJson, handle } from './http';
import { openApiDocument } from './openapi';
import type { Router } from './server';

/** GET /rest-api/openapi.json: the OpenAPI 3.0.3 description of every route. */
export function registerOpenApiRoutes(r: Router, version: string): void {
  const doc = openApiDocument(version);
  r.get('/rest-api/openapi.json', handle((_req, res) => sendJson(res, 200, doc)));
}
