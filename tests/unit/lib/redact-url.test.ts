import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRtsp } from '../../../src/protocols/rtsp/describe';
import { stripCreds } from '../../../src/protocols/rtsp/target';
import { redactUrl } from '../../../src/lib/log';

const CASES: [url: string, secret: string][] = [
  ['rtsp://admin:S3cret@10.0.0.5:554/Streaming/101', 'S3cret'],
  ['rtsp://admin:S3cr#t@10.0.0.5/x', 'S3cr#t'],
  ['rtsp://admin:a/b?c@10.0.0.5/x?y=1', 'a/b?c'],
  ['rtsp://ad@min:p@ss@cam.local/live', 'p@ss'],
];

test('redactUrl and stripCreds hide a password even when it holds #, / or ? typed raw', () => {
  for (const [url, secret] of CASES) {
    assert.ok(!redactUrl(url).includes(secret), `${redactUrl(url)} hides ${secret}`);
    assert.ok(!stripCreds(url).includes(secret), `${stripCreds(url)} hides ${secret}`);
  }
  assert.equal(redactUrl('rtsp://admin:S3cr#t@10.0.0.5/x'), 'rtsp://***@10.0.0.5/x');
  assert.equal(stripCreds('rtsp://admin:S3cret@10.0.0.5:554/a'), 'rtsp://10.0.0.5:554/a');
  assert.equal(redactUrl('rtsp://10.0.0.5/a'), 'rtsp://10.0.0.5/a', 'no credentials: unchanged');
});

test('a DESCRIBE of a URL with a raw # in the password fails without echoing it', async () => {
  const err = await describeRtsp('rtsp://cam:S3cr#t@127.0.0.1:1/x', { timeoutMs: 500 }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.ok(err, 'it fails (port 1 refuses, or the URL is refused)');
  assert.ok(!err.message.includes('S3cr'), `message hides the password: ${err.message}`);
});
