/** Schemas, examples and small builders of the OpenAPI document (src/api/openapi.ts). */
import { ERRORS } from '../lib/errors';

export type Obj = Record<string, unknown>;

export const ref = (name: string): Obj => ({ $ref: `#/components/schemas/${name}` });
export const str = (description: string, extra: Obj = {}): Obj => ({ type: 'string', description, ...extra });
export const int = (description: string, extra: Obj = {}): Obj => ({ type: 'integer', format: 'int64', description, ...extra });
export const json = (schema: Obj, example?: unknown): Obj => ({ 'application/json': { schema, ...(example === undefined ? {} : { example }) } });

/** Session id of the reference manual's examples. */
export const MSID = '5a072377-73c1-4caf-abd3';

/** The reference manual's request bodies, used as examples. */
export const EXAMPLES = {
  start: { mediaSessionId: MSID, config: { fileTemplate: '{streamName}-{startTime}-{endTime}', rotation: '20M' } },
  startExact: { mediaSessionId: '1234567890abcdefgh', config: { fileTemplate: 'test', rotation: 'disabled' } },
  stop: { mediaSessionId: MSID },
  running: [
    { fileName: '003f-1563776713987-{endTime}.mp4', mediaSessionId: '5af9c820-ac49-11e9-9f06-693cb47c4042' },
    { fileName: 'stream-57882100-ac49-11e9-afdd-6752f5be57a9-jtdvnittjkrd8rsc3dnfbger2o.mp4', mediaSessionId: '57882100-ac49-11e9-afdd-6752f5be57a9' },
  ],
} as const;

export const SCHEMAS: Record<string, Obj> = {
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
      archive: {
        type: 'object',
        nullable: true,
        description: 'archive state of a finished file (null when not queued)',
        properties: {
          state: str('', { enum: ['pending', 'uploading', 'archived', 'failed'] }),
          key: str('object key in the bucket, fixed at the first upload attempt', { nullable: true }),
          at: int('when archived (or last changed), epoch ms'),
          error: str('why the last attempt failed', { nullable: true }),
          attempts: int('upload attempts', { minimum: 0 }),
          local: { type: 'boolean', description: 'false when the local copy is gone and the file is served from the bucket' },
        },
      },
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
  PlaybackSpan: {
    type: 'object',
    required: ['start', 'end', 'recording', 'mediaSessionIds', 'files'],
    properties: {
      start: int('epoch ms (clipped to from)'),
      end: int('epoch ms (clipped to to; now for a file being recorded)'),
      recording: { type: 'boolean', description: 'its last file is being recorded' },
      mediaSessionIds: { type: 'array', items: str('media session id'), description: 'sessions in this span' },
      files: { type: 'integer', description: 'files in this span' },
      archiveOnlyFiles: { type: 'integer', description: 'files of this span only in the archive (local copy deleted): playing them reads the bucket' },
    },
  },
  PlaybackSegments: {
    type: 'object',
    description: 'What was recorded of a stream in [from, to): spans without a gap, the gaps, and the failed files.',
    required: ['stream', 'from', 'to', 'spans', 'gaps', 'failed', 'containers'],
    properties: {
      stream: str('stream name'),
      from: int('epoch ms'),
      to: int('epoch ms'),
      spans: { type: 'array', items: ref('PlaybackSpan') },
      gaps: { type: 'array', items: { type: 'object', required: ['start', 'end'], properties: { start: int('epoch ms'), end: int('epoch ms') } } },
      failed: {
        type: 'array',
        items: { type: 'object', required: ['start', 'fileName'], properties: { start: int('epoch ms'), end: int('epoch ms', { nullable: true }), fileName: str('file name'), error: str('why', { nullable: true }) } },
      },
      containers: { type: 'array', items: str('container of the files in range', { enum: ['mp4', 'webm', 'ts'] }) },
    },
  },
  PlaybackNotFound: {
    type: 'object',
    description: 'Nothing recorded in the range: the nearest recorded files before and after it.',
    required: ['status', 'error', 'code', 'nearest'],
    properties: {
      status: { type: 'integer', enum: [404] },
      error: str('what was asked and where the nearest recordings are'),
      code: { type: 'string', enum: ['NOT_FOUND'] },
      nearest: {
        type: 'object',
        required: ['before', 'after'],
        properties: {
          before: { type: 'object', nullable: true, properties: { start: int('epoch ms'), end: int('epoch ms; null while recording', { nullable: true }) } },
          after: { type: 'object', nullable: true, properties: { start: int('epoch ms'), end: int('epoch ms; null while recording', { nullable: true }) } },
        },
      },
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
