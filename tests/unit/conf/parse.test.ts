import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONF_MAX_BYTES, ConfError, loadConf, parseConf } from '../../../src/conf/parse';
import { type GlobalKey, SCHEMA } from '../../../src/conf/schema';
import type { Conf } from '../../../src/conf/types';

const INSTALL = '/opt/edgerec';
const parse = (text: string) => parseConf(text, { installDir: INSTALL });

function confError(text: string): ConfError {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfError, `ConfError expected, got ${String(err)}`);
    return err;
  }
  assert.fail(`no error for:\n${text}`);
}

/** For every key: a good non-default value, what it parses to, and a bad value. The type forces full coverage. */
const CASES: { readonly [K in GlobalKey]: { good: string; want: Conf[K]; bad: string } } = {
  record_streams: { good: 'FALSE', want: false, bad: 'no' },
  record_flash_published_streams: { good: 'false', want: false, bad: '0' },
  record_rtsp_streams: { good: 'False', want: false, bad: 'yes' },
  record_webrtc_streams: { good: 'true', want: true, bad: 'on' },
  record_h264_to_ts: { good: 'true', want: true, bad: 'truee' },
  stream_record_policy_template: { good: '{streamName}-{startTime}-{endTime}', want: '{streamName}-{startTime}-{endTime}', bad: '{streamname}' },
  encode_record_name: { good: 'true,BASE64', want: 'base64', bad: 'true,ROT13' },
  exclude_record_name_characters: { good: ':.,/', want: ':.,/', bad: 'a\x01b' },
  record_rotation: { good: '10M', want: { kind: 'megabytes', megabytes: 10 }, bad: '20X' },
  record_rotation_index_enabled: { good: 'false', want: false, bad: 'nope' },
  record_audio_buffer_max_size: { good: '250', want: 250, bad: '-1' },
  on_record_hook_script: { good: '/opt/on_record.sh', want: '/opt/on_record.sh', bad: 'a\0b' },
  on_record_hook_timeout: { good: '2.5', want: 2.5, bad: '0' },
  record_dir: { good: '/var/lib/edgerec/records', want: '/var/lib/edgerec/records', bad: '' },
  record_tmp_dir: { good: 'tmp', want: '/opt/edgerec/tmp', bad: 'x\0' },
  record_audio_codec_sample_rate: { good: '48000', want: 48000, bad: '44000' },
  record_audio_codec_channels: { good: '1', want: 1, bad: '3' },
  record_fdk_aac_bitrate_mode: { good: '0', want: 0, bad: '6' },
  mp4_container_moov_first: { good: 'false', want: false, bad: '1' },
  mp4_container_moov_first_reserve_space: { good: 'true', want: true, bad: 'y' },
  mp4_container_moov_reserved_space_size: { good: '4096', want: 4096, bad: '2k' },
  file_recorder_thread_pool_max_size: { good: '8', want: 8, bad: '0' },
  webm_cluster_duration_limit: { good: '5000', want: 5000, bad: '1.5' },
  webm_cluster_size_limit: { good: '65536', want: 65536, bad: '12' },
  record_stop_timeout: { good: '3', want: 3, bad: 'soon' },
  record_write_ahead_seconds: { good: '12', want: 12, bad: '1.5' },
  record_response_content_disposition_header_value: { good: 'attachment', want: 'attachment', bad: 'download' },
  mp4_cutter_dir: { good: '/tmp', want: '/tmp', bad: '\0' },
  mp4_cutter_max_bytes: { good: '512M', want: { kind: 'bytes', bytes: 512 * 1024 * 1024 }, bad: '5 percent' },
  playback_max_duration: { good: '600', want: 600, bad: '0' },
  rest_port: { good: '0', want: 0, bad: '65536' },
  rest_bind: { good: '127.0.0.1', want: '127.0.0.1', bad: '300.1.1.1' },
  rtmp_port: { good: '19350', want: 19350, bad: 'rtmp' },
  rtmp_max_pending_connections: { good: '32', want: 32, bad: '0' },
  rtmp_max_pending_per_ip: { good: '4', want: 4, bad: '-1' },
  rtmp_handshake_timeout: { good: '2.5', want: 2.5, bad: '0.1' },
  rtmp_max_message_size: { good: '4194304', want: 4194304, bad: '16777216' },
  rtmp_max_chunk_size: { good: '65536', want: 65536, bad: '127' },
  rtmp_max_pending_bytes: { good: '32768', want: 32768, bad: '1024' },
  webrtc_ice_port_range: { good: '40000 - 40100', want: { min: 40000, max: 40100 }, bad: '40100-40000' },
  webrtc_public_ip: { good: '203.0.113.7', want: '203.0.113.7', bad: 'my.host' },
  webrtc_max_media_sections: { good: '4', want: 4, bad: '65' },
  rest_auth_token: { good: 's3cr3t-Token', want: 's3cr3t-Token', bad: 'two words' },
  publish_auth_token: { good: 'pub', want: 'pub', bad: 'pub lish' },
  record_retention_days: { good: '30', want: 30, bad: '-3' },
  record_min_free_percent: { good: '25', want: 25, bad: '100' },
  archive_s3_endpoint: { good: 'http://127.0.0.1:9000/', want: 'http://127.0.0.1:9000', bad: 'http://key:secret@s3.example' },
  archive_s3_bucket: { good: 'site-7.records', want: 'site-7.records', bad: 'Bad_Bucket' },
  archive_s3_region: { good: 'eu-west-3', want: 'eu-west-3', bad: 'EU West' },
  archive_s3_access_key: { good: 'AKIAEXAMPLE', want: 'AKIAEXAMPLE', bad: 'two words' },
  archive_s3_secret_key: { good: 'wJalr/K7MDENG+bPxRfiCY', want: 'wJalr/K7MDENG+bPxRfiCY', bad: 'a b' },
  archive_s3_credentials_file: { good: 'conf/s3.credentials', want: '/opt/edgerec/conf/s3.credentials', bad: 'a\0b' },
  archive_s3_force_path_style: { good: 'false', want: false, bad: 'virtual' },
  archive_key_template: { good: 'cams/{boxId}/{date}/{fileName}', want: 'cams/{boxId}/{date}/{fileName}', bad: '../{fileName}' },
  box_id: { good: 'site-7_box.2', want: 'site-7_box.2', bad: 'site 7' },
  archive_keep_local_days: { good: '0', want: 0, bad: '-2' },
  archive_max_bandwidth: { good: '1000000', want: 1000000, bad: '1M' },
  archive_concurrency: { good: '4', want: 4, bad: '0' },
  db_path: { good: 'data/index.db', want: '/opt/edgerec/data/index.db', bad: '\0' },
  media_host_count: { good: '4', want: 4, bad: '0' },
  rtsp_reconnect_min_delay: { good: '0.2', want: 0.2, bad: '0' },
  rtsp_reconnect_max_delay: { good: '60', want: 60, bad: '1e3' },
  rtsp_stall_timeout: { good: '10', want: 10, bad: 'x' },
  rtsp_client: { good: 'gstreamer', want: 'gstreamer', bad: 'ffmpeg' },
  log_level: { good: 'DEBUG', want: 'debug', bad: 'verbose' },
};

