import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { cutName } from '../../../src/api/cutter';
import { expandTemplate, fillEndElements, numberedName, safeJoin, templateVars, TEMPLATE_ELEMENTS, unknownElements, type NameOptions, type NameSource, type NameVars } from '../../../src/conf/template';
import type { Container } from '../../../src/pipeline/types';

const plain: NameOptions = { exclude: '/', encoding: 'none', fragmentIndex: null, extension: 'mp4' };
const name = (template: string, vars: NameVars, opts: Partial<NameOptions> = {}): string =>
  expandTemplate(template, vars, { ...plain, ...opts });
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

test('reference: {streamName} of an ffmpeg publish is stream_ffmpeg.mp4', () => {
  assert.equal(name('{streamName}', { streamName: 'stream_ffmpeg' }), 'stream_ffmpeg.mp4');
});

test('reference: rotation fragments {streamName}-{startTime}-{endTime}_N, and without index', () => {
  const t = '{streamName}-{startTime}-{endTime}';
  const f = (s: number, e: number, i: number | null) => name(t, { streamName: 'test', startTime: s, endTime: e }, { fragmentIndex: i });
  assert.equal(f(1553577643961, 1553577663988, 1), 'test-1553577643961-1553577663988_1.mp4');
  assert.equal(f(1553577663989, 1553577683997, 2), 'test-1553577663989-1553577683997_2.mp4');
  assert.equal(f(1553577683997, 1553577701626, 3), 'test-1553577683997-1553577701626_3.mp4');
  assert.equal(f(1553577643961, 1553577663988, null), 'test-1553577643961-1553577663988.mp4');
});

test('reference: default template stream-{mediaSessionId}-{login}', () => {
  const vars = { mediaSessionId: '57882100-ac49-11e9-afdd-6752f5be57a9', login: 'jtdvnittjkrd8rsc3dnfbger2o' };
  assert.equal(name('stream-{mediaSessionId}-{login}', vars), 'stream-57882100-ac49-11e9-afdd-6752f5be57a9-jtdvnittjkrd8rsc3dnfbger2o.mp4');
  assert.equal(name('stream-{mediaSessionId}-{login}', { ...vars, login: '' }), 'stream-57882100-ac49-11e9-afdd-6752f5be57a9-.mp4');
});

test('elements known only at the end stay literal while recording, then are filled', () => {
  const t = '{streamName}-{startTimeMillis}-{endTimeMillis}-{endTime}-{duration}';
  const running = name(t, { streamName: 's', startTimeMillis: 1563776083752 }, { fragmentIndex: 1 });
  assert.equal(running, 's-1563776083752-{endTimeMillis}-{endTime}-{duration}_1.mp4');
  const done = name(t, { streamName: 's', startTimeMillis: 1563776083752, endTimeMillis: 1563776093752, endTime: 10000, duration: 10000 });
  assert.equal(done, 's-1563776083752-1563776093752-10000-10000.mp4');
});

test('every element is filled and cut to its maximum; unknown {foo} stays literal', () => {
  const long = 'x'.repeat(100);
  const vars: NameVars = {
    streamName: long,
    duration: 123456789012345,
    startTime: 123456789012345678901,
    endTime: 98765432109876543210,
    startTimeMillis: 123456789012345678901,
    endTimeMillis: 1.6,
    sessionId: 'S'.repeat(70),
    mediaSessionId: 'M'.repeat(40),
    login: 'L'.repeat(40),
    audioCodec: 'VORBIS',
    videoCodec: 'MJPEG',
  };
  const keys = Object.keys(vars) as (keyof NameVars)[];
  const got = Object.fromEntries(keys.map((k) => [k, name(`{${k}}`, vars, { exclude: '' }).replace(/\.mp4$/, '')]));
  assert.deepEqual(got, {
    streamName: long,
    duration: '123456789012345',
    startTime: '12345678901234568000',
    endTime: '98765432109876540000',
    startTimeMillis: '12345678901234568000',
    endTimeMillis: '2',
    sessionId: 'S'.repeat(60),
    mediaSessionId: 'M'.repeat(36),
    login: 'L'.repeat(32),
    audioCodec: 'vorb',
    videoCodec: 'JPEG',
  });
  assert.equal(name('{foo}-{streamName}-{StreamName}', vars, { exclude: '' }), `{foo}-${long}-{StreamName}.mp4`);
});

