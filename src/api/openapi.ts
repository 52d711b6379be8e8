import { ERRORS, type ErrorCode } from '../lib/errors';

import { EXAMPLES, MSID, type Obj, SCHEMAS, json, ref } from './openapi-schemas';

function errorResponses(codes: readonly ErrorCode[]): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  for (const code of codes) {
    const { status, message } = ERRORS[code];
    const prev = out[String(status)];
    if (prev) prev.description = `${String(prev.description)}; ${code}: ${message}`;
    else out[String(status)] = { description: `${code}: ${message}`, content: json(ref('Error'), { status, error: message, code }) };
  }
  return out;
}

type Auth = 'rest' | 'publish' | 'none';

interface OpSpec {
  readonly id: string;
  readonly tag: string;
  readonly summary: string;
  readonly description: string;
  readonly auth: Auth;
  readonly parameters?: readonly Obj[];
  readonly body?: Obj;
  readonly ok: Record<string, Obj>;
  readonly errors?: readonly ErrorCode[];
}

function op(s: OpSpec): Obj {
  const common: ErrorCode[] = ['INTERNAL', 'UNAVAILABLE'];
  if (s.auth === 'rest') common.unshift('UNAUTHORIZED');
  if (s.body && 'application/json' in (s.body.content as Obj)) common.unshift('BAD_JSON', 'BODY_TOO_LARGE');
  const errs = [...new Set([...(s.errors ?? []), ...common])];
  return {
    operationId: s.id,
    tags: [s.tag],
    summary: s.summary,
    description: s.description,
    ...(s.auth === 'none' ? {} : { security: [{ [s.auth === 'rest' ? 'restToken' : 'publishToken']: [] }] }),
    ...(s.parameters ? { parameters: s.parameters } : {}),
    ...(s.body ? { requestBody: s.body } : {}),
    responses: { ...s.ok, ...errorResponses(errs) },
  };
}

const pathParam = (name: string, schema: Obj, description: string): Obj => ({ name, in: 'path', required: true, description, schema });
const query = (name: string, schema: Obj, description: string): Obj => ({ name, in: 'query', required: false, description, schema });
const ok = (description: string, content?: Obj, headers?: Obj): Record<string, Obj> => ({
  '200': { description, ...(content ? { content } : {}), ...(headers ? { headers } : {}) },
});
const header = (description: string): Obj => ({ description, schema: { type: 'string' } });

const startOp = (id: string): Obj =>
  op({
    id,
    tag: 'recording control',
    summary: 'Start recording a media session',
    description: 'Stops a running recording of the session first; settings not given come from the config. Only publishing streams can be recorded.',
    auth: 'rest',
    body: { required: true, content: { 'application/json': { schema: ref('StartRecordingBody'), examples: { manual: { value: EXAMPLES.start }, exactName: { value: EXAMPLES.startExact } } } } },
    ok: ok('recording started', json(ref('RecordingControlResult'), { status: 200, mediaSessionId: MSID, fileName: 'test-0-{endTime}_1.mp4' })),
    errors: ['BAD_REQUEST', 'NO_SUCH_STREAM', 'RECORDING_DISABLED'],
  });
const stopOp = (id: string): Obj =>
  op({
    id,
    tag: 'recording control',
    summary: 'Stop recording a media session',
    description: 'Answers within record_stop_timeout; finalizing may continue after.',
    auth: 'rest',
    body: { required: true, content: json(ref('StopRecordingBody'), EXAMPLES.stop) },
    ok: ok('recording stopped', json(ref('RecordingControlResult'))),
    errors: ['BAD_REQUEST', 'NO_SUCH_STREAM', 'NOT_FOUND'],
  });
