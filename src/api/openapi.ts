import { ERRORS, type ErrorCode } from '../lib/errors';

type Obj = Record<string, unknown>;

const ref = (name: string): Obj => ({ $ref: `#/components/schemas/${name}` });
const str = (description: string, extra: Obj = {}): Obj => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Obj = {}): Obj => ({ type: 'integer', format: 'int64', description, ...extra });
const json = (schema: Obj, example?: unknown): Obj => ({ 'application/json': { schema, ...(example === undefined ? {} : { example }) } });

/** Session id of the reference manual's examples. */
const MSID = '5a072377-73c1-4caf-abd3';

/** The reference manual's request bodies, used as examples. */
const EXAMPLES = {
  start: { mediaSessionId: MSID, config: { fileTemplate: '{streamName}-{startTime}-{endTime}', rotation: '20M' } },
  startExact: { mediaSessionId: '1234567890abcdefgh', config: { fileTemplate: 'test', rotation: 'disabled' } },
  stop: { mediaSessionId: MSID },
  running: [
    { fileName: '003f-1563776713987-{endTime}.mp4', mediaSessionId: '5af9c820-ac49-11e9-9f06-693cb47c4042' },
    { fileName: 'stream-57882100-ac49-11e9-afdd-6752f5be57a9-jtdvnittjkrd8rsc3dnfbger2o.mp4', mediaSessionId: '57882100-ac49-11e9-afdd-6752f5be57a9' },
  ],
} as const;

const SCHEMAS: Record<string, Obj> = {
  Error: {
    type: 'object',
    description: 'Every error answer. `code` names the error; `error` says what was wrong and what is allowed.',
    required: ['status', 'error', 'code'],
    properties: {
      status: { type: 'integer', minimum: 400, maximum: 599, description: 'the HTTP status again' },
      error: str('a message a person can act on'),
      code: { type: 'string', enum: Object.keys(ERRORS), description: 'error code (README "Errors")' },
    },
  },
  MediaSessionId: str('media session id (UUID for streams created by edgerec)', { minLength: 1, maxLength: 100, example: MSID }),
  StartRecordingBody: {
    type: 'object',
    required: ['mediaSessionId'],
    properties: {
      mediaSessionId: ref('MediaSessionId'),
      config: {
        type: 'object',
        nullable: true,
        description: 'settings that override the server config for this recording; absent ones come from the config',
        properties: {
          fileTemplate: str('file name template (stream_record_policy_template elements)', { minLength: 1, maxLength: 1024, example: '{streamName}-{startTime}-{endTime}' }),
          rotation: str('"N" seconds, "NM" megabytes, or "disabled" (a number is read as seconds)', { pattern: '^\\s*(\\d{1,9}M?|disabled)\\s*$', example: '20M' }),
        },
      },
    },
  },
  StopRecordingBody: { type: 'object', required: ['mediaSessionId'], properties: { mediaSessionId: ref('MediaSessionId') } },
  FindStreamBody: {
    type: 'object',
    description: 'give `name`, `mediaSessionId` or both (both must match)',
    properties: { name: str('stream name'), mediaSessionId: str('media session id') },
  },
  RecordingControlResult: {
    type: 'object',
    required: ['status', 'mediaSessionId', 'fileName'],
    properties: {
      status: { type: 'integer', enum: [200] },
      mediaSessionId: ref('MediaSessionId'),
      fileName: str('the recording file name (unfilled elements such as {endTime} stay literal while recording); null when unknown', { nullable: true }),
    },
  },
  RunningRecording: {
    type: 'object',
    required: ['fileName', 'mediaSessionId'],
    properties: { fileName: str('current file name, end-time elements unfilled'), mediaSessionId: ref('MediaSessionId') },
  },
  StreamView: {
    type: 'object',
    description: 'A stream; ingest-specific details may add fields.',
    required: ['mediaSessionId', 'name', 'published', 'status', 'recording', 'audioCodec', 'videoCodec', 'fileName', 'startedAt', 'endedAt'],
    additionalProperties: true,
    properties: {
      mediaSessionId: ref('MediaSessionId'),
      name: str('stream name'),
      published: str('how it arrives', { enum: ['rtsp', 'rtmp', 'webrtc'] }),
      status: str('stream state, e.g. PUBLISHING; "stopped" once ended'),
      recording: { type: 'boolean' },
      audioCodec: str('e.g. mpeg, opus; null when none', { nullable: true }),
      videoCodec: str('e.g. H264, VP8; null when none', { nullable: true }),
      fileName: str('current or last recording file name', { nullable: true }),
      startedAt: int('epoch ms'),
      endedAt: int('epoch ms; null while live', { nullable: true }),
    },
  },
  RecordingState: str('life of a file', { enum: ['recording', 'finalizing', 'complete', 'recovered', 'failed'] }),
  Recording: {
    type: 'object',
    description: 'One indexed file. Times are epoch ms.',
    required: ['id', 'fileName', 'stream', 'mediaSessionId', 'published', 'start', 'end', 'durationMs', 'bytes', 'audioCodec', 'videoCodec', 'container', 'fragmentIndex', 'state', 'error', 'url'],
    properties: {
      id: int('index row id', { minimum: 0 }),
      fileName: str('file name in record_dir'),
      stream: str('stream name'),
      mediaSessionId: ref('MediaSessionId'),
      published: str('source protocol', { enum: ['rtsp', 'rtmp', 'webrtc'] }),
      start: int('first frame, epoch ms'),
      end: int('last frame, epoch ms; null while recording', { nullable: true }),
      durationMs: int('null while recording', { nullable: true }),
      bytes: int('file size', { minimum: 0 }),
      audioCodec: str('', { nullable: true }),
      videoCodec: str('', { nullable: true }),
      container: str('', { enum: ['mp4', 'webm', 'ts'] }),
      fragmentIndex: int('1.. when rotating', { minimum: 0 }),
      state: ref('RecordingState'),
      error: str('why it failed', { nullable: true }),
      url: str('download URL (complete and recovered files); null otherwise', { nullable: true, example: '/client/records/cam1_1.mp4' }),
    },
  },
  RecordingPage: {
    type: 'object',
    required: ['recordings', 'next'],
    properties: {
      recordings: { type: 'array', items: ref('Recording') },
      next: str('pass as `after` for the next page; null on the last page', { nullable: true }),
    },
  },
  Health: {
    type: 'object',
    description: 'Service state; sections may be added over time.',
    additionalProperties: true,
    required: ['status', 'version'],
    properties: {
      status: str('degraded when the last config edit was refused', { enum: ['ok', 'degraded'] }),
      version: str('edgerec version'),
      uptimeSeconds: { type: 'integer' },
      config: { type: 'object', additionalProperties: true },
      disk: { type: 'object', additionalProperties: true },
      cpu: { type: 'object', nullable: true, additionalProperties: true },
    },
  },
};

