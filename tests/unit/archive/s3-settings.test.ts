import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConf } from '../../../src/conf/parse';
import { classifyError, describeError, parseCredentials, s3Settings } from '../../../src/archive/s3-settings';

const conf = (text: string) => parseConf(text, { installDir: '/opt/edgerec' }).conf;

test('parseCredentials: access_key/secret_key or the AWS names, comments and sections ignored', () => {
  assert.deepEqual(parseCredentials('# systemd credential\naccess_key = AK\nsecret_key=S/K+1=\n'), { accessKeyId: 'AK', secretAccessKey: 'S/K+1=' });
  assert.deepEqual(parseCredentials('[default]\naws_access_key_id=A\naws_secret_access_key=B\n'), { accessKeyId: 'A', secretAccessKey: 'B' });
  assert.throws(() => parseCredentials('access_key=A\n'), /must hold secret_key=/);
  assert.throws(() => parseCredentials('secret_key=TOPSECRET\n'), (e: Error) => !e.message.includes('TOPSECRET') && /access_key=/.test(e.message));
});

test('s3Settings: off without an endpoint; a missing bucket or credentials is a misconfiguration named by key', () => {
  assert.equal(s3Settings(conf('')).kind, 'off');
  const noBucket = s3Settings(conf('archive_s3_endpoint=http://127.0.0.1:9000\narchive_s3_access_key=a\narchive_s3_secret_key=b'));
  assert.equal(noBucket.kind, 'invalid');
  assert.match(noBucket.kind === 'invalid' ? noBucket.error : '', /archive_s3_bucket/);
  const noKeys = s3Settings(conf('archive_s3_endpoint=http://127.0.0.1:9000\narchive_s3_bucket=b1x'));
  assert.match(noKeys.kind === 'invalid' ? noKeys.error : '', /archive_s3_access_key and archive_s3_secret_key, or archive_s3_credentials_file/);
  const fromFile = s3Settings(conf('archive_s3_endpoint=http://127.0.0.1:9000\narchive_s3_bucket=b1x\narchive_s3_credentials_file=/run/creds/s3\narchive_s3_secret_key=ignored'), (p) => {
    assert.equal(p, '/run/creds/s3');
    return 'access_key=FA\nsecret_key=FS\n';
  });
  assert.equal(fromFile.kind, 'ok');
  if (fromFile.kind === 'ok') assert.deepEqual([fromFile.settings.accessKeyId, fromFile.settings.secretAccessKey, fromFile.settings.region], ['FA', 'FS', 'us-east-1']);
  const unreadable = s3Settings(conf('archive_s3_endpoint=http://127.0.0.1:9000\narchive_s3_bucket=b1x\narchive_s3_credentials_file=/nope'), () => {
    throw Object.assign(new Error('ENOENT: /nope'), { code: 'ENOENT' });
  });
  assert.match(unreadable.kind === 'invalid' ? unreadable.error : '', /archive_s3_credentials_file: cannot read it \(ENOENT\)/);
});

test('the secret keys are secrets in config errors', () => {
  assert.throws(() => parseConf('archive_s3_secret_key=has space', { installDir: '/' }), (e: Error) => !e.message.includes('has space'));
});

test('classifyError: credentials and bucket pause the queue as config; 5xx and sockets as unreachable; the rest per file', () => {
  const sdk = (name: string, status?: number, message = name) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  assert.equal(classifyError(sdk('SignatureDoesNotMatch', 403)), 'config');
  assert.equal(classifyError(sdk('InvalidAccessKeyId', 403)), 'config');
  assert.equal(classifyError(sdk('NoSuchBucket', 404)), 'config');
  assert.equal(classifyError(sdk('Forbidden', 403)), 'config');
  assert.equal(classifyError(sdk('ServiceUnavailable', 503)), 'unreachable');
  assert.equal(classifyError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })), 'unreachable');
  assert.equal(classifyError(sdk('BadDigest', 400)), 'file');
  assert.equal(classifyError(new Error('verify: checksum mismatch [key:k]')), 'file');
  assert.equal(classifyError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'unreachable');
  assert.equal(classifyError(Object.assign(new Error('gone'), { code: 'ENOENT' })), 'gone');
  assert.equal(describeError(sdk('NoSuchBucket', 404, 'The specified bucket does not exist')), 'NoSuchBucket (HTTP 404): The specified bucket does not exist');
});
