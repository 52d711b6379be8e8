import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS } from '../../../src/lib/errors';

test('every error code is documented in README.md with its status, and nothing else is', () => {
  const readme = readFileSync(join(__dirname, '..', '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Errors'));
  const documented = new Map<string, number>();
  for (const m of section.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \|/gm)) documented.set(m[1] ?? '', Number(m[2]));
  for (const [code, def] of Object.entries(ERRORS)) assert.equal(documented.get(code), def.status, `README Errors table: ${code}`);
  for (const code of documented.keys()) assert.ok(code in ERRORS, `README documents ${code}, which src/lib/errors.ts does not have`);
});