const streams = json({ type: 'array', items: ref('StreamView') });
const anyBody = { required: false, description: 'ignored (must be valid JSON when present)', content: json({ type: 'object' }) };
const recordingId = pathParam('id', { type: 'integer', format: 'int64', minimum: 0, maximum: 999_999_999_999_999 }, 'index row id');
const fileParams = [
  pathParam('file', { type: 'string', pattern: '^[^/\\\\.][^/\\\\]*\\.(mp4|webm|ts)$' }, 'file name in record_dir (URL-encoded)'),
  query('start', { type: 'number', minimum: 0, maximum: 1e7 }, 'MP4 only: cut from the keyframe at or before this second (rounded to 0.1 s)'),
  query('end', { type: 'number', minimum: 0, maximum: 1e7 }, 'MP4 only: cut up to this second (rounded to 0.1 s; must be after start)'),
  { name: 'Range', in: 'header', required: false, description: 'one byte range, e.g. bytes=0-', schema: { type: 'string' } },
];
const fileHeaders = {
  'Content-Disposition': header('inline or attachment (record_response_content_disposition_header_value); filename="<file>"'),
  'Accept-Ranges': header('bytes'),
  ETag: header('validator for If-None-Match / If-Range'),
};
const media = { schema: { type: 'string', format: 'binary' } };
const fileOk = {
  '200': { description: 'the file (or the cut)', headers: fileHeaders, content: { 'video/mp4': media, 'video/webm': media, 'video/mp2t': media } },
  '206': { description: 'a byte range', headers: { ...fileHeaders, 'Content-Range': header('bytes S-E/SIZE') } },
  '304': { description: 'not modified' },
};
const fileDescription =
  'Only regular files directly inside record_dir (real path, symlinks resolved) are served; anything else is 404. ' +
  'A cut (start/end rounded to 0.1 s) is named <base>-sS-eE.mp4 in mp4_cutter_dir, kept in a cache bounded by mp4_cutter_max_bytes and reused; ' +
  'a damaged or truncated MP4 is 422 BAD_MEDIA; WebM/TS are always whole.';
const whipName = pathParam('name', { type: 'string', pattern: '^[A-Za-z0-9_.~-]{1,128}$' }, 'stream name');
const whipId = pathParam('id', { type: 'string' }, 'WHIP session id (from Location)');
const cors = (description: string, headers: Obj = {}): Record<string, Obj> => ({ '204': { description, headers: { 'Access-Control-Allow-Methods': header('POST, DELETE, OPTIONS, PATCH'), ...headers } } });

const required = (name: string, schema: Obj, description: string): Obj => ({ name, in: 'query', required: true, description, schema });
const PLAYBACK_T0 = 1_700_000_000_000;
const timeParam = (name: string, description: string, example: number): Obj =>
  required(name, { type: 'string', pattern: '^(\\d{1,16}|\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2}))$', example: String(example) }, description);
const playbackParams = [
  required('stream', { type: 'string', maxLength: 256, example: 'cam1' }, 'stream name'),
  timeParam('from', 'start: epoch ms or RFC 3339 (2026-12-03T14:02:10Z)', PLAYBACK_T0),
  timeParam('to', 'end (exclusive), after from: epoch ms or RFC 3339', PLAYBACK_T0 + 1000),
];
const playbackHeaders = {
  'X-Playback-Start': header('epoch ms of the answer\'s time 0: the keyframe at or before from'),
  'X-Playback-End': header('epoch ms where the answer ends (the last flushed fragment for a file being recorded)'),
  'X-Playback-Gaps': header('start-end pairs (epoch ms) with nothing recorded, comma separated; empty when none. The answer keeps wall time: the frame before a gap is held'),
};
const playbackDescription =
  'One playable MP4 for [from, to) of a stream, stitched from its recorded MP4 files without re-encoding, across fragments and media ' +
  'sessions, from the keyframe at or before from; files being recorded are read up to their last flushed fragment. format=mp4 (default): ' +
  'moov first, Content-Length, byte ranges (ETag / If-Range). format=fmp4: fragmented MP4 streamed while it is read. Ranges longer than ' +
  'playback_max_duration are 400; TS and WebM recordings are 415 (download them whole).';