/** Responses by status for the given error codes (codes sharing a status share one entry). */
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
  query('start', { type: 'number', minimum: 0, maximum: 1e7 }, 'MP4 only: cut from the keyframe at or before this second'),
  query('end', { type: 'number', minimum: 0, maximum: 1e7 }, 'MP4 only: cut up to this second (must be after start)'),
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
const fileDescription = 'Only files directly inside record_dir are served; anything else is 404. A cut is named <base>-sS-eE.mp4 in mp4_cutter_dir and reused; WebM/TS are always whole.';
const whipName = pathParam('name', { type: 'string', pattern: '^[A-Za-z0-9_.~-]{1,128}$' }, 'stream name');
const whipId = pathParam('id', { type: 'string' }, 'WHIP session id (from Location)');
const cors = (description: string, headers: Obj = {}): Record<string, Obj> => ({ '204': { description, headers: { 'Access-Control-Allow-Methods': header('POST, DELETE, OPTIONS, PATCH'), ...headers } } });

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
    tags: ['recording control', 'streams', 'recordings', 'files', 'whip', 'service'].map((name) => ({ name })),
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
        get: op({ id: 'getRecordFile', tag: 'files', summary: 'Download or play a file', description: fileDescription, auth: 'rest', parameters: fileParams, ok: fileOk, errors: ['BAD_REQUEST', 'NOT_FOUND', 'RANGE_NOT_SATISFIABLE'] }),
        head: op({ id: 'headRecordFile', tag: 'files', summary: 'File headers only', description: fileDescription, auth: 'rest', parameters: fileParams, ok: fileOk, errors: ['BAD_REQUEST', 'NOT_FOUND', 'RANGE_NOT_SATISFIABLE'] }),
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
