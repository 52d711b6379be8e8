import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { registerFileRoutes } from '../../../src/api/files';
import { registerHealthRoutes } from '../../../src/api/health-routes';
import { handle, sendJson } from '../../../src/api/http';
import { openApiDocument } from '../../../src/api/openapi';
import { registerOpenApiRoutes } from '../../../src/api/openapi-routes';
import { registerPageRoutes } from '../../../src/api/page-routes';
import { registerPlaybackRoutes } from '../../../src/api/playback-routes';
import { registerRecordingsRoutes } from '../../../src/api/recordings-routes';
import { parseStartBody, registerControlRoutes } from '../../../src/api/rest';
import { type Handler, HttpServer } from '../../../src/api/server';
import { registerWhipRoutes } from '../../../src/api/whip-routes';
import type { Conf } from '../../../src/conf/types';
import type { WhipIngest } from '../../../src/ingest/whip/whip-ingest';
import { ERRORS } from '../../../src/lib/errors';
import { log } from '../../../src/lib/log';
import type { RecordingManager, StreamView } from '../../../src/recorder/manager';
import { closeDb, openDb } from '../../../src/store/db';
import { RecordingsStore } from '../../../src/store/recordings';

type Obj = Record<string, unknown>;
const ROOT = resolve(__dirname, '..', '..', '..', '..');
const METHODS = ['get', 'post', 'delete', 'head', 'options', 'patch'] as const;
/** register functions this test calls; the service must call each of them too */
const REGISTER_FNS = ['registerControlRoutes', 'registerRecordingsRoutes', 'registerFileRoutes', 'registerWhipRoutes', 'registerPageRoutes', 'registerHealthRoutes', 'registerOpenApiRoutes', 'registerPlaybackRoutes'];
/** routes src/api/routes.ts registers inline (stubs here; the parts they read are not built in a unit test) */
const ENGINE_INLINE = [{ method: 'get', path: '/metrics' }, { method: 'get', path: '/rest-api/streams' }];
const REST_TOKEN = 'rest-secret';
const PUBLISH_TOKEN = 'pub-secret';
const doc = openApiDocument('9.9.9-test') as { openapi: string; paths: Record<string, Record<string, Obj>>; components: Obj };

