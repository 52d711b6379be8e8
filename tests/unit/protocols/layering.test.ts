import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

/** The checkout's src/ (tests run from dist/tests/unit/protocols). */
const SRC = resolve(__dirname, '..', '..', '..', '..', 'src');

/** Every .ts file under dir, relative to src/ ('protocols/rtp/packet.ts'). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(relative(SRC, p));
  }
  return out;
}

/** The src/-relative paths a file imports (type imports and re-exports included), without extension. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => relative(SRC, resolve(SRC, dirname(file), m[1] ?? '')));
}

/** `file → import` for every import of a file under `from` that lands under one of `banned`. */
function violations(from: string, banned: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of tsFiles(SRC).filter((x) => x.startsWith(from))) {
    for (const i of importsOf(f)) if (banned.some((b) => i === b || i.startsWith(`${b}/`))) out.push(`${f} → ${i}`);
  }
  return out;
}

test('the layering reader sees imports, type imports and re-exports', () => {
  assert.ok(tsFiles(SRC).includes(join('protocols', 'rtp', 'packet.ts')));
  assert.ok(importsOf(join('pipeline', 'rtsp-feed.ts')).includes(join('protocols', 'rtp', 'packet')));
  assert.ok(importsOf(join('pipeline', 'types.ts')).includes(join('protocols', 'codecs')), 'export type … from');
  assert.notDeepEqual(violations('pipeline/', ['protocols']), [], 'a rule that can be broken is seen broken');
});

test('protocol code sits below the pipeline: src/protocols imports nothing from ingest, pipeline, recorder, store, api', () => {
  assert.deepEqual(violations('protocols/', ['ingest', 'pipeline', 'recorder', 'store', 'api', 'app', 'engine']), []);
});

test('the pipeline never reaches up into ingest', () => {
  assert.deepEqual(violations('pipeline/', ['ingest']), []);
});

test('no ingest protocol folder imports another protocol folder', () => {
  const folders = readdirSync(join(SRC, 'ingest'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  assert.ok(folders.includes('rtsp') && folders.includes('whip'), `ingest folders: ${folders.join(', ')}`);
  for (const p of folders) {
    assert.deepEqual(violations(`ingest/${p}/`, folders.filter((q) => q !== p).map((q) => `ingest/${q}`)), [], `ingest/${p}`);
  }
});
