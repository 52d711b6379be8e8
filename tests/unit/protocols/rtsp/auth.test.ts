import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { authorization, parseChallenges } from '../../../../src/protocols/rtsp/auth';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

test('Digest qop=auth matches the RFC 2617 §3.5 example', () => {
  const ch = parseChallenges(['Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"']);
  assert.equal(ch[0]?.scheme, 'digest');
  assert.equal(ch[0]?.params.qop, 'auth,auth-int');
  const h = authorization(ch, { user: 'Mufasa', password: 'Circle Of Life' }, { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: '0a4f113b' });
  assert.ok(h?.startsWith('Digest '));
  assert.match(h ?? '', /response="6629fae49393a05397450978507c4ef1"/);
  assert.match(h ?? '', /qop=auth, nc=00000001, cnonce="0a4f113b"/);
  assert.match(h ?? '', /opaque="5ccc069c403ebaf9f0171e9517f40e41"/);
  assert.doesNotMatch(h ?? '', /Circle Of Life/);
});

test('Digest without qop (as most cameras and GStreamer send it) uses MD5(HA1:nonce:HA2)', () => {
  const ch = parseChallenges(['Digest realm="IP Camera(12345)", nonce="abc123", stale="FALSE"']);
  const uri = 'rtsp://10.0.0.2:554/Streaming/Channels/101';
  const h = authorization(ch, { user: 'admin', password: 'p@ss:w"rd' }, { method: 'DESCRIBE', uri });
  const ha1 = md5('admin:IP Camera(12345):p@ss:w"rd');
  const ha2 = md5(`DESCRIBE:${uri}`);
  assert.equal(h, `Digest username="admin", realm="IP Camera(12345)", nonce="abc123", uri="${uri}", response="${md5(`${ha1}:abc123:${ha2}`)}"`);
});

test('Digest is preferred over Basic when both are offered; Basic alone works; unknown schemes give null', () => {
  const both = parseChallenges(['Basic realm="cam"', 'Digest realm="cam", nonce="n1"']);
  assert.match(authorization(both, { user: 'u', password: 'p' }, { method: 'DESCRIBE', uri: 'rtsp://h/x' }) ?? '', /^Digest /);
  const basic = authorization(parseChallenges(['Basic realm="cam"']), { user: 'u', password: 'pä' }, { method: 'DESCRIBE', uri: 'rtsp://h/x' });
  assert.equal(basic, `Basic ${Buffer.from('u:pä').toString('base64')}`);
  assert.equal(authorization(parseChallenges(['Bearer realm="x"']), { user: 'u', password: 'p' }, { method: 'DESCRIBE', uri: 'rtsp://h/x' }), null);
  assert.equal(authorization(parseChallenges(['Digest realm="x", nonce="n", qop="auth-int"']), { user: 'u', password: 'p' }, { method: 'DESCRIBE', uri: 'u' }), null, 'auth-int only');
});

test('MD5-sess hashes the nonce and cnonce into HA1', () => {
  const ch = parseChallenges(['Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth']);
  const h = authorization(ch, { user: 'u', password: 'p' }, { method: 'DESCRIBE', uri: 'rtsp://h/x', cnonce: 'c' }) ?? '';
  const ha1 = md5(`${md5('u:r:p')}:n:c`);
  assert.match(h, new RegExp(`response="${md5(`${ha1}:n:00000001:c:auth:${md5('DESCRIBE:rtsp://h/x')}`)}"`));
  assert.match(h, /algorithm=MD5-sess/);
});
