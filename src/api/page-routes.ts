import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { handle } from './http';
import type { Router } from './server';

/** Folder of the page's static files (shipped as they are; no build step on the box). */
export const PAGE_DIR = resolve(__dirname, '..', '..', '..', 'src', 'api', 'page');

/** GET / : the installers' page with the recording demo. */
export function registerPageRoutes(r: Router): void {
  let cached: Buffer | null = null;
  r.get(
    '/',
    handle((_req, res) => {
      cached ??= readFileSync(join(PAGE_DIR, 'index.html'));
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': cached.length, 'Cache-Control': 'no-cache' });
      res.end(cached);
    }),
  );
}
