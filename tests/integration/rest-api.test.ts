import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeClip } from '../helpers/media';
import { start, type Proc, waitFor } from '../helpers/proc';
import { baseConf, type Service, startService } from '../helpers/service';
import type { RecordingRow as Row } from '../helpers/recorded-file';

// Every REST endpoint through the real service, fed by a real RTMP publisher (ffmpeg).

type Json = Record<string, unknown>;

let s: Service;
const procs: Proc[] = [];
const NAME = 'cam_rest';

/** The publisher's media session id (each test asks for it: no test relies on another having run). */
async function liveSession(): Promise<string> {
  const found = await waitFor(
    `stream ${NAME} publishing`,
    async () => {
      const r = await s.post('/rest-api/stream/find', { name: NAME });
      return r.status === 200 ? (r.body as Json[]) : null;
    },
    15_000,
    100,
  );
  return String(found[0]?.mediaSessionId);
}

/** Record one file of about 1.5 s named `<template>.mp4` from the publisher; its row once complete. */
async function recordOneFile(template: string): Promise<Row> {
  const id = await liveSession();
  const r = await s.post('/rest-api/stream/startRecording', { mediaSessionId: id, config: { fileTemplate: template, rotation: 'disabled' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await waitFor(`${template} recording`, async () => (await rows(`stream=${NAME}&state=recording`)).some((x) => x.fileName.startsWith(template)), 15_000, 100);
  await new Promise((res) => setTimeout(res, 1500)); // some media in the file
  assert.equal((await s.post('/rest-api/stream/stopRecording', { mediaSessionId: id })).status, 200);
  const [row] = await finishedRows(NAME, 1, (x) => x.fileName === `${template}.mp4`);
  assert.ok(row);
  return row;
}

/** The RTMP port of a started service, from its `rtmp listening` log line. */
function rtmpPort(svc: Service): Promise<number> {
  return waitFor('the rtmp port in the log', () => svc.logs().find((l) => l.msg === 'rtmp listening')?.rtmpPort as number | undefined, 10_000, 50);
}

function raw(path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return s.json(path, { method: 'POST', headers, body });
}

/** Asserts a JSON error answer: status, `{status, error}` and the error naming `mentions`. */
function assertError(r: { status: number; body: unknown }, status: number, mentions: RegExp, what: string): void {
  assert.equal(r.status, status, `${what}: status (body ${JSON.stringify(r.body)})`);
  const b = r.body as Json;
  assert.equal(b.status, status, `${what}: body.status`);
  assert.match(String(b.error), mentions, `${what}: error message`);
}

async function rows(query: string): Promise<Row[]> {
  const r = await s.json(`/rest-api/recordings?${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { recordings: Row[] }).recordings;
}

/** Rows of a stream (those `pick` keeps) once there are `atLeast` and every one is complete. */
async function finishedRows(stream: string, atLeast: number, pick: (r: Row) => boolean = () => true): Promise<Row[]> {
  return waitFor(
    `${atLeast} complete rows of ${stream}`,
    async () => {
      const all = (await rows(`stream=${stream}&limit=1000`)).filter(pick);
      return all.length >= atLeast && all.every((r) => r.state === 'complete') ? all : null;
    },
    30_000,
    200,
  );
}

before(async () => {
  s = await startService({ conf: 'record_flash_published_streams=false\n' });
  const port = await rtmpPort(s);
  // 1 s keyframes so that a 1 s rotation cuts every second
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25 });
  const p = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/${NAME}`]);
  procs.push(p);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await s?.stop();
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

test('before anything records: find_all 404, bad bodies 400 naming the field, unknown sessions 404', async () => {
  const h = await s.json('/rest-api/health');
  assert.equal(h.status, 200);
  assert.match(String((h.body as { auth: { rest: string } }).auth.rest), /open/, 'health says auth is off');
  assertError(await s.post('/rest-api/recorder/find_all'), 404, /no recording/, 'find_all with none running');

  // the reference manual's bodies, as written: well formed, but no such session here
  assertError(
    await s.post('/rest-api/recorder/startup', { mediaSessionId: '5a072377-73c1-4caf-abd3', config: { fileTemplate: '{streamName}-{startTime}-{endTime}', rotation: '20M' } }),
    404,
    /5a072377-73c1-4caf-abd3/,
    'startup, reference body',
  );
  assertError(await s.post('/rest-api/stream/startRecording', { mediaSessionId: '1234567890abcdefgh', config: { fileTemplate: 'test', rotation: 'disabled' } }), 404, /1234567890abcdefgh/, 'startRecording, reference body');
  assertError(await s.post('/rest-api/stream/stopRecording', { mediaSessionId: '5a072377-73c1-4caf-abd3' }), 404, /5a072377/, 'stopRecording unknown');
  assertError(await s.post('/rest-api/recorder/terminate', { mediaSessionId: '5a072377-73c1-4caf-abd3' }), 404, /5a072377/, 'terminate unknown');

  for (const path of ['/rest-api/stream/startRecording', '/rest-api/recorder/startup', '/rest-api/stream/stopRecording', '/rest-api/recorder/terminate']) {
    assertError(await s.post(path, {}), 400, /mediaSessionId/, `${path} {}`);
    assertError(await s.post(path, { mediaSessionId: 42 }), 400, /mediaSessionId/, `${path} numeric id`);
    assertError(await s.post(path, [1, 2]), 400, /body/, `${path} array body`);
    assertError(await raw(path, '{"mediaSessionId": '), 400, /JSON/, `${path} broken JSON`);
  }
  for (const path of ['/rest-api/stream/startRecording', '/rest-api/recorder/startup']) {
    assertError(await s.post(path, { mediaSessionId: 'x', config: 'fast' }), 400, /config/, `${path} config string`);
    assertError(await s.post(path, { mediaSessionId: 'x', config: { rotation: '20Q' } }), 400, /config\.rotation/, `${path} rotation 20Q`);
    assertError(await s.post(path, { mediaSessionId: 'x', config: { rotation: -5 } }), 400, /config\.rotation/, `${path} rotation -5`);
    assertError(await s.post(path, { mediaSessionId: 'x', config: { fileTemplate: 7 } }), 400, /config\.fileTemplate/, `${path} numeric template`);
    assertError(await s.post(path, { mediaSessionId: 'x', config: { fileTemplate: '  ' } }), 400, /config\.fileTemplate/, `${path} blank template`);
  }

  const all = await s.post('/rest-api/stream/find_all');
  assert.equal(all.status, 200);
  assert.ok(Array.isArray(all.body));
  assertError(await s.post('/rest-api/stream/find', { name: 'nobody' }), 404, /nobody/, 'find unknown name');
  assertError(await s.post('/rest-api/stream/find', { mediaSessionId: 'nope-1' }), 404, /nope-1/, 'find unknown id');
  assertError(await s.post('/rest-api/stream/find', {}), 400, /name.*mediaSessionId/, 'find without a key');
  assertError(await s.post('/rest-api/stream/find', { name: 3 }), 400, /name/, 'find numeric name');
  assertError(await s.post('/rest-api/stream/find', { mediaSessionId: false }), 400, /mediaSessionId/, 'find boolean id');
  assertError(await raw('/rest-api/stream/find', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 400, /JSON/, 'find form body');
});

test('a publisher shows in stream/find_all and stream/find; startRecording with the reference body, restart, stop', async () => {
  const found = await waitFor(
    `stream ${NAME} publishing`,
    async () => {
      const r = await s.post('/rest-api/stream/find', { name: NAME });
      return r.status === 200 ? (r.body as Json[]) : null;
    },
    15_000,
    100,
  );
  assert.equal(found.length, 1);
  const st = found[0] as Json;
  const sessionId = String(st.mediaSessionId);
  assert.match(sessionId, /^[0-9a-f-]{36}$/, 'a UUID media session id');
  assert.equal(st.published, 'rtmp');
  assert.equal(st.recording, false, 'record_flash_published_streams=false: not recording by itself');
  assert.equal(st.videoCodec, 'H264');
  assert.equal(st.audioCodec, 'AAC');
  const byId = await s.post('/rest-api/stream/find', { mediaSessionId: sessionId });
  assert.equal(byId.status, 200);
  assert.equal((byId.body as Json[])[0]?.name, NAME);
  const all = (await s.post('/rest-api/stream/find_all')).body as Json[];
  assert.ok(all.some((x) => x.mediaSessionId === sessionId && x.name === NAME && x.status !== undefined && x.recording === false), JSON.stringify(all));

  // the reference manual's first body, with our session
  const r1 = await s.post('/rest-api/recorder/startup', { mediaSessionId: sessionId, config: { fileTemplate: '{streamName}-{startTime}-{endTime}', rotation: '20M' } });
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  const running1 = await waitFor(
    'the running file name with its start filled',
    async () => {
      const r = await s.post('/rest-api/recorder/find_all');
      const list = r.status === 200 ? (r.body as { fileName: string; mediaSessionId: string }[]) : [];
      return list.length === 1 && !list[0]?.fileName.includes('{startTime}') ? list : null;
    },
    15_000,
    100,
  );
  assert.equal(running1[0]?.mediaSessionId, sessionId);
  assert.match(String(running1[0]?.fileName), new RegExp(`^${NAME}-\\d+-\\{endTime\\}_1\\.mp4$`), 'unfilled {endTime} while running, fragment index, .mp4');
  assert.equal(((await s.post('/rest-api/stream/find', { name: NAME })).body as Json[])[0]?.recording, true);
  const open = await waitFor('a recording row', async () => (await rows(`stream=${NAME}&state=recording`))[0]);
  assert.equal(open.url, null, 'no download URL while recording');
  assertError(await s.json(`/rest-api/recordings/${open.id}`, { method: 'DELETE' }), 409, /recording|stop/, 'DELETE while recording');
  await new Promise((r) => setTimeout(r, 2500)); // a couple of seconds of media in the first file

  // a second start on the same session (reference's second body): the first recording stops and is finalized
  const r2 = await s.post('/rest-api/stream/startRecording', { mediaSessionId: sessionId, config: { fileTemplate: 'test', rotation: 'disabled' } });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  const first = await finishedRows(NAME, 1, (r) => r.fileName !== 'test.mp4');
  assert.equal(first.length, 1);
  const f1 = first[0] as Row;
  assert.match(f1.fileName, new RegExp(`^${NAME}-\\d+-\\d+_1\\.mp4$`), `finalized name has {endTime} filled: ${f1.fileName}`);
  assert.ok(existsSync(join(s.recordDir, f1.fileName)), 'first file in record_dir');
  assert.equal(f1.url, `/client/records/${encodeURIComponent(f1.fileName)}`);
  const running2 = await s.post('/rest-api/recorder/find_all');
  assert.equal(running2.status, 200);
  assert.deepEqual(running2.body, [{ fileName: 'test.mp4', mediaSessionId: sessionId }], 'only the new recording runs, named by the new template');
  await new Promise((r) => setTimeout(r, 1500));

  const stop = await s.post('/rest-api/recorder/terminate', { mediaSessionId: sessionId });
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  assertError(await s.post('/rest-api/stream/stopRecording', { mediaSessionId: sessionId }), 404, /not recording/, 'stop when not recording');
  assertError(await s.post('/rest-api/recorder/find_all'), 404, /no recording/, 'find_all after stop');
  const both = await finishedRows(NAME, 2);
  assert.deepEqual(both.map((r) => r.fileName).sort(), [f1.fileName, 'test.mp4'].sort());
  assert.ok(existsSync(join(s.recordDir, 'test.mp4')));
});

test('recordings: parameters checked, GET and DELETE by id', async () => {
  const bad: [string, RegExp][] = [
    ['from=abc', /from/],
    ['to=1.5', /to/],
    ['from=-3', /from/],
    ['from=2000&to=1000', /to.*from/],
    ['state=done', /state/],
    ['limit=0', /limit/],
    ['limit=5000', /limit/],
    ['limit=ten', /limit/],
    ['after=not-a-cursor', /after/],
    [`after=${Buffer.from('12:x').toString('base64url')}`, /after/],
  ];
  for (const [q, re] of bad) assertError(await s.json(`/rest-api/recordings?${q}`), 400, re, `recordings?${q}`);

  const victim = await recordOneFile('victim');
  const all = await rows(`stream=${NAME}`);
  assert.ok(all.some((r) => r.id === victim.id));
  assert.deepEqual(await rows(`stream=no_such_stream`), []);
  assert.deepEqual(await rows(`stream=${NAME}&state=failed`), []);
  const now = Date.now();
  assert.deepEqual(await rows(`from=${now + 3_600_000}&to=${now + 7_200_000}`), [], 'nothing overlaps the future');
  const one = await rows(`stream=${NAME}&limit=1`);
  assert.equal(one.length, 1);

  const got = await s.json(`/rest-api/recordings/${victim.id}`);
  assert.equal(got.status, 200);
  assert.equal((got.body as Row).fileName, 'victim.mp4');
  assert.equal((got.body as Row).state, 'complete');
  assertError(await s.json('/rest-api/recordings/abc'), 400, /id/, 'GET non-numeric id');
  assertError(await s.json('/rest-api/recordings/99999999'), 404, /99999999/, 'GET unknown id');
  assertError(await s.json('/rest-api/recordings/abc', { method: 'DELETE' }), 400, /id/, 'DELETE non-numeric id');

  const del = await s.json(`/rest-api/recordings/${victim.id}`, { method: 'DELETE' });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal(existsSync(join(s.recordDir, 'victim.mp4')), false, 'file gone');
  assertError(await s.json(`/rest-api/recordings/${victim.id}`), 404, new RegExp(String(victim.id)), 'GET after DELETE');
  assertError(await s.json(`/rest-api/recordings/${victim.id}`, { method: 'DELETE' }), 404, new RegExp(String(victim.id)), 'DELETE twice');
  assert.equal((await s.json('/client/records/victim.mp4')).status, 404, 'no longer served');
});

test('VMS poll: recordings?from&to&limit=2 paged with `after` returns each file exactly once while files are added', async (t) => {
  const sessionId = await liveSession();
  const from = Date.now();
  const r = await s.post('/rest-api/stream/startRecording', { mediaSessionId: sessionId, config: { fileTemplate: 'poll-{startTimeMillis}', rotation: '1' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const count = async () => (await rows(`from=${from}&limit=1000`)).length;
  await waitFor('four rotated files', async () => (await count()) >= 4, 20_000, 200);

  const seen: number[] = [];
  let maxIdAtStart = 0;
  for (const x of await rows(`from=${from}&limit=1000`)) maxIdAtStart = Math.max(maxIdAtStart, x.id);
  let after: string | null = null;
  let pages = 0;
  let known = await count();
  // Each next page waits for a new file: 2 rows read per file added, so the scan catches up after a few pages,
  // having met files that did not exist when it began, whatever the speed of the box.
  for (; pages < 60; pages++) {
    const q: string = `from=${from}&to=${from + 3_600_000}&limit=2${after ? `&after=${after}` : ''}`;
    const page = await s.json(`/rest-api/recordings?${q}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const b = page.body as { recordings: Row[]; next: string | null };
    assert.ok(b.recordings.length <= 2);
    seen.push(...b.recordings.map((x) => x.id));
    after = b.next;
    if (!after) break;
    const was = known;
    known = await waitFor('a new file during the poll', async () => {
      const n = await count();
      return n > was ? n : 0;
    }, 15_000, 100);
  }
  assert.ok(after === null, 'the poll reached the end');
  const stop = await s.post('/rest-api/stream/stopRecording', { mediaSessionId: sessionId });
  assert.equal(stop.status, 200);

  assert.equal(new Set(seen).size, seen.length, `no file twice: ${seen.join(',')}`);
  t.diagnostic(`poll: ${pages + 1} pages, ids ${seen.join(',')}, max id at start ${maxIdAtStart}`);
  const added = seen.filter((id) => id > maxIdAtStart);
  assert.ok(added.length >= 1, `files added during the poll were returned (seen ${seen.join(',')}, max id at start ${maxIdAtStart})`);
  const maxSeen = Math.max(...seen);
  // one stream: ids and start times rise together, so every row up to the last one seen must have been seen
  const final = await rows(`from=${from}&limit=1000`);
  const expected = final.filter((x) => x.id <= maxSeen).map((x) => x.id);
  assert.deepEqual([...seen].sort((a, b) => a - b), expected, 'each file exactly once');
  const done = await finishedRows(NAME, final.length, (x) => x.fileName.startsWith('poll-'));
  for (const x of done) assert.match(x.fileName, /^poll-\d+_\d+\.mp4$/);
});

test('/metrics, /rest-api/openapi.json', async () => {
  const finalized = async () => Number(/^edgerec_files_finalized_total (\d+)$/m.exec(await (await fetch(`${s.base}/metrics`)).text())?.[1] ?? NaN);
  const before = await finalized();
  await recordOneFile('metrics-one');
  assert.equal(await finalized(), before + 1, 'a finalized file is counted');
  const m = await fetch(`${s.base}/metrics`);
  assert.equal(m.status, 200);
  assert.match(String(m.headers.get('content-type')), /text\/plain/);
  const text = await m.text();
  assert.match(text, /^edgerec_streams\{protocol="rtmp"\} 1$/m);
  assert.match(text, /^edgerec_recordings_active 0$/m);
  assert.match(text, /^# TYPE edgerec_finalize_duration_seconds histogram$/m);
  assert.match(text, /^edgerec_disk_free_bytes\{dir="record"\} \d+/m);

  const o = await s.json('/rest-api/openapi.json');
  assert.equal(o.status, 200);
  const doc = o.body as { openapi: string; paths: Record<string, unknown> };
  assert.match(doc.openapi, /^3\./);
  for (const p of ['/rest-api/recorder/startup', '/rest-api/stream/find', '/rest-api/recordings', '/rest-api/recordings/{id}', '/rest-api/health', '/metrics'])
    assert.ok(doc.paths[p], `openapi has ${p}`);
});

test('rest_auth_token: every /rest-api, /metrics and /client/records request needs the bearer token', async () => {
  s.writeConf(`${baseConf(s.dir)}record_flash_published_streams=false\nrest_auth_token=s3cret-token\n`);
  await waitFor('auth to apply', async () => (await s.json('/rest-api/health')).status === 401, 10_000, 100);
  const good = { authorization: 'Bearer s3cret-token' };
  const calls: [string, string][] = [
    ['GET', '/rest-api/health'],
    ['GET', '/rest-api/recordings'],
    ['GET', '/rest-api/recordings/1'],
    ['DELETE', '/rest-api/recordings/1'],
    ['GET', '/rest-api/openapi.json'],
    ['GET', '/metrics'],
    ['GET', '/client/records/anything.mp4'],
    ['HEAD', '/client/records/anything.mp4'],
    ['POST', '/rest-api/recorder/find_all'],
    ['POST', '/rest-api/stream/find_all'],
    ['POST', '/rest-api/stream/find'],
    ['POST', '/rest-api/stream/startRecording'],
    ['POST', '/rest-api/stream/stopRecording'],
    ['POST', '/rest-api/no-such-route'],
  ];
  const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer s3cret-token-and-more' }, { authorization: 'Basic czNjcmV0LXRva2Vu' }, { authorization: 's3cret-token' }];
  for (const [method, path] of calls) {
    for (const h of wrong) {
      const r = await fetch(s.base + path, { method, headers: h });
      await r.arrayBuffer();
      assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(h)}`);
    }
  }
  const health = await s.json('/rest-api/health', { headers: good });
  assert.equal(health.status, 200);
  assert.match(String((health.body as { auth: { rest: string } }).auth.rest), /bearer/i, 'health says auth is on');
  assert.equal((await s.json('/rest-api/recordings', { headers: good })).status, 200);
  assert.equal((await fetch(`${s.base}/metrics`, { headers: good })).status, 200);
  const fa = await s.json('/rest-api/stream/find_all', { method: 'POST', headers: good });
  assert.equal(fa.status, 200);
  assert.equal((await s.json('/client/records/nothing-here.mp4', { headers: good })).status, 404, 'past the gate: a plain 404');

  s.writeConf(`${baseConf(s.dir)}record_flash_published_streams=false\n`);
  await waitFor('auth off again', async () => (await s.json('/rest-api/health')).status === 200, 10_000, 100);
  assert.match(String(((await s.json('/rest-api/health')).body as { auth: { rest: string } }).auth.rest), /open/);
});
