import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/proc';
import { type Service, startService } from '../helpers/service';

interface Health {
  status: string;
  version: string;
  config: { ok: boolean; loadedAt: number; lastError: { message: string; at: number } | null; warnings: string[] };
  disk: { record: { folder: string; freeBytes: number; totalBytes: number; freePercent: number }; tmp: { freeBytes: number } };
  cpu: { loadPercent: number } | null;
  memory: { totalBytes: number } | null;
  mediaHosts: { pid: number; rss: number; heapUsed: number; heapTotal: number; external: number }[];
}

async function health(s: Service): Promise<Health> {
  const r = await s.json('/rest-api/health');
  assert.equal(r.status, 200);
  return r.body as Health;
}

test('the service starts, answers health with real figures, survives bad input, reloads, and stops cleanly', async (t) => {
  const s = await startService();
  t.after(() => s.stop('SIGKILL'));

  const h = await health(s);
  assert.equal(h.version, JSON.parse(readFileSync('package.json', 'utf8')).version);
  assert.equal(h.config.ok, true);
  assert.ok(h.disk.record.freeBytes > 0 && h.disk.record.totalBytes >= h.disk.record.freeBytes, 'real disk figures');
  assert.ok(h.disk.tmp.freeBytes > 0);
  assert.equal(h.disk.record.folder, 'record_dir');
  // no answer carries an absolute path (SPEC §4): not the record, tmp or spill folders either
  const absolute: string[] = [];
  const walk = (v: unknown, at: string): void => {
    if (typeof v === 'string' && (v.startsWith('/') || v.includes(s.dir))) absolute.push(`${at}: ${v}`);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
  };
  walk(h, 'health');
  assert.deepEqual(absolute, [], 'health names folders by their config key');
  assert.ok(h.memory && h.memory.totalBytes > 0);
  // each media host's memory, and how much of it is JS (V8 heap, Buffers): the rest is GStreamer's, native
  const hosts = await waitFor('media hosts with memory figures', async () => {
    const m = (await health(s)).mediaHosts;
    return m.length > 0 && m.every((x) => x.rss > 0) ? m : null;
  }, 15_000, 200);
  for (const x of hosts) assert.ok(x.heapUsed > 0 && x.heapTotal >= x.heapUsed && x.external >= 0 && x.heapTotal + x.external < x.rss, JSON.stringify(x));

  await t.test('bad HTTP input gets 400/404/413 and the service keeps answering', async () => {
    const nf = await s.json('/no/such/route');
    assert.equal(nf.status, 404);
    assert.equal((nf.body as { status: number }).status, 404);
    const bad = await fetch(`${s.base}/rest-api/stream/find`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /not valid JSON/);
    const big = await fetch(`${s.base}/rest-api/stream/find`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"name":"${'x'.repeat(1100 * 1024)}"}` });
    assert.equal(big.status, 413);
    const wrongType = await s.post('/rest-api/stream/find', ['a']);
    assert.equal(wrongType.status, 400);
    const raw = await fetch(`${s.base}/rest-api/health`, { method: 'GET', headers: { range: 'garbage' } });
    assert.equal(raw.status, 200);
    assert.equal((await health(s)).status, 'ok');
  });

  await t.test('a valid edit shows in health within 1 s; an invalid one is refused and reported until fixed', async () => {
    const base = readFileSync(s.confPath, 'utf8');
    s.writeConf(`${base}\nsome_unknown_key=1\n`);
    const t0 = Date.now();
    await waitFor('the edit to apply', async () => (await health(s)).config.warnings.some((w) => w.includes('some_unknown_key')), 1500, 50);
    assert.ok(Date.now() - t0 <= 1500);
    s.writeConf(`${base}\nrecord_rotation=20X\n`);
    const refused = await waitFor('the refusal', async () => {
      const c = (await health(s)).config;
      return c.ok ? null : c;
    }, 1500, 50);
    assert.match(refused.lastError?.message ?? '', /record_rotation/);
    assert.equal((await health(s)).status, 'degraded');
    s.writeConf(`${base}\nrecord_rotation=30\n`);
    await waitFor('a valid edit to clear the refusal', async () => (await health(s)).config.ok, 1500, 50);
  });

  await t.test('SIGHUP reloads', async () => {
    const before = s.logs().filter((l) => l.msg === 'reloading config').length;
    process.kill(s.proc.pid, 'SIGHUP');
    await waitFor('the reload log line', () => s.logs().filter((l) => l.msg === 'reloading config' && l.reason === 'SIGHUP').length > before, 3000);
    assert.equal((await health(s)).status, 'ok');
  });

  await t.test('SIGTERM exits 0 within the bound', async () => {
    const t0 = Date.now();
    process.kill(s.proc.pid, 'SIGTERM');
    const x = await s.proc.exited;
    assert.equal(x.code, 0, s.proc.output().slice(-2000));
    assert.ok(Date.now() - t0 < 20_000, 'stopped within record_stop_timeout + margin');
  });
});

test('SIGHUP applies a changed value that the folder watcher cannot see', async (t) => {
  // The config folder is replaced by a new one (as deployment tools and Kubernetes config maps do): the watcher
  // still watches the old folder, so the new file's value is applied only when SIGHUP asks for it.
  const s = await startService({ confFile: join('conf', 'edgerec.properties') });
  t.after(() => s.stop('SIGKILL'));
  const text = readFileSync(s.confPath, 'utf8');
  const confDir = dirname(s.confPath);
  renameSync(confDir, `${confDir}.old`);
  mkdirSync(confDir);
  writeFileSync(s.confPath, `${text}\nrest_auth_token=hup-s3cret\n`);
  await new Promise((r) => setTimeout(r, 1500)); // longer than the watcher's settle time
  const hups = () => s.logs().filter((l) => l.msg === 'reloading config' && l.reason === 'SIGHUP').length;
  // chokidar usually keeps watching the renamed-away folder, but it sometimes follows the new one (seen in 2 of 4
  // clean-clone runs): then the value is already applied and SIGHUP can only be shown to re-read the file
  const watcherFollowed = (await s.json('/rest-api/health')).status === 401;
  if (watcherFollowed) t.diagnostic('the watcher followed the replaced folder: SIGHUP shown re-reading only');
  process.kill(s.proc.pid, 'SIGHUP');
  if (!watcherFollowed) await waitFor('the token to be required', async () => (await s.json('/rest-api/health')).status === 401, 3000, 50);
  // the log line comes over the child's stdout, another fd than the HTTP answer: wait for it
  await waitFor('the SIGHUP reload in the log', () => hups() === 1, 2000, 20);
  assert.equal((await s.json('/rest-api/health')).status, 401, 'the token is required after the reload');
  const r = await s.json('/rest-api/health', { headers: { authorization: 'Bearer hup-s3cret' } });
  assert.equal(r.status, 200);
  assert.equal((r.body as Health).status, 'ok');
});

test('the moov reservation keys, set, are named with why they have no effect in health and the log', async (t) => {
  const s = await startService({ conf: 'mp4_container_moov_reserved_space_size=4096\n' });
  t.after(() => s.stop('SIGKILL'));
  const warning = /key "mp4_container_moov_reserved_space_size" at line \d+ has no effect: files are written fragmented and made moov-first/;
  const h = await health(s);
  assert.ok(h.config.warnings.some((w) => warning.test(w)), JSON.stringify(h.config.warnings));
  assert.ok(s.logs().some((l) => Number(l.level) >= 40 && warning.test(String(l.msg))), 'a warning in the log');
  assert.equal(h.config.warnings.filter((w) => w.includes('mp4_container_moov_first_reserve_space')).length, 0, 'only the key that is set');
});

test('a bad config at start exits 78 with a message naming the key', async () => {
  const err = await startService({ conf: 'rest_port=banana\n' }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.ok(err, 'the service must not start');
  assert.match(err.message, /exited 78/);
  assert.match(err.message, /rest_port/);
});