test('codec ids become the reference names, cut to 4', () => {
  const c = (audioCodec: string, videoCodec: string) => name('{videoCodec}-{audioCodec}', { audioCodec, videoCodec });
  assert.equal(c('AAC', 'H264'), 'H264-mpeg.mp4');
  assert.equal(c('OPUS', 'VP8'), 'VP8-opus.mp4');
  assert.equal(c('PCMA', 'H265'), 'H265-PCMA.mp4');
  assert.equal(c('mpeg4-generic', 'VP9'), 'VP9-mpeg.mp4');
});

test('a value is not expanded again: a stream name holding {endTime} is text', () => {
  assert.equal(name('{streamName}-{endTime}', { streamName: 'a{login}', endTime: 5, login: 'bob' }), 'a{login}-5.mp4');
});

test('exclude_record_name_characters removes every listed character', () => {
  const vars = { streamName: 'a:b.c,d/e', login: 'x.y' };
  assert.equal(name('{streamName}-{login}', vars, { exclude: ':.,/' }), 'abcde-xy.mp4');
  assert.equal(name('{streamName}', vars, { exclude: '/' }), 'a:b.c,de.mp4');
});

test('HEX and BASE64 encode the whole templated name into a valid file name', () => {
  assert.equal(name('{streamName}', { streamName: 'a/b' }, { exclude: '', encoding: 'hex' }), '612f62.mp4');
  assert.equal(name('{streamName}', { streamName: 'a/b' }, { exclude: '', encoding: 'hex', fragmentIndex: 2 }), '612f62_2.mp4');
  // standard base64 of '???' is 'Pz8/': the url-safe alphabet keeps it one path component
  const b = name('{streamName}', { streamName: '???' }, { exclude: '', encoding: 'base64', extension: 'webm' });
  assert.equal(b, 'Pz8_.webm');
  const s = 'caméra/1 «lobby»';
  const enc = name('{streamName}', { streamName: s }, { exclude: '', encoding: 'base64' });
  assert.equal(Buffer.from(enc.replace(/\.mp4$/, ''), 'base64url').toString('utf8'), s);
});

test('a name with / and .. stays one component inside record_dir', () => {
  const dir = '/srv/records';
  for (const exclude of ['', '/']) {
    for (const streamName of ['../../etc/passwd', '..', '.', '/', '.hidden', 'a\\..\\b', 'x\0y\n\r\tz\u007f']) {
      const n = name('{streamName}', { streamName }, { exclude });
      assert.ok(!n.includes('/') && !n.includes('\\') && !n.includes('\0'), n);
      assert.ok(!/[\u0000-\u001f\u007f]/.test(n), JSON.stringify(n));
      assert.ok(!n.startsWith('.'), n);
      assert.equal(safeJoin(dir, n), join(dir, n));
    }
  }
  assert.equal(name('{streamName}', { streamName: '../../etc/passwd' }, { exclude: '' }), '_.._.._etc_passwd.mp4');
  assert.equal(name('{streamName}', { streamName: '../../etc/passwd' }), '_....etcpasswd.mp4');
  assert.equal(name('{streamName}', { streamName: 'x\0y\nz' }), 'xyz.mp4');
  assert.equal(name('', {}), '_.mp4');
  assert.equal(name('{streamName}', { streamName: '///' }), '_.mp4');
});

test('a 300-character stream name is cut to 224 bytes (room for a cut suffix), keeping index and extension', () => {
  const n = name('{streamName}', { streamName: 'a'.repeat(300) }, { fragmentIndex: 12, extension: 'webm' });
  assert.equal(bytes(n), 224);
  assert.ok(n.endsWith('a_12.webm'));
  const plainCut = name('{streamName}', { streamName: 'b'.repeat(300) }, { extension: 'ts' });
  assert.equal(plainCut, `${'b'.repeat(221)}.ts`);
  // the longest cut of the longest MP4 name still fits in NAME_MAX, unhashed
  const longest = name('{streamName}', { streamName: 'c'.repeat(300) });
  const cut = cutName(`/rec/${longest}`, 9999999.9, 9999999.9);
  assert.ok(cut.startsWith(longest.replace(/\.mp4$/, '')) && bytes(cut) <= 250, cut);
});

