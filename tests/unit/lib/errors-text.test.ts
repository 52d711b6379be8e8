import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clip, withoutPaths } from '../../../src/lib/errors';

test('withoutPaths: absolute paths in a message become their last component; routes and URLs stay', () => {
  assert.equal(withoutPaths("ENAMETOOLONG: name too long, open '/tmp/x/records/aaaa.mp4.part'"), "ENAMETOOLONG: name too long, open 'aaaa.mp4.part'");
  assert.equal(withoutPaths('cannot open the index database [path:/var/lib/edgerec/edgerec.db, reason:x]'), 'cannot open the index database [path:edgerec.db, reason:x]');
  assert.equal(withoutPaths('EACCES: permission denied, open "/srv/rec/a b.mp4"'), 'EACCES: permission denied, open "a b.mp4"');
  assert.equal(withoutPaths('see http://127.0.0.1:8081/rest-api/health'), 'see http://127.0.0.1:8081/rest-api/health');
  assert.equal(withoutPaths('a/b stays, so does N/A'), 'a/b stays, so does N/A');
});

test('clip: short values whole, long ones cut with their length, never a split character', () => {
  assert.equal(clip('abc'), 'abc');
  assert.equal(clip('x'.repeat(64)), 'x'.repeat(64));
  assert.equal(clip('x'.repeat(1_000_000)), `${'x'.repeat(64)}…(1000000 characters)`);
  assert.equal(clip('😀'.repeat(100), 3), '😀😀😀…(200 characters)');
});