/** Inline `x.get('/path'`-style registrations in a source file (the literal must start with '/'). */
function inlineRoutes(file: string): { method: string; path: string }[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const re = /\.(get|post|delete|head|options|patch)\(\s*['"`](\/[^'"`]*)['"`]/g;
  return [...src.matchAll(re)].map((m) => ({ method: m[1] ?? '', path: m[2] ?? '' }));
}

function documented(): string[] {
  return Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
}

/** Resolve a local $ref. */
function deref(ref: string): unknown {
  assert.match(ref, /^#\//, `only local refs: ${ref}`);
  let cur: unknown = doc;
  for (const part of ref.slice(2).split('/')) cur = (cur as Obj | undefined)?.[part];
  assert.notEqual(cur, undefined, `$ref ${ref} does not resolve`);
  return cur;
}

/** The JSON Schema subset the document uses; returns what does not match. */
function validate(schema: Obj, v: unknown, at = '$'): string[] {
  if (typeof schema.$ref === 'string') return validate(deref(schema.$ref) as Obj, v, at);
  if (v === null) return schema.nullable === true ? [] : [`${at}: null not allowed`];
  const errs: string[] = [];
  const t = schema.type;
  const actual = Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
  if (t && t !== actual && !(t === 'number' && actual === 'integer')) return [`${at}: ${actual} is not ${String(t)}`];
  if (Array.isArray(schema.enum) && !schema.enum.includes(v)) errs.push(`${at}: ${JSON.stringify(v)} not in enum`);
  if (typeof v === 'number') {
    if (typeof schema.minimum === 'number' && v < schema.minimum) errs.push(`${at}: below minimum`);
    if (typeof schema.maximum === 'number' && v > schema.maximum) errs.push(`${at}: above maximum`);
  }
  if (typeof v === 'string') {
    if (typeof schema.minLength === 'number' && v.length < schema.minLength) errs.push(`${at}: shorter than minLength`);
    if (typeof schema.maxLength === 'number' && v.length > schema.maxLength) errs.push(`${at}: longer than maxLength`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(v)) errs.push(`${at}: does not match ${schema.pattern}`);
  }
  if (Array.isArray(v)) {
    if (typeof schema.minItems === 'number' && v.length < schema.minItems) errs.push(`${at}: fewer than minItems`);
    if (schema.items) v.forEach((x, i) => errs.push(...validate(schema.items as Obj, x, `${at}[${i}]`)));
  }
  if (actual === 'object' && !Array.isArray(v)) {
    const o = v as Obj;
    for (const k of (schema.required as string[] | undefined) ?? []) if (!(k in o)) errs.push(`${at}.${k}: required`);
    const props = (schema.properties as Record<string, Obj> | undefined) ?? {};
    for (const [k, s] of Object.entries(props)) if (k in o) errs.push(...validate(s, o[k], `${at}.${k}`));
  }
  return errs;
}

function operations(): { path: string; method: string; op: Obj }[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
}

test('the document is OpenAPI 3.0.3: every operation has responses, unique ids, declared path params; every $ref resolves', () => {
  assert.equal(doc.openapi, '3.0.3');
  const ids = new Set<string>();
  for (const { path, method, op } of operations()) {
    const where = `${method.toUpperCase()} ${path}`;
    assert.ok(METHODS.includes(method as (typeof METHODS)[number]), `${where}: unknown method`);
    assert.equal(typeof op.summary, 'string', `${where}: summary`);
    assert.equal(typeof op.description, 'string', `${where}: description`);
    assert.ok(typeof op.operationId === 'string' && !ids.has(op.operationId), `${where}: operationId missing or repeated`);
    ids.add(op.operationId as string);
    const responses = op.responses as Obj | undefined;
    assert.ok(responses && Object.keys(responses).length > 0, `${where}: no responses`);
    for (const [status, r] of Object.entries(responses)) {
      assert.match(status, /^[1-5]\d\d$/, `${where}: response key ${status}`);
      assert.equal(typeof (r as Obj).description, 'string', `${where} ${status}: description`);
    }
    const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    const params = (op.parameters as Obj[] | undefined) ?? [];
    assert.deepEqual(params.filter((p) => p.in === 'path').map((p) => p.name).sort(), inPath, `${where}: path parameters`);
    for (const p of params) assert.ok(p.schema, `${where}: parameter ${String(p.name)} has no schema`);
    for (const s of (op.security as Obj[] | undefined) ?? []) for (const k of Object.keys(s)) deref(`#/components/securitySchemes/${k}`);
  }
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) k === '$ref' ? deref(v as string) : walk(v);
  };
  walk(doc);
  const codeEnum = (deref('#/components/schemas/Error') as { properties: { code: { enum: string[] } } }).properties.code.enum;
  assert.deepEqual([...codeEnum].sort(), Object.keys(ERRORS).sort());
});

function examplesOf(mt: Obj): unknown[] {
  return [...('example' in mt ? [mt.example] : []), ...Object.values((mt.examples as Record<string, Obj> | undefined) ?? {}).map((e) => e.value)];
}

