import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parseConf } from '../../../src/conf/parse';
import { CAMERA_SCHEMA, type KeySpec, renderDefaultProperties, SCHEMA } from '../../../src/conf/schema';

function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'conf'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`no repository root above ${__dirname}`);
}

test('committed conf/edgerec.properties equals renderDefaultProperties()', () => {
  const committed = readFileSync(join(repoRoot(), 'conf', 'edgerec.properties'), 'utf8');
  assert.equal(committed, renderDefaultProperties(), 'regenerate conf/edgerec.properties from renderDefaultProperties()');
});

test('every key has a doc, allowed text and a default that parses', () => {
  const all = [...Object.entries(SCHEMA), ...Object.entries(CAMERA_SCHEMA).filter(([k]) => k !== 'url')] as [string, KeySpec<unknown>][];
  for (const [key, spec] of all) {
    assert.ok(spec.doc.length > 5, `${key} has a doc`);
    assert.ok(spec.allowed.length > 2, `${key} has allowed values`);
    assert.notEqual(spec.parse(spec.def, { installDir: '/opt/edgerec' }), undefined, `${key} default "${spec.def}" parses`);
  }
});

test('the rendered file lists every key commented out, and uncommenting them all gives the defaults', () => {
  const text = renderDefaultProperties();
  for (const key of Object.keys(SCHEMA)) assert.match(text, new RegExp(`^#${key}=`, 'm'));
  const defaults = parseConf('', { installDir: '/opt/edgerec' });
  assert.deepEqual(parseConf(text, { installDir: '/opt/edgerec' }).conf, defaults.conf, 'all comments: defaults');
  const uncommented = text.replace(/^#(?!camera\.)([a-z0-9_]+=)/gm, '$1');
  assert.notEqual(uncommented, text);
  const r = parseConf(uncommented, { installDir: '/opt/edgerec' });
  assert.deepEqual(r.conf, defaults.conf);
  // only the keys that have no effect warn, even at their defaults
  const inert = Object.entries(SCHEMA).filter(([, s]) => s.inert !== undefined).map(([k]) => k);
  assert.deepEqual(inert, ['mp4_container_moov_first_reserve_space', 'mp4_container_moov_reserved_space_size']);
  assert.deepEqual(r.warnings.map((w) => /^key "([^"]+)" at line \d+ has no effect: /.exec(w)?.[1]), inert, r.warnings.join('\n'));
});

test('the commented example camera group parses when uncommented', () => {
  const text = renderDefaultProperties().replace(/^#(camera\.)/gm, '$1');
  const { conf } = parseConf(text, { installDir: '/opt/edgerec' });
  assert.deepEqual(Object.keys(conf.cameras), ['lobby']);
  assert.equal(conf.cameras.lobby?.rotation?.kind, 'seconds');
});