test('defaults: an empty file gives every default, paths from the install dir, derived dirs from record_dir', () => {
  const { conf, warnings } = parse('');
  assert.deepEqual(warnings, []);
  assert.equal(conf.record_streams, true);
  assert.equal(conf.record_webrtc_streams, false);
  assert.deepEqual(conf.record_rotation, { kind: 'disabled' });
  assert.equal(conf.encode_record_name, 'none');
  assert.equal(conf.record_dir, '/opt/edgerec/records');
  assert.equal(conf.record_tmp_dir, '/opt/edgerec/records');
  assert.equal(conf.mp4_cutter_dir, '/opt/edgerec/records');
  assert.equal(conf.db_path, '/opt/edgerec/records/edgerec.db');
  assert.equal(conf.on_record_hook_script, '/opt/edgerec/scripts/on_record_hook.sh');
  assert.equal(conf.on_record_hook_timeout, 30);
  assert.deepEqual(conf.webrtc_ice_port_range, { min: 31000, max: 31999 });
  assert.equal(conf.media_host_count, 2);
  assert.equal(conf.log_level, 'info');
  assert.deepEqual(conf.cameras, {});
});

for (const key of Object.keys(SCHEMA) as GlobalKey[]) {
  const c = CASES[key];
  test(`${key}: default, good value, bad value`, () => {
    const spec = SCHEMA[key];
    assert.deepEqual(parse(`${key}=${spec.def}`).conf, parse('').conf, 'explicit default = absent key');
    const good = parse(`# comment\n  ${key}  =  ${c.good}  \n`).conf;
    assert.deepEqual(good[key], c.want);
    assert.notDeepEqual(good[key], parse('').conf[key], 'the good value is not the default');
    const err = confError(`\n${key}=${c.bad}\n`);
    assert.equal(err.errors.length, 1);
    assert.equal(err.key, key);
    assert.equal(err.line, 2);
    assert.equal(err.allowed, spec.allowed);
    assert.match(err.message, new RegExp(`^bad value for ${key} at line 2: `));
    assert.ok(err.message.includes(`allowed: ${spec.allowed}`), err.message);
    const shown = spec.secret ? '***' : c.bad;
    assert.ok(err.message.includes(`"${shown}"`), err.message);
  });
}

