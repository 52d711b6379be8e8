import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// package.json points at what exists: `npm start` starts the service, `npm test` runs what `make test` runs.

const ROOT = join(__dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; scripts: Record<string, string> };

test('main and start point at the built service and the shipped config', () => {
  assert.ok(existsSync(join(ROOT, pkg.main)), `main ${pkg.main} exists (after a build)`);
  const start = /^node (\S+) --conf (\S+)$/.exec(pkg.scripts.start ?? '');
  assert.ok(start, `start: ${pkg.scripts.start}`);
  assert.equal(start[1], pkg.main);
  assert.ok(existsSync(join(ROOT, start[2] ?? '')), `${start[2]} exists`);
});

test('npm test is make test; test:unit runs the built unit tests', () => {
  assert.equal(pkg.scripts.test, 'make test');
  assert.match(readFileSync(join(ROOT, 'Makefile'), 'utf8'), /^test: /m);
  assert.match(pkg.scripts['test:unit'] ?? '', /^tsc -p tsconfig\.json && node --test .*dist\/tests\/unit/);
  assert.ok(existsSync(join(ROOT, 'dist', 'tests', 'unit')));
});
