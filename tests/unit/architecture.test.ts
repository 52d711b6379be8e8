import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

// The shape of the house (issue 14, STYLE.md): read every import under src/ (type imports and import() included)
// and check the rules below. Each rule is checked on the real tree and, first, on a small made-up graph where it
// must fire, so a checker that cannot fail is caught too.

const ROOT = join(__dirname, '..', '..', '..');
const SRC = join(ROOT, 'src');

/** src-relative path (with '/') → the src-relative files it imports. */
type Graph = ReadonlyMap<string, readonly string[]>;

/** Folders of src/protocols that are building blocks every protocol may use (RTP, RTCP/NTP, SDP), not protocols. */
const SHARED_PROTOCOL_PARTS = new Set(['rtp', 'rtcp', 'ntp', 'sdp']);

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The src file a relative specifier names, or null (a package, node:, or outside src). */
function resolveSpec(fromFile: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(fromFile), spec);
  for (const cand of [base, `${base}.ts`, `${base}.d.ts`, join(base, 'index.ts')]) {
    if (existsSync(cand) && statSync(cand).isFile() && cand.startsWith(SRC + sep)) return cand;
  }
  return null;
}

function rel(p: string): string {
  return relative(SRC, p).split(sep).join('/');
}

/** Every src file and what it imports (import, export from, import type, import(), require()). */
function readGraph(): Graph {
  const g = new Map<string, string[]>();
  for (const file of listTs(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps = new Set<string>();
    for (const imp of info.importedFiles) {
      const to = resolveSpec(file, imp.fileName);
      if (to) deps.add(rel(to));
    }
    g.set(rel(file), [...deps]);
  }
  return g;
}

/** Import circles (strongly connected components of more than one file, or a file importing itself). */
function circles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** Files outside src/mp4 whose name holds "mp4" (fmp4 included): every MP4 concept lives in one folder. */
function mp4Outside(g: Graph): string[] {
  return [...g.keys()].filter((f) => !f.startsWith('mp4/') && /mp4/i.test(f.split('/').pop() ?? '')).sort();
}

/** `folder/<name>/…` → name (null for a file directly in folder, or outside it). */
function sub(file: string, folder: string): string | null {
  if (!file.startsWith(`${folder}/`)) return null;
  const parts = file.slice(folder.length + 1).split('/');
  return parts.length > 1 ? (parts[0] ?? null) : null;
}

/**
 * Imports out of src/protocols/<p> that are not allowed: a protocol folder may import its own folder, the shared
 * building blocks (src/protocols/{rtp,rtcp,ntp,sdp} and files directly in src/protocols) and src/lib; a building
 * block may import only other building blocks and src/lib. Nothing above (ingest, pipeline, recorder…).
 */
function protocolLeaks(g: Graph): string[] {
  const out: string[] = [];
  for (const [from, deps] of g) {
    const p = sub(from, 'protocols');
    if (p === null) continue;
    for (const to of deps) {
      if (to.startsWith('lib/') || to.startsWith('types/')) continue;
      if (!to.startsWith('protocols/')) {
        out.push(`${from} → ${to}`);
        continue;
      }
      const q = sub(to, 'protocols');
      const shared = q === null || SHARED_PROTOCOL_PARTS.has(q);
      if (q === p || shared) continue;
      out.push(`${from} → ${to}`);
    }
  }
  return out.sort();
}

/** src/pipeline importing src/ingest (a lower layer reaching up). */
function pipelineIntoIngest(g: Graph): string[] {
  const out: string[] = [];
  for (const [from, deps] of g) {
    if (!from.startsWith('pipeline/')) continue;
    for (const to of deps) if (to.startsWith('ingest/')) out.push(`${from} → ${to}`);
  }
  return out.sort();
}

/** src/ingest/<p> importing src/ingest/<q> (q ≠ p); files directly in src/ingest (the ingest contract) are open to all. */
function ingestCrossings(g: Graph): string[] {
  const out: string[] = [];
  for (const [from, deps] of g) {
    const p = sub(from, 'ingest');
    if (p === null) continue;
    for (const to of deps) {
      const q = sub(to, 'ingest');
      if (q !== null && q !== p) out.push(`${from} → ${to}`);
    }
  }
  return out.sort();
}

/** src/store importing src/recorder, src/ingest or src/api (the index is below the recorder; recovery is handed what it needs). */
function storeReachingUp(g: Graph): string[] {
  const out: string[] = [];
  for (const [from, deps] of g) {
    if (!from.startsWith('store/')) continue;
    for (const to of deps) if (/^(recorder|ingest|api)\//.test(to)) out.push(`${from} → ${to}`);
  }
  return out.sort();
}

const made = (edges: Record<string, string[]>): Graph => new Map(Object.entries(edges));

test('the checker: each rule fires on a made-up graph that breaks it, and only there', () => {
  const g = made({
    'app.ts': ['engine.ts'],
    'engine.ts': ['part.ts', 'app.ts'],
    'part.ts': [],
    'self.ts': ['self.ts'],
    'recorder/fmp4.ts': [],
    'mp4/boxes.ts': [],
    'protocols/rtsp/session.ts': ['protocols/sdp/sdp.ts', 'protocols/codecs.ts', 'lib/errors.ts', 'protocols/rtsp/auth.ts'],
    'protocols/rtsp/auth.ts': ['ingest/rtsp/camera.ts'],
    'protocols/sdp/sdp.ts': ['protocols/rtsp/target.ts'],
    'protocols/codecs.ts': [],
    'pipeline/host-worker.ts': ['ingest/rtsp/feed.ts'],
    'ingest/rtsp/camera.ts': ['ingest/publish.ts', 'ingest/rtsp/feed.ts'],
    'ingest/whip/stream.ts': ['ingest/rtsp/feed.ts'],
    'store/recover.ts': ['store/recordings.ts', 'conf/template.ts', 'recorder/tmp-space.ts'],
  });
  assert.deepEqual(circles(g), [['app.ts', 'engine.ts'], ['self.ts']]);
  assert.deepEqual(mp4Outside(g), ['recorder/fmp4.ts']);
  assert.deepEqual(protocolLeaks(g), ['protocols/rtsp/auth.ts → ingest/rtsp/camera.ts', 'protocols/sdp/sdp.ts → protocols/rtsp/target.ts']);
  assert.deepEqual(pipelineIntoIngest(g), ['pipeline/host-worker.ts → ingest/rtsp/feed.ts']);
  assert.deepEqual(ingestCrossings(g), ['ingest/whip/stream.ts → ingest/rtsp/feed.ts']);
  assert.deepEqual(storeReachingUp(g), ['store/recover.ts → recorder/tmp-space.ts']);
});

test('the import reader sees type imports, re-exports and import() types', () => {
  const g = readGraph();
  assert.ok(g.size > 50, `${g.size} files read under src/`);
  // src/app.ts imports Part as a type only: the reader must still see it
  assert.ok(g.get('app.ts')?.includes('part.ts'), `app.ts → part.ts in ${JSON.stringify(g.get('app.ts'))}`);
});

const graph = readGraph();

test('no import circle between src files (type imports included)', () => {
  const found = circles(graph);
  assert.deepEqual(found, [], `circles:\n${found.map((c) => c.join(' ⇄ ')).join('\n')}`);
});

test('no file outside src/mp4 has mp4 in its name', () => {
  assert.deepEqual(mp4Outside(graph), []);
});

test('src/protocols/<p> imports only its own folder, the shared RTP/RTCP/SDP parts and src/lib', () => {
  assert.deepEqual(protocolLeaks(graph), []);
});

test('src/pipeline does not import src/ingest', () => {
  assert.deepEqual(pipelineIntoIngest(graph), []);
});

test('src/ingest/<p> does not import another src/ingest/<q>', () => {
  assert.deepEqual(ingestCrossings(graph), []);
});

test('src/store does not import src/recorder, src/ingest or src/api', () => {
  assert.deepEqual(storeReachingUp(graph), []);
});

test('routes are registered in one place: src/api/routes.ts is the only caller of the register…Routes functions', () => {
  const callers: string[] = [];
  for (const file of listTs(SRC)) {
    const text = readFileSync(file, 'utf8').replace(/export function register\w+Routes\(/g, '');
    if (/\bregister\w+Routes\(/.test(text)) callers.push(rel(file));
  }
  assert.deepEqual(callers, ['api/routes.ts']);
});