test('record_rotation message matches the documented form', () => {
  const err = confError('a=1\nb=2\nrecord_rotation=20X');
  assert.equal(err.message, 'bad value for record_rotation at line 3: "20X" — allowed: N (seconds), NM (megabytes) or disabled');
  assert.deepEqual(parse('record_rotation=20').conf.record_rotation, { kind: 'seconds', seconds: 20 });
  assert.deepEqual(parse('record_rotation=DISABLED').conf.record_rotation, { kind: 'disabled' });
  confError('record_rotation=0');
});

test('mp4_cutter_max_bytes: bytes, K/M/G, or a percentage of the disk', () => {
  const q = (v: string) => parse(`mp4_cutter_max_bytes=${v}`).conf.mp4_cutter_max_bytes;
  assert.deepEqual(q('2%'), { kind: 'percent', percent: 2 });
  assert.deepEqual(q('0.5 %'), { kind: 'percent', percent: 0.5 });
  assert.deepEqual(q('1000000'), { kind: 'bytes', bytes: 1_000_000 });
  assert.deepEqual(q('64k'), { kind: 'bytes', bytes: 65536 });
  assert.deepEqual(q('3G'), { kind: 'bytes', bytes: 3 * 1024 ** 3 });
  for (const bad of ['0%', '101%', '0', '-5', '1T', '1.5G', '%']) confError(`mp4_cutter_max_bytes=${bad}`);
});

test('encode_record_name forms and hook/dir empties', () => {
  assert.equal(parse('encode_record_name=true,HEX').conf.encode_record_name, 'hex');
  assert.equal(parse('encode_record_name=true, base64').conf.encode_record_name, 'base64');
  confError('encode_record_name=true');
  const { conf } = parse('on_record_hook_script=\nrecord_dir=/data/rec\nrecord_tmp_dir=\nmp4_cutter_dir=cuts');
  assert.equal(conf.on_record_hook_script, '');
  assert.equal(conf.record_tmp_dir, '/data/rec');
  assert.equal(conf.db_path, '/data/rec/edgerec.db');
  assert.equal(conf.mp4_cutter_dir, '/opt/edgerec/cuts');
});

test('comments (# and !), blank lines, CRLF, whitespace, value with = in it', () => {
  const { conf, warnings } = parse('! bang comment\r\n\r\n   # hash comment\r\n\tstream_record_policy_template = a=b-{login} \r\n');
  assert.equal(conf.stream_record_policy_template, 'a=b-{login}');
  assert.deepEqual(warnings, []);
});

test('unknown keys, duplicates and reference-server keys warn; the last duplicate wins', () => {
  const { conf, warnings } = parse('rest_port=1\nfoo=bar\nrest_port=2\nwebm_java_writer_enable=false\ncamera.a.url=rtsp://h/x\ncamera.a.zoom=2');
  assert.equal(conf.rest_port, 2);
  assert.deepEqual(warnings, [
    'unknown key "foo" at line 2 (ignored)',
    'duplicate key "rest_port" at line 3 (line 1 ignored, the last one wins)',
    'key "webm_java_writer_enable" at line 4 is ignored: it picks a WebM writer of the reference server; edgerec always muxes with GStreamer',
    'unknown key "camera.a.zoom" at line 6 (ignored; a camera has url, transport, record, template, rotation)',
  ]);
});

test('the moov reservation keys are parsed but have no effect: set, each gets a warning naming it and why', () => {
  const { conf, warnings } = parse('mp4_container_moov_first_reserve_space=true\nrest_port=1\nmp4_container_moov_reserved_space_size=4096');
  assert.equal(conf.mp4_container_moov_reserved_space_size, 4096, 'still validated and typed');
  assert.deepEqual(warnings, [
    'key "mp4_container_moov_first_reserve_space" at line 1 has no effect: files are written fragmented and made moov-first when finalized (mp4_container_moov_first), so no moov space is reserved',
    'key "mp4_container_moov_reserved_space_size" at line 3 has no effect: files are written fragmented and made moov-first when finalized (mp4_container_moov_first), so no moov space is reserved',
  ]);
  assert.match(confError('mp4_container_moov_reserved_space_size=0').message, /mp4_container_moov_reserved_space_size/, 'a bad value is still refused');
  assert.deepEqual(parse('mp4_container_moov_first=false').warnings, [], 'the key that does apply has no warning');
});