/** The OpenAPI 3.0.3 description of every HTTP route of edgerec (REST, files, WHIP, page, metrics). */
export function openApiDocument(version: string): Obj {
  return {
    openapi: '3.0.3',
    info: {
      title: 'edgerec',
      version,
      description: 'Recording control (reference-server compatible, POST JSON under /rest-api), the recordings index, files, WHIP ingest, health and metrics.',
      license: { name: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'this service (rest_port, default 8081)' }],
    tags: ['recording control', 'streams', 'recordings', 'playback', 'files', 'whip', 'service'].map((name) => ({ name })),
    paths: {
      '/rest-api/stream/startRecording': { post: startOp('streamStartRecording') },
      '/rest-api/recorder/startup': { post: startOp('recorderStartup') },
      '/rest-api/stream/stopRecording': { post: stopOp('streamStopRecording') },
      '/rest-api/recorder/terminate': { post: stopOp('recorderTerminate') },
      '/rest-api/recorder/find_all': {
        post: op({
          id: 'recorderFindAll',
          tag: 'recording control',
          summary: 'List running recordings',
          description: 'File names keep unfilled elements such as {endTime} as they stand.',
          auth: 'rest',
          body: anyBody,
          ok: ok('running recordings', json({ type: 'array', minItems: 1, items: ref('RunningRecording') }, EXAMPLES.running)),
          errors: ['NO_RECORDINGS'],
        }),
      },
      '/rest-api/stream/find_all': {
        post: op({ id: 'streamFindAll', tag: 'streams', summary: 'List live streams', description: 'Every publishing or pulled stream.', auth: 'rest', body: anyBody, ok: ok('live streams', streams) }),
      },
      '/rest-api/stream/find': {
        post: op({
          id: 'streamFind',
          tag: 'streams',
          summary: 'Find streams by name or media session',
          description: 'Live streams first, then ones ended in the last 10 minutes.',
          auth: 'rest',
          body: { required: true, content: json(ref('FindStreamBody'), { name: 'stream_ffmpeg' }) },
          ok: ok('matching streams', streams),
          errors: ['BAD_REQUEST', 'NO_SUCH_STREAM'],
        }),
      },
      '/rest-api/streams': {
        get: op({ id: 'getStreams', tag: 'streams', summary: 'List live streams (GET)', description: 'Same as POST /rest-api/stream/find_all.', auth: 'rest', ok: ok('live streams', streams) }),
      },
      '/rest-api/recordings': {
        get: op({
          id: 'listRecordings',
          tag: 'recordings',
          summary: 'List indexed files',
          description: 'Finished and running files overlapping [from, to), oldest start first, keyset-paginated.',
          auth: 'rest',
          parameters: [
            query('stream', { type: 'string' }, 'stream name'),
            query('from', { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, 'epoch ms, inclusive'),
            query('to', { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, 'epoch ms, exclusive; must be greater than from'),
            query('state', ref('RecordingState'), 'only files in this state'),
            query('limit', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'page size'),
            query('after', { type: 'string' }, 'the `next` of the previous page'),
          ],
          ok: ok('one page', json(ref('RecordingPage'))),
          errors: ['BAD_REQUEST'],
        }),
      },
      '/rest-api/recordings/{id}': {
        get: op({ id: 'getRecording', tag: 'recordings', summary: 'One indexed file', description: 'By index row id.', auth: 'rest', parameters: [recordingId], ok: ok('the file', json(ref('Recording'))), errors: ['BAD_REQUEST', 'NOT_FOUND'] }),
        delete: op({
          id: 'deleteRecording',
          tag: 'recordings',
          summary: 'Delete a finished file',
          description: 'Removes the file from record_dir and its index row; a running recording is 409.',
          auth: 'rest',
          parameters: [recordingId],
          ok: ok('deleted', json({ type: 'object', required: ['status', 'deleted'], properties: { status: { type: 'integer', enum: [200] }, deleted: { type: 'integer' } } })),
          errors: ['BAD_REQUEST', 'NOT_FOUND', 'CONFLICT'],
        }),
      },
      '/rest-api/playback': {
        get: (() => {
          const o = op({
            id: 'getPlayback',
            tag: 'playback',
            summary: 'Play a time range of a stream',
            description: playbackDescription,
            auth: 'rest',
            parameters: [
              ...playbackParams,
              query('format', { type: 'string', enum: ['mp4', 'fmp4'], default: 'mp4' }, 'mp4: moov first with Content-Length and ranges; fmp4: streamed'),
              { name: 'Range', in: 'header', required: false, description: 'mp4 only: one byte range, e.g. bytes=0-', schema: { type: 'string' } },
            ],
            ok: {
              '200': { description: 'the answer', headers: { ...playbackHeaders, 'Accept-Ranges': header('bytes (mp4)'), ETag: header('mp4: validator for If-Range') }, content: { 'video/mp4': media } },
              '206': { description: 'mp4: a byte range', headers: { ...playbackHeaders, 'Content-Range': header('bytes S-E/SIZE') } },
            },
            errors: ['BAD_REQUEST', 'NOT_FOUND', 'UNSUPPORTED_MEDIA_TYPE', 'RANGE_NOT_SATISFIABLE', 'ARCHIVE_UNAVAILABLE'],
          }) as { responses: Record<string, Obj> };
          o.responses['404'] = { description: 'NOT_FOUND: unknown stream, or nothing recorded in the range (then with the nearest recordings)', content: json(ref('PlaybackNotFound')) };
          return o;
        })(),
      },
      '/rest-api/playback/segments': {
        get: op({
          id: 'getPlaybackSegments',
          tag: 'playback',
          summary: 'What was recorded of a stream in a range',
          description: 'Spans without a gap (files of any session that follow each other within 250 ms), the gaps, failed files; for a timeline. At most 7 days.',
          auth: 'rest',
          parameters: playbackParams,
          ok: ok('spans and gaps', json(ref('PlaybackSegments'))),
          errors: ['BAD_REQUEST', 'NOT_FOUND'],
        }),
      },
      '/rest-api/health': {
        get: op({ id: 'getHealth', tag: 'service', summary: 'Service health', description: 'Version, uptime, config state and last reload error, disk and tmpfs free, CPU, stream and recording counts.', auth: 'rest', ok: ok('health', json(ref('Health'))) }),
      },
      '/rest-api/openapi.json': {
        get: op({ id: 'getOpenApi', tag: 'service', summary: 'This document', description: 'OpenAPI 3.0.3.', auth: 'rest', ok: ok('the OpenAPI document', json({ type: 'object' })) }),
      },
      '/metrics': {
        get: op({ id: 'getMetrics', tag: 'service', summary: 'Prometheus metrics', description: 'Prometheus text exposition format.', auth: 'rest', ok: ok('metrics', { 'text/plain': { schema: { type: 'string' } } }) }),
      },
      '/client/records/{file}': {
        get: op({ id: 'getRecordFile', tag: 'files', summary: 'Download or play a file', description: fileDescription, auth: 'rest', parameters: fileParams, ok: fileOk, errors: ['BAD_REQUEST', 'NOT_FOUND', 'CONFLICT', 'RANGE_NOT_SATISFIABLE', 'BAD_MEDIA', 'CUT_TOO_LARGE', 'BUSY'] }),
        head: op({ id: 'headRecordFile', tag: 'files', summary: 'File headers only', description: fileDescription, auth: 'rest', parameters: fileParams, ok: fileOk, errors: ['BAD_REQUEST', 'NOT_FOUND', 'CONFLICT', 'RANGE_NOT_SATISFIABLE', 'BAD_MEDIA', 'CUT_TOO_LARGE', 'BUSY'] }),
      },
      '/whip/{name}': {
        options: op({ id: 'whipOptions', tag: 'whip', summary: 'CORS preflight', description: 'Announces Accept-Post: application/sdp.', auth: 'none', parameters: [whipName], ok: cors('preflight answer', { 'Accept-Post': header('application/sdp') }) }),
        post: op({
          id: 'whipPublish',
          tag: 'whip',
          summary: 'Publish over WebRTC (WHIP, RFC 9725)',
          description: 'POST a complete SDP offer (no trickle ICE); the answer holds every candidate. Bearer publish_auth_token when set.',
          auth: 'publish',
          parameters: [
            whipName,
            query('record', { type: 'string', enum: ['true', 'false'] }, 'record this publish (default record_webrtc_streams)'),
            query('login', { type: 'string' }, 'publisher login, for {login} in file names'),
          ],
          body: { required: true, content: { 'application/sdp': { schema: { type: 'string' }, example: 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n...' } } },
          ok: {
            '201': {
              description: 'SDP answer; Location is the session URL for DELETE',
              headers: { Location: header('/whip/<name>/<id>'), ETag: header('"<id>"') },
              content: { 'application/sdp': { schema: { type: 'string' } } },
            },
          },
          errors: ['BAD_REQUEST', 'UNAUTHORIZED', 'CONFLICT', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'],
        }),
      },
      '/whip/{name}/{id}': {
        options: op({ id: 'whipSessionOptions', tag: 'whip', summary: 'CORS preflight', description: 'For DELETE and PATCH on a session.', auth: 'none', parameters: [whipName, whipId], ok: cors('preflight answer') }),
        delete: op({ id: 'whipStop', tag: 'whip', summary: 'End a WHIP publish', description: 'Bearer publish_auth_token when set.', auth: 'publish', parameters: [whipName, whipId], ok: ok('ended'), errors: ['UNAUTHORIZED', 'NOT_FOUND'] }),
        patch: op({ id: 'whipPatch', tag: 'whip', summary: 'Trickle ICE (not supported)', description: 'Always 405: send a complete offer.', auth: 'none', parameters: [whipName, whipId], ok: {}, errors: ['METHOD_NOT_ALLOWED'] }),
      },
      '/': {
        get: op({ id: 'getPage', tag: 'service', summary: 'Installers page', description: 'Streams, cameras, disk use, recent files and a WHIP recording demo.', auth: 'none', ok: ok('HTML page', { 'text/html': { schema: { type: 'string' } } }) }),
      },
    },
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        restToken: { type: 'http', scheme: 'bearer', description: 'rest_auth_token; required on /rest-api, /metrics and /client/records only when it is set' },
        publishToken: { type: 'http', scheme: 'bearer', description: 'publish_auth_token; required on WHIP publish and stop only when it is set' },
      },
    },
  };
}
