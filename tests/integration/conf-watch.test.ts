import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConfDiff } from '../../src/conf/diff';
import type { ConfError } from '../../src/conf/parse';
import type { Conf } from '../../src/conf/types';
import { ConfWatcher, type ConfWatcherEvents } from '../../src/conf/watch';

const BASE = 'rest_port=0\nrecord_dir=rec\ncamera.a.url=rtsp://127.0.0.1:8554/a\n';

/** Resolves with the next `event` of the watcher (and the ms it took from `since`), rejects after timeoutMs. */
function next<K extends keyof ConfWatcherEvents & string>(w: ConfWatcher, event: K, since: number, timeoutMs = 5000): Promise<{ args: ConfWatcherEvents[K]; ms: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off(event, fn);
      reject(new Error(`no "${event}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const fn = (...args: ConfWatcherEvents[K]) => {
      clearTimeout(timer);
      w.off(event, fn);
      resolve({ args, ms: Date.now() - since });
    };
    w.on(event, fn);
  });
}

test('ConfWatcher applies valid edits (in place and by rename), refuses invalid ones, keeps the old conf', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-confwatch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'edgerec.properties');
  writeFileSync(path, BASE);

  const w = new ConfWatcher({ path, installDir: dir });
  t.after(() => w.close());
  const invalids: ConfError[] = [];
  const changes: ConfDiff[] = [];
  w.on('invalid', (e) => invalids.push(e));
  w.on('change', (_c, d) => changes.push(d));
  await w.start();
  assert.equal(w.current().record_dir, join(dir, 'rec'));
  assert.equal(w.state().ok, true);

  // in-place write; an unrelated file in the same folder (even a bad config) is not looked at
  writeFileSync(join(dir, 'other.properties'), 'record_rotation=bad\n');
  let since = Date.now();
  let ev = next(w, 'change', since);
  writeFileSync(path, BASE + 'record_rotation=20\n');
  const inPlace = await ev;
  const [conf1, diff1, warn1] = inPlace.args;
  assert.deepEqual(diff1, { changedKeys: ['record_rotation'], camerasAdded: [], camerasRemoved: [], camerasChanged: [], empty: false });
  assert.deepEqual(conf1.record_rotation, { kind: 'seconds', seconds: 20 });
  assert.deepEqual(warn1, []);
  assert.equal(w.current(), conf1);
  t.diagnostic(`in-place edit applied after ${inPlace.ms} ms`);
  assert.ok(inPlace.ms <= 1000, `in-place edit applied after ${inPlace.ms} ms (limit 1000)`);

  // write a temp file, then rename it over the config (how editors save)
  since = Date.now();
  ev = next(w, 'change', since);
  const tmp = join(dir, '.edgerec.properties.swp');
  writeFileSync(tmp, BASE.replace('/a', '/a2') + 'record_rotation=20\ncamera.b.url=rtsp://127.0.0.1:8554/b\nfoo=1\n');
  renameSync(tmp, path);
  const renamed = await ev;
  const [conf2, diff2, warn2] = renamed.args;
  assert.deepEqual(diff2, { changedKeys: [], camerasAdded: ['b'], camerasRemoved: [], camerasChanged: ['a'], empty: false });
  assert.deepEqual(Object.keys(conf2.cameras).sort(), ['a', 'b']);
  assert.deepEqual(warn2, ['unknown key "foo" at line 6 (ignored)']);
  t.diagnostic(`renamed edit applied after ${renamed.ms} ms`);
  assert.ok(renamed.ms <= 1000, `renamed edit applied after ${renamed.ms} ms (limit 1000)`);

  // an invalid edit is refused: old conf kept, state shows the error
  const before: Conf = w.current();
  since = Date.now();
  const bad = next(w, 'invalid', since);
  writeFileSync(path, BASE + 'record_rotation=20X\nrest_auth_token=not secret\n');
  const [err] = (await bad).args;
  assert.equal(err.errors.length, 2);
  assert.match(err.message, /record_rotation at line 4: "20X"/);
  assert.ok(!err.message.includes('not secret'));
  assert.equal(w.current(), before);
  const st = w.state();
  assert.equal(st.ok, false);
  assert.equal(st.lastError?.message, err.message);
  assert.ok((st.lastError?.at ?? 0) >= since);

  // a later valid edit clears the error
  ev = next(w, 'change', Date.now());
  writeFileSync(path, BASE + 'record_rotation=10M\n');
  const [conf3, diff3] = (await ev).args;
  assert.deepEqual(diff3.changedKeys, ['record_rotation']);
  assert.deepEqual(diff3.camerasRemoved, ['b']);
  assert.deepEqual(diff3.camerasChanged, ['a']);
  assert.deepEqual(conf3.record_rotation, { kind: 'megabytes', megabytes: 10 });
  assert.equal(w.state().ok, true);
  assert.equal(w.state().lastError, null);

  // deleting the file is refused too; putting it back applies
  const gone = next(w, 'invalid', Date.now());
  unlinkSync(path);
  assert.match((await gone).args[0].message, /no such file/);
  assert.equal(w.current(), conf3);
  ev = next(w, 'change', Date.now());
  writeFileSync(path, BASE + 'log_level=debug\n');
  assert.deepEqual((await ev).args[1].changedKeys, ['record_rotation', 'log_level']);
  assert.equal(w.state().ok, true);

  assert.equal(
    invalids.every((e) => !e.message.includes('other.properties') && !e.message.includes('"bad"')),
    true,
    'the other file in the folder was never loaded',
  );
  assert.equal(invalids.length, 2);
  assert.equal(changes.length, 4, 'one change per valid edit, none from half-written files');
});

test('reload() (SIGHUP) applies at once; the watch event that follows adds no second change; close() is safe twice', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-confwatch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'edgerec.properties');
  writeFileSync(path, BASE);
  const w = new ConfWatcher({ path, installDir: dir, settleMs: 50 });
  t.after(() => w.close());
  await w.start();
  const changes: ConfDiff[] = [];
  w.on('change', (_c, d) => changes.push(d));

  writeFileSync(path, BASE + 'rtmp_port=0\n');
  assert.equal(w.reload('SIGHUP'), true);
  assert.equal(changes.length, 1);
  assert.deepEqual(changes[0]?.changedKeys, ['rtmp_port']);
  assert.equal(w.current().rtmp_port, 0);

  // the next real edit is the second change (the event of the first write brought nothing new)
  const ev = next(w, 'change', Date.now());
  writeFileSync(path, BASE + 'rtmp_port=0\nrest_port=1\n');
  assert.deepEqual((await ev).args[1].changedKeys, ['rest_port']);
  assert.equal(changes.length, 2);

  await w.close();
  await w.close();
  assert.equal(w.reload('after close'), false);
});