test('every error of a file is reported together, in line order', () => {
  const err = confError('record_rotation=20X\nrest_port=99999\nok_unknown=1\nnot a pair\nrecord_audio_codec_channels=5\ncamera.bad name.url=rtsp://h/');
  assert.deepEqual(
    err.errors.map((e) => [e.line, e.key]),
    [
      [1, 'record_rotation'],
      [2, 'rest_port'],
      [4, ''],
      [5, 'record_audio_codec_channels'],
      [6, 'camera.bad name.url'],
    ],
  );
  assert.match(err.message, /^5 errors in config: bad value for record_rotation at line 1/);
  for (const e of err.errors) assert.ok(err.message.includes(e.message));
});

test('cross-key check: reconnect min delay above max delay', () => {
  const err = confError('rtsp_reconnect_min_delay=10\nrtsp_reconnect_max_delay=5');
  assert.equal(err.key, 'rtsp_reconnect_max_delay');
  assert.equal(err.line, 2);
});

test('cameras: a group parses, url is required, name and values are checked', () => {
  const { conf } = parse(
    'camera.lobby.url=rtsp://admin:pw@10.0.0.5:554/s1\ncamera.lobby.transport=UDP\ncamera.lobby.record=false\n' +
      'camera.lobby.rotation=30\ncamera.gate-2.url=rtsps://cam/\ncamera.gate-2.template=\n',
  );
  assert.deepEqual(conf.cameras.lobby, {
    name: 'lobby',
    url: 'rtsp://admin:pw@10.0.0.5:554/s1',
    transport: 'udp',
    record: false,
    template: null,
    rotation: { kind: 'seconds', seconds: 30 },
  });
  assert.deepEqual(conf.cameras['gate-2'], { name: 'gate-2', url: 'rtsps://cam/', transport: 'tcp', record: true, template: null, rotation: null });
  const noUrl = confError('camera.x.transport=tcp');
  assert.equal(noUrl.key, 'camera.x.url');
  assert.equal(noUrl.line, 1);
  assert.equal(confError('camera.x.url=http://cam/').key, 'camera.x.url');
  assert.equal(confError('camera.x.url=rtsp://cam/\ncamera.x.transport=sctp').key, 'camera.x.transport');
  assert.equal(confError('camera.x.url=rtsp://cam/\ncamera.x.template={nope}').key, 'camera.x.template');
  assert.equal(confError(`camera.${'a'.repeat(65)}.url=rtsp://cam/`).errors.length, 1);
  assert.ok(parse(`camera.${'a'.repeat(64)}.url=rtsp://cam/`).conf.cameras['a'.repeat(64)]);
});

test('secrets never appear in errors or warnings', () => {
  const secrets = ['hunter2 x', 'topsecret', 'p@ss:w0rd'];
  const err = confError(
    `rest_auth_token=${secrets[0]}\npublish_auth_token=${secrets[1]} y\n` +
      `camera.a.url=http://admin:${secrets[2]}@cam/\ncamera.b.url=rtsp:/admin:${secrets[2]}@cam\n` +
      `rest_auth_token ${secrets[1]}\npassword: ${secrets[1]}`,
  );
  assert.equal(err.errors.length, 6);
  const all = [err.message, ...err.errors.map((e) => `${e.message} ${e.value}`)].join('\n');
  for (const s of [...secrets, 'hunter2', 'w0rd']) assert.ok(!all.includes(s), `"${s}" leaked: ${all}`);
  assert.ok(all.includes('"***"'));
  assert.ok(all.includes('http://***@cam/'));
  const { warnings } = parse('rest_auth_token=abc\nrest_auth_token=def\ncamera.a.url=rtsp://u:def@h/\ncamera.a.url=rtsp://u:abc@h/');
  assert.equal(warnings.length, 2);
  assert.ok(!warnings.join().includes('abc') && !warnings.join().includes('def'));
});