test('every example matches its schema, and the reference manual bodies pass the real parser', () => {
  let n = 0;
  for (const { path, method, op } of operations()) {
    const bodies = [op.requestBody, ...Object.values(op.responses as Obj)].map((x) => ((x as Obj | undefined)?.content ?? {}) as Record<string, Obj>);
    for (const [type, mt] of bodies.flatMap((c) => Object.entries(c))) {
      for (const v of examplesOf(mt)) {
        n++;
        if (type === 'application/json') assert.deepEqual(validate(mt.schema as Obj, v), [], `${method} ${path} example ${JSON.stringify(v)}`);
      }
    }
  }
  assert.ok(n >= 10, `only ${n} examples`);
  const start = (doc.paths['/rest-api/stream/startRecording']?.post?.requestBody as { content: Record<string, Obj> }).content['application/json'];
  const starts = start ? examplesOf(start) : [];
  assert.equal(starts.length, 2, 'the two startRecording bodies of the manual');
  for (const v of starts) assert.equal(parseStartBody(v).mediaSessionId, (v as { mediaSessionId: string }).mediaSessionId);
  // the schema refuses what the parser refuses
  const schema = start?.schema as Obj;
  for (const bad of [{}, { mediaSessionId: '' }, { mediaSessionId: 'a', config: { fileTemplate: '' } }, { mediaSessionId: 'a', config: { rotation: '20X' } }]) {
    assert.throws(() => parseStartBody(bad));
    assert.notDeepEqual(validate(schema, bad), [], JSON.stringify(bad));
  }
  // documented length limits are the parser's
  const idMax = (deref('#/components/schemas/MediaSessionId') as Obj).maxLength as number;
  const startSchema = deref(String(schema.$ref)) as Obj;
  const tmplMax = ((((startSchema.properties as Obj).config as Obj).properties as Obj).fileTemplate as Obj).maxLength as number;
  assert.equal(parseStartBody({ mediaSessionId: 'x'.repeat(idMax) }).mediaSessionId.length, idMax);
  assert.throws(() => parseStartBody({ mediaSessionId: 'x'.repeat(idMax + 1) }), /mediaSessionId/);
  assert.equal(parseStartBody({ mediaSessionId: 'a', config: { fileTemplate: 'x'.repeat(tmplMax) } }).overrides.template?.length, tmplMax);
  assert.throws(() => parseStartBody({ mediaSessionId: 'a', config: { fileTemplate: 'x'.repeat(tmplMax + 1) } }), /fileTemplate/);
});

interface Rig {
  readonly server: HttpServer;
  readonly base: string;
  readonly recId: number;
}

async function rig(t: TestContext): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-openapi-'));
  const recordDir = join(dir, 'records');
  mkdirSync(recordDir);
  writeFileSync(join(recordDir, 'clip.mp4'), Buffer.alloc(1000, 1));
  const db = openDb(join(dir, 'index.db'));
  t.after(() => {
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
  });
  const store = new RecordingsStore(db);
  const T0 = 1_700_000_000_000;
  const recId = store.insert({
    fileName: 'cam1_1.mp4', path: join(dir, 'elsewhere', 'cam1_1.mp4'), streamName: 'cam1', mediaSessionId: 'ms-1', sourceProtocol: 'rtsp',
    startMs: T0, endMs: T0 + 10_000, durationMs: 10_000, bytes: 1000, audioCodec: 'mpeg', videoCodec: 'H264', container: 'mp4', fragmentIndex: 1, state: 'complete',
  });
  // the row's file is a real 1 s MP4, so that the documented playback request plays it
  mkdirSync(join(dir, 'elsewhere'));
  copyFileSync(join(ROOT, 'tests', 'fixtures', 'playback-1s.mp4'), join(dir, 'elsewhere', 'cam1_1.mp4'));
  const conf = () => ({ record_dir: recordDir, record_response_content_disposition_header_value: 'inline', playback_max_duration: 3600 }) as Conf;
  const view: StreamView = { mediaSessionId: 'ms-1', name: 'cam1', published: 'rtsp', status: 'PUBLISHING', recording: true, audioCodec: 'mpeg', videoCodec: 'H264', fileName: 'cam1_{endTime}.mp4', startedAt: T0, endedAt: null };
  const manager: Pick<RecordingManager, 'startRecording' | 'stopRecording' | 'running' | 'findAll' | 'find'> = {
    startRecording: async () => ({ fileName: 'cam1_{endTime}_1.mp4' }),
    stopRecording: async () => ({ fileName: 'cam1_{endTime}_1.mp4' }),
    running: () => [{ fileName: 'cam1_{endTime}_1.mp4', mediaSessionId: 'ms-1', streamName: 'cam1' }],
    findAll: () => [view],
    find: () => [view],
  };
  const whip: Pick<WhipIngest, 'createSession' | 'deleteSession'> = {
    createSession: async () => ({ id: 'sess1', answerSdp: 'v=0\r\n' }),
    deleteSession: (id) => id === 'sess1',
  };
  const server = new HttpServer({ log, authToken: () => REST_TOKEN });
  const r = server.router;
  registerHealthRoutes(r, {
    version: '9.9.9-test', startedAt: Date.now(), authEnabled: () => true, sections: () => ({}),
    conf: () => ({ ok: true, path: join(dir, 'edgerec.properties'), loadedAt: Date.now(), lastError: null, warnings: [] }),
    dirs: () => ({ recordDir, tmpDir: dir }),
  });
  registerControlRoutes(r, manager as RecordingManager);
  // before the recordings routes: the documented DELETE of the row comes after the playback requests
  registerPlaybackRoutes(r, store, conf);
  registerRecordingsRoutes(r, store, conf);
  registerFileRoutes(r, conf, null);
  registerWhipRoutes(r, () => whip as WhipIngest, () => PUBLISH_TOKEN);
  registerPageRoutes(r);
  registerOpenApiRoutes(r, '9.9.9-test');
  const stub: Handler = handle((_req, res) => sendJson(res, 200, []));
  const inline = [...ENGINE_INLINE, ...inlineRoutes('src/api/routes.ts')];
  const seen = new Set<string>();
  for (const { method, path } of inline) {
    if (seen.has(`${method} ${path}`)) continue;
    seen.add(`${method} ${path}`);
    (r as unknown as Record<string, (p: string, h: Handler) => void>)[method]?.(path, stub);
  }
  const port = await server.listen(0, '127.0.0.1');
  t.after(() => server.close());
  return { server, base: `http://127.0.0.1:${port}`, recId };
}