test('a multi-byte UTF-8 name is cut on a character boundary', () => {
  const n = name('{streamName}', { streamName: 'é'.repeat(200) }, { fragmentIndex: 1 });
  // 218 bytes of room: 109 two-byte characters, never half of one
  assert.equal(n, `${'é'.repeat(109)}_1.mp4`);
  assert.equal(bytes(n), 224);
  const n2 = name('{streamName}', { streamName: 'é'.repeat(200) }, { fragmentIndex: 12 });
  assert.equal(n2, `${'é'.repeat(108)}_12.mp4`, '217 bytes of room: 108 characters');
  const e = name('{streamName}', { streamName: `a${'😀'.repeat(100)}` });
  assert.ok(bytes(e) <= 224);
  assert.equal(Buffer.from(e, 'utf8').toString('utf8'), e);
  assert.ok(!e.includes('\ufffd'));
  assert.equal(e, `a${'😀'.repeat(54)}.mp4`);
});

test('safeJoin refuses anything but one component inside the folder', () => {
  assert.equal(safeJoin('/srv/records/', 'a.mp4'), '/srv/records/a.mp4');
  assert.equal(safeJoin('/srv/records', '..a.mp4'), '/srv/records/..a.mp4');
  for (const bad of ['', '.', '..', '../a.mp4', 'a/b.mp4', '/etc/passwd', 'a\0b', 'sub/../a.mp4']) {
    assert.throws(() => safeJoin('/srv/records', bad), /unsafe file name/, JSON.stringify(bad));
  }
});

test('the element list is the one the names are expanded from: each element is filled, each unknown one refused', () => {
  const vars = Object.fromEntries(TEMPLATE_ELEMENTS.map((e) => [e, e.endsWith('Codec') ? 'H264' : /Time|duration/.test(e) ? 7 : 'v'])) as NameVars;
  for (const e of TEMPLATE_ELEMENTS) assert.ok(!name(`{${e}}`, vars).includes('{'), e);
  assert.deepEqual(unknownElements('{streamName}-{foo}-{}-{StreamName}'), ['foo', '', 'StreamName']);
  assert.deepEqual(unknownElements(TEMPLATE_ELEMENTS.map((e) => `{${e}}`).join('-')), []);
});

/** A stream whose own clock starts at its publish (as RTMP's). */
const stream: NameSource = {
  name: 'cam',
  sessionId: 'c2Vz',
  mediaSessionId: '57882100-ac49-11e9-afdd-6752f5be57a9',
  login: '',
  codecs: () => ({ video: 'H264', audio: 'AAC' }),
  streamClock: (epochMs) => epochMs - 1_700_000_000_000,
};

test('the end-known values are filled the same by the recorder and by recovery; {duration} for MP4 only (SPEC §3)', () => {
  const t = '{streamName}-{startTime}-{endTime}-{endTimeMillis}-{duration}';
  const start = 1_700_000_010_000;
  const end = 1_700_000_025_500;
  for (const container of ['mp4', 'webm', 'ts'] as Container[]) {
    const opts = { fragmentIndex: 3, extension: container };
    const running = name(t, templateVars(stream, container, start), opts);
    assert.equal(running, `cam-10000-{endTime}-{endTimeMillis}-{duration}_3.${container}`);
    const byRecorder = name(t, templateVars(stream, container, start, end), opts);
    const byRecovery = fillEndElements(running, container, start, end, stream.streamClock(end));
    assert.equal(byRecovery, byRecorder, container);
    assert.equal(byRecorder, container === 'mp4' ? 'cam-10000-25500-1700000025500-15500_3.mp4' : `cam-10000-25500-1700000025500-{duration}_3.${container}`);
  }
  // an encoded name holds no element: recovery leaves it as it is
  const hex = name(t, templateVars(stream, 'mp4', start), { encoding: 'hex' });
  assert.equal(fillEndElements(hex, 'mp4', start, end, 25_500), hex);
});

test('numbered variants of a taken name keep the extension and fit in 255 bytes', () => {
  assert.equal(numberedName('a.mp4', 0), 'a.mp4');
  assert.equal(numberedName('a.mp4', 2), 'a(2).mp4');
  const long = `${'é'.repeat(130)}.webm`;
  const v = numberedName(long, 17);
  assert.ok(v.endsWith('(17).webm') && bytes(v) <= 255 && !v.includes('\ufffd'), v);
});