test('the Conf is deeply frozen', () => {
  const { conf } = parse('camera.a.url=rtsp://h/\ncamera.a.rotation=5M');
  assert.ok(Object.isFrozen(conf));
  assert.ok(Object.isFrozen(conf.cameras));
  assert.ok(Object.isFrozen(conf.cameras.a));
  assert.ok(Object.isFrozen(conf.cameras.a?.rotation));
  assert.ok(Object.isFrozen(conf.webrtc_ice_port_range));
  assert.throws(() => {
    (conf as { rest_port: number }).rest_port = 1;
  }, TypeError);
});

test('loadConf reads a file; a missing file is a ConfError naming the path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-conf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'edgerec.properties');
  writeFileSync(path, 'record_dir=rec\n');
  assert.equal(loadConf(path, dir).conf.record_dir, join(dir, 'rec'));
  const missing = join(dir, 'nope.properties');
  // named by its file name only: the message reaches health, which never shows where files live
  assert.throws(() => loadConf(missing, dir), (err: unknown) => err instanceof ConfError && err.message.includes('nope.properties') && !err.message.includes(dir) && /no such file/.test(err.message));
});

test('a token pasted on a line of its own, or with = padding, is never quoted; nor a secret quoted under another key', () => {
  const token = 'Zk9vQmFyQmF6UXV4MTIzNDU2Nzg5MEFCQ0RFRg';
  const err = confError(`rest_auth_token=${token}\n${token}\n  ${token}==\nrecord_rotation=${token}\n`);
  const all = [err.message, ...err.errors.map((e) => `${e.message} ${e.value} ${e.key}`)].join('\n');
  assert.ok(!all.includes(token.slice(0, 12)), `leaked: ${all}`);
  assert.match(err.message, /line 2 is not key=value \(38 characters, not shown\)/);
  const { warnings } = parse(`${token}==\nfoo=1\nrecord_rotaton=5\n`);
  assert.ok(!warnings.join('\n').includes(token.slice(0, 12)), warnings.join('\n'));
  assert.deepEqual(warnings, [
    'unknown key (38 characters, not shown: not a key name, maybe a secret) at line 1 (ignored)',
    'unknown key "foo" at line 2 (ignored)',
    'unknown key "record_rotaton" at line 3 (ignored)',
  ]);
});

test('a garbage file: at most 10 errors and 10 warnings reported, each value cut short', () => {
  const lines = Array.from({ length: 5000 }, (_, i) => (i % 2 ? `garbage line ${i} ${'x'.repeat(500)}` : `unknown_${i}=1`));
  lines.push(`record_rotation=${'9'.repeat(10_000)}X`);
  const err = confError(lines.join('\n'));
  assert.equal(err.errors.length, 10);
  assert.match(err.message, /^2501 errors in config: .*; and 2491 more \(only the first 10 are reported\)$/);
  assert.ok(err.message.length < 3000, `${err.message.length} characters`);
  const { warnings } = parse(Array.from({ length: 5000 }, (_, i) => `unknown_${i}=${'v'.repeat(1000)}`).join('\n'));
  assert.equal(warnings.length, 11);
  assert.equal(warnings[10], 'and 4990 more warnings (only the first 10 are reported)');
  const long = confError(`record_rotation=${'9'.repeat(10_000)}X`);
  assert.ok(long.message.length < 300 && long.message.includes('…(10001 characters)'), long.message);
});

test('a config file over 1 MiB is refused from its size, before it is read', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-conf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'edgerec.properties');
  writeFileSync(path, Buffer.alloc(CONF_MAX_BYTES, 0x41));
  assert.throws(() => loadConf(path, dir), (err: unknown) => err instanceof ConfError && /not key=value/.test(err.message), 'exactly 1 MiB is read');
  writeFileSync(path, Buffer.alloc(50 * 1024 * 1024, 0x41));
  const t0 = process.hrtime.bigint();
  assert.throws(
    () => loadConf(path, dir),
    (err: unknown) => err instanceof ConfError && err.message === `config file edgerec.properties is too large (${50 * 1024 * 1024} bytes); it was not read — allowed: a properties file of at most 1048576 bytes (1 MiB)`,
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 20, `refused in ${ms} ms`);
  // a FIFO or a device in its place: refused at once, never read (a FIFO without a writer would block open())
  rmSync(path);
  execFileSync('mkfifo', [path]);
  assert.throws(() => loadConf(path, dir), /is not a regular file/);
  rmSync(path);
  symlinkSync('/dev/zero', path);
  assert.throws(() => loadConf(path, dir), /is not a regular file/);
});