test('every registered route is documented and every documented operation is registered', async (t) => {
  const { server } = await rig(t);
  const registered = server.routes().map((x) => `${x.method} ${x.path.replace(/:(\w+)/g, '{$1}')}`);
  assert.equal(new Set(registered).size, registered.length, 'a route is registered twice');
  assert.deepEqual([...registered].sort(), documented().sort());
  for (const { path } of inlineRoutes('src/api/routes.ts')) assert.ok(path in doc.paths, `routes.ts registers ${path}`);
  // the service (src/api/routes.ts, the one place) must call the same register functions as this test, and no others
  const src = readFileSync(join(ROOT, 'src/api/routes.ts'), 'utf8');
  const called = new Set([...src.matchAll(/\b(register\w+Routes)\(/g)].map((m) => m[1]));
  for (const fn of called) assert.ok(fn && REGISTER_FNS.includes(fn), `the service calls ${String(fn)}, which this test does not register`);
  for (const fn of REGISTER_FNS) assert.ok(called.has(fn), `the service never calls ${fn}: its documented routes would be missing`);
});

const STUBS = new Set(ENGINE_INLINE.map((x) => `${x.method.toUpperCase()} ${x.path}`));

function opOf(method: string, polkaPath: string): { path: string; op: Obj } {
  const path = polkaPath.replace(/:(\w+)/g, '{$1}');
  const op = doc.paths[path]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${path} is not documented`);
  return { path, op };
}

function schemesOf(op: Obj): string[] {
  return ((op.security as Obj[] | undefined) ?? []).flatMap((s) => Object.keys(s));
}

/** A documented path with sample values for its parameters (overrides by name). */
function urlOf(path: string, recId: number, over: Record<string, string> = {}, query = ''): string {
  const values: Record<string, string> = { id: path.startsWith('/whip') ? 'sess1' : String(recId), name: 'cam1', file: 'clip.mp4', ...over };
  const base = path.replace(/\{(\w+)\}/g, (_m, k: string) => encodeURIComponent(values[k] ?? k));
  // required query parameters get their documented example
  const op = Object.values(doc.paths[path] ?? {})[0];
  const req = ((op?.parameters as Obj[] | undefined) ?? []).filter((p) => p.in === 'query' && p.required === true);
  const given = new URLSearchParams(query.replace(/^\?/, ''));
  for (const p of req) if (!given.has(String(p.name))) given.set(String(p.name), String((p.schema as Obj).example));
  const qs = given.toString();
  return base + (qs ? `?${qs}` : '');
}

async function call(base: string, method: string, url: string, op: Obj, token: string | null): Promise<{ status: number; type: string; text: string }> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let body: string | undefined;
  const content = (op.requestBody as Obj | undefined)?.content as Record<string, Obj> | undefined;
  const [type, mt] = Object.entries(content ?? {})[0] ?? [];
  const example = mt ? examplesOf(mt)[0] : undefined;
  if (type && example !== undefined) {
    headers['content-type'] = type;
    body = typeof example === 'string' ? example : JSON.stringify(example);
  }
  const res = await fetch(base + url, { method: method.toUpperCase(), headers, body, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  return { status: res.status, type: (res.headers.get('content-type') ?? '').split(';')[0] ?? '', text };
}

test('auth: exactly the operations documented with a bearer scheme refuse a request without it (or with the other token)', async (t) => {
  const { server, base, recId } = await rig(t);
  for (const route of server.routes()) {
    const { path, op } = opOf(route.method, route.path);
    const schemes = schemesOf(op);
    const where = `${route.method} ${path}`;
    const bare = await call(base, route.method, urlOf(path, recId), op, null);
    assert.equal(bare.status === 401, schemes.length > 0, `${where} without a token answered ${bare.status}; documented security: ${schemes.join(',') || 'none'}`);
    if (schemes.length === 0) continue;
    assert.ok(String(401) in (op.responses as Obj), `${where}: 401 not documented`);
    const wrong = schemes.includes('restToken') ? PUBLISH_TOKEN : REST_TOKEN;
    assert.equal((await call(base, route.method, urlOf(path, recId), op, wrong)).status, 401, `${where} with the wrong token`);
  }
});

test('every answer to a documented request has a documented status, media type and schema', async (t) => {
  const { server, base, recId } = await rig(t);
  let checkedJson = 0;
  for (const route of server.routes()) {
    const { path, op } = opOf(route.method, route.path);
    if (STUBS.has(`${route.method} ${path}`)) continue;
    const where = `${route.method} ${path}`;
    const schemes = schemesOf(op);
    const token = schemes.includes('restToken') ? REST_TOKEN : schemes.includes('publishToken') ? PUBLISH_TOKEN : null;
    const res = await call(base, route.method, urlOf(path, recId), op, token);
    const responses = op.responses as Record<string, Obj>;
    const documentedOk = Object.keys(responses).filter((s) => s < '400');
    assert.ok(String(res.status) in responses, `${where} answered ${res.status} (${res.text.slice(0, 200)}); documented: ${Object.keys(responses).join(',')}`);
    if (documentedOk.length) assert.ok(res.status < 400, `${where} answered ${res.status} to the documented request: ${res.text.slice(0, 200)}`);
    const content = responses[String(res.status)]?.content as Record<string, Obj> | undefined;
    if (route.method === 'HEAD' || !res.text) continue;
    assert.ok(content && res.type in content, `${where}: ${res.status} ${res.type} not documented`);
    if (res.type !== 'application/json') continue;
    const body: unknown = JSON.parse(res.text);
    assert.deepEqual(validate(content[res.type]?.schema as Obj, body), [], `${where}: ${res.text.slice(0, 300)}`);
    checkedJson++;
    if (path === '/rest-api/openapi.json') assert.deepEqual(body, JSON.parse(JSON.stringify(doc)));
    if (path === '/rest-api/recordings') assert.deepEqual((body as { recordings: { id: number }[] }).recordings.map((x) => x.id), [recId]);
  }
  assert.ok(checkedJson >= 12, `only ${checkedJson} JSON answers checked`);
});

test('documented minimum/maximum of parameters are what the code enforces', async (t) => {
  const { server, base, recId } = await rig(t);
  let probes = 0;
  for (const route of server.routes()) {
    const { path, op } = opOf(route.method, route.path);
    const token = schemesOf(op).includes('restToken') ? REST_TOKEN : PUBLISH_TOKEN;
    for (const p of (op.parameters as Obj[] | undefined) ?? []) {
      const s = p.schema as Obj;
      const name = String(p.name);
      const at = (v: number) => (p.in === 'path' ? urlOf(path, recId, { [name]: String(v) }) : urlOf(path, recId, {}, `?${name}=${v}`));
      const where = `${route.method} ${path} ${name}`;
      for (const [bound, step] of [[s.minimum, -1], [s.maximum, 1]] as const) {
        if (typeof bound !== 'number') continue;
        probes++;
        const outside = await call(base, route.method, at(bound + step), op, token);
        assert.equal(outside.status, 400, `${where}=${bound + step} answered ${outside.status}`);
        const edge = await call(base, route.method, at(bound), op, token);
        assert.notEqual(edge.status, 400, `${where}=${bound} answered 400: ${edge.text.slice(0, 200)}`);
      }
    }
  }
  assert.ok(probes >= 10, `only ${probes} bounds probed`);
});
