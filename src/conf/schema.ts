import { hostname } from 'node:os';
import { join } from 'node:path';
import { TEMPLATE_ELEMENTS } from './template';
import type { CameraConf, Conf } from './types';
import * as v from './values';

/** The keys of Conf that are plain properties (everything but the camera groups). */
export type GlobalKey = Exclude<keyof Conf, 'cameras'>;

/** The global values, as parsed (fallbacks see the other keys). */
export type GlobalValues = { readonly [K in GlobalKey]: Conf[K] };

/** One configuration key: how it parses, its default, unit and docs. */
export interface KeySpec<T> {
  /** the default as written in the properties file */
  readonly def: string;
  /** unit of the value, '' when none */
  readonly unit: string;
  /** one line: what it does */
  readonly doc: string;
  /** what is allowed, for error messages */
  readonly allowed: string;
  readonly parse: v.ValueParser<T>;
  /** the value is never shown in messages */
  readonly secret?: boolean;
  /** the value used when the parsed value is '' (derived from other keys) */
  readonly fallback?: (c: GlobalValues) => T;
  /** why the key is parsed but has no effect: set in a config, it gets a warning (log, health) naming it */
  readonly inert?: string;
}

type Schema = { readonly [K in GlobalKey]: KeySpec<Conf[K]> };

const BOOL = 'true or false';
const AAC_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000];
const TEMPLATE_ALLOWED = `non-empty text with elements ${TEMPLATE_ELEMENTS.map((e) => `{${e}}`).join(' ')}`;
const ROTATION_ALLOWED = 'N (seconds), NM (megabytes) or disabled';
const PORT = '0–65535 (0: the OS picks)';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const MOOV_RESERVE_INERT =
  'files are written fragmented and made moov-first when finalized (mp4_container_moov_first), so no moov space is reserved';

const FOLDER_OR_EMPTY = 'a folder path (relative to the install folder) or empty';
const FILE_OR_EMPTY = 'a file path (relative to the install folder) or empty';

/** A key that is empty by default (no unit): empty means off, or the value `fallback` derives from other keys. */
function emptyDefault<T>(doc: string, allowed: string, parse: v.ValueParser<T>, fallback?: (c: GlobalValues) => T): KeySpec<T> {
  return { def: '', unit: '', doc, allowed, parse, ...(fallback ? { fallback } : {}) };
}
/** A secret (token, key): empty by default, visible ASCII without spaces, never shown. */
function secret(doc: string): KeySpec<string> {
  return { ...emptyDefault(doc, 'empty (off) or visible ASCII characters without spaces', v.token), secret: true };
}
/** A text key (a path, a template, an address, a port) with no unit. */
function text<T>(def: string, doc: string, allowed: string, parse: v.ValueParser<T>): KeySpec<T> {
  return { def, unit: '', doc, allowed, parse };
}
/** One of a few words: "a or b" for two, "a, b, c" for more. */
function choice<T extends string>(options: readonly T[], def: T, doc: string): KeySpec<T> {
  return text(def, doc, options.join(options.length === 2 ? ' or ' : ', '), v.oneOf(options));
}
function b(def: 'true' | 'false', doc: string): KeySpec<boolean> {
  return { def, unit: '', doc, allowed: BOOL, parse: v.bool };
}
function n(def: number, unit: string, min: number, max: number, doc: string): KeySpec<number> {
  return { def: String(def), unit, doc, allowed: `a whole number ${min}–${max}`, parse: v.int(min, max) };
}
function secs(def: number, min: number, max: number, doc: string): KeySpec<number> {
  return { def: String(def), unit: 's', doc, allowed: `seconds ${min}–${max} (decimals allowed)`, parse: v.decimal(min, max) };
}

/** Every global key, declared once, in the order of conf/edgerec.properties. */
export const SCHEMA: Schema = {
  record_streams: b('true', 'master switch; false records nothing, not even on request'),
  record_flash_published_streams: b('true', 'record RTMP publishes'),
  record_rtsp_streams: b('true', 'record pulled RTSP cameras'),
  record_webrtc_streams: b('false', "record WebRTC (WHIP) publishes by default; a publisher's own record flag overrides"),
  record_h264_to_ts: b('false', 'H.264 goes into MPEG-TS (ADTS AAC) instead of MP4'),
  stream_record_policy_template: text('stream-{mediaSessionId}-{login}', 'file name template (elements are cut to their maximum length)', TEMPLATE_ALLOWED, v.template),
  encode_record_name: text('false', 'encode the whole templated name', 'false, true,HEX or true,BASE64', v.nameEncoding),
  exclude_record_name_characters: text('/', 'characters removed from the templated name', 'any characters but control characters (empty: none)', v.text),
  record_rotation: text('disabled', 'cut recordings into fragments by duration or size (at keyframes)', ROTATION_ALLOWED, v.rotation),
  record_rotation_index_enabled: b('true', 'append _1, _2, ... to fragment names'),
  record_audio_buffer_max_size: n(100, 'packets', 0, 100000, 'audio packets held while a recording waits for its first video keyframe; those not older than it start the file with the video'),
  on_record_hook_script: text(
    'scripts/on_record_hook.sh',
    'run without a shell after each finished file with $1 stream name, $2 absolute path',
    'a path (relative to the install folder) or empty for no hook',
    v.optionalPath,
  ),
  on_record_hook_timeout: secs(30, 0.1, 3600, 'the hook is killed after this'),
  record_dir: text('records', 'where finished files live', 'a folder path (relative to the install folder)', v.dirPath),
  record_tmp_dir: emptyDefault('where files are written while recording; empty = record_dir', FOLDER_OR_EMPTY, v.optionalPath, (c) => c.record_dir),
  record_audio_codec_sample_rate: {
    def: '44100', unit: 'Hz', doc: 'AAC sample rate when audio is (re)encoded', allowed: AAC_RATES.join(', '),
    parse: v.oneOfNumbers(AAC_RATES),
  },
  record_audio_codec_channels: n(2, '', 1, 2, 'AAC channels when audio is (re)encoded'),
  record_fdk_aac_bitrate_mode: n(5, '', 0, 5, '0 = CBR, 1–5 = VBR quality; mapped onto the AAC encoder available'),
  mp4_container_moov_first: b('true', 'moov box before mdat (progressive download)'),
  mp4_container_moov_first_reserve_space: { ...b('false', 'reserve moov space at file start instead of rewriting at the end'), inert: MOOV_RESERVE_INERT },
  mp4_container_moov_reserved_space_size: { ...n(2048, 'KiB', 1, 1048576, 'moov space reserved; when it fills, the file rotates'), inert: MOOV_RESERVE_INERT },
  file_recorder_thread_pool_max_size: n(4, '', 1, 64, 'files finalized (moved/copied/hook) at once'),
  webm_cluster_duration_limit: n(100000, 'ms', 1, 3600000, 'a WebM cluster is flushed when it is this long'),
  webm_cluster_size_limit: n(131072, 'bytes', 1024, 268435456, 'a WebM cluster is flushed when it is this big'),
  record_stop_timeout: secs(15, 0.1, 3600, 'a stop answers within this even if finalizing goes on'),
  record_write_ahead_seconds: n(8, 's', 0, 120, 'MP4: the last N s of each recording are also written to a sidecar in record_tmp_dir, so a crash loses at most ~1 s (must exceed the GOP + 2 s); 0 = off'),
  record_response_content_disposition_header_value: choice(['inline', 'attachment'] as const, 'inline', 'Content-Disposition of downloaded files'),
  mp4_cutter_dir: emptyDefault('where time-range cuts are kept; empty = record_dir', FOLDER_OR_EMPTY, v.optionalPath, (c) => c.record_dir),
  mp4_cutter_max_bytes: {
    def: '2%', unit: 'bytes or %', doc: 'size bound of the cut cache in mp4_cutter_dir; the least recently used cuts are removed past it',
    allowed: 'N bytes, NK / NM / NG, or P% of the disk holding mp4_cutter_dir (0 < P ≤ 100)', parse: v.byteQuota,
  },
  playback_max_duration: secs(3600, 1, 86400, 'longest range one /rest-api/playback answer may cover'),
  rest_port: text('8081', 'TCP port of REST, file server, WHIP and web page', PORT, v.port),
  rest_bind: text('0.0.0.0', 'address the REST port listens on', 'an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::) or localhost', v.bindAddress),
  rtmp_port: text('1935', 'TCP port of RTMP ingest', PORT, v.port),
  rtmp_max_pending_connections: n(64, '', 1, 100000, 'RTMP connections that have not published yet, overall; a new one displaces the oldest of the address holding the most'),
  rtmp_max_pending_per_ip: n(8, '', 1, 100000, 'RTMP connections that have not published yet from one address; a new one displaces its oldest'),
  rtmp_handshake_timeout: secs(10, 0.5, 600, 'time an RTMP connection gets from connecting to an accepted publish'),
  rtmp_max_message_size: n(8388608, 'bytes', 65536, 16777215, 'largest RTMP message a publisher may send (a 4K keyframe is typically 1–4 MiB)'),
  rtmp_max_chunk_size: n(1048576, 'bytes', 128, 16777215, 'largest RTMP chunk size a publisher may set'),
  rtmp_max_pending_bytes: n(65536, 'bytes', 4096, 16777215, 'bytes an RTMP connection may have buffered before its publish is accepted: its messages, and answers it has not read'),
  webrtc_ice_port_range: text('31000-31999', 'UDP ports for WebRTC media', 'A-B with 0 ≤ A ≤ B ≤ 65535', v.portRange),
  webrtc_public_ip: emptyDefault('address announced to WebRTC peers; empty = auto', 'an IPv4 or IPv6 address, or empty (auto)', v.optionalIp),
  webrtc_max_media_sections: n(8, '', 1, 64, 'media sections (m= lines) a WHIP offer may hold; more is refused with 400'),
  rest_auth_token: secret('when set, every REST and file request needs Authorization: Bearer <token>'),
  publish_auth_token: secret('when set, RTMP (?token=) and WHIP (Bearer) publishers must present it'),
  record_retention_days: n(0, 'days', 0, 36500, 'delete finished files older than this; 0 = off'),
  record_min_free_percent: n(10, '%', 0, 99, 'delete oldest finished files while the record disk has less free space than this'),
  archive_s3_endpoint: emptyDefault(
    'S3-compatible store to archive finished files to (AWS S3, MinIO, Ceph RGW, Swift s3api...); empty = archiving off',
    'an http:// or https:// URL without user:password, or empty',
    v.optionalHttpUrl,
  ),
  archive_s3_bucket: emptyDefault('bucket the files go to (it must exist)', 'an S3 bucket name (3–63 of a-z 0-9 . -), or empty when archiving is off', v.optionalBucket),
  archive_s3_region: text('us-east-1', 'region used to sign requests', '1–64 of a-z 0-9 -', (raw) => (/^[a-z0-9-]{1,64}$/.test(raw) ? raw : undefined)),
  archive_s3_access_key: secret('access key id (never logged nor shown); or use archive_s3_credentials_file'),
  archive_s3_secret_key: secret('secret access key (never logged nor shown); or use archive_s3_credentials_file'),
  archive_s3_credentials_file: emptyDefault(
    'file holding access_key=... and secret_key=... lines (aws_access_key_id / aws_secret_access_key also read), e.g. a systemd credential; wins over the two keys above',
    FILE_OR_EMPTY,
    v.optionalPath,
  ),
  archive_s3_force_path_style: b('true', 'address the bucket as <endpoint>/<bucket> rather than <bucket>.<endpoint> host'),
  archive_key_template: text(
    '{boxId}/{streamName}/{date}/{fileName}',
    'object key of each file; {date} is YYYY-MM-DD of its start (UTC)',
    'text holding {fileName}, elements {boxId} {streamName} {date} {fileName}, no leading / and no .. segment',
    v.archiveKeyTemplate,
  ),
  box_id: emptyDefault('name of this box in object keys; empty = the host name', '1–64 of A-Z a-z 0-9 . _ -, or empty', v.optionalBoxId, () =>
    hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'edgerec',
  ),
  archive_keep_local_days: {
    def: '-1', unit: 'days', doc: 'local copies of archived files: -1 kept forever, 0 deleted once the upload is verified, N deleted N days after the file ended (unarchived files are never deleted by this)',
    allowed: 'a whole number -1–36500', parse: v.signedInt(-1, 36500),
  },
  archive_max_bandwidth: n(0, 'bytes/s', 0, 1e12, 'upload bandwidth of the archiver, all uploads together; 0 = no limit'),
  archive_concurrency: n(2, '', 1, 16, 'files uploaded at once'),
  db_path: emptyDefault('SQLite index of recordings; empty = <record_dir>/edgerec.db', FILE_OR_EMPTY, v.optionalPath, (c) => join(c.record_dir, 'edgerec.db')),
  media_host_count: n(2, '', 1, 64, 'number of GStreamer host processes'),
  rtsp_reconnect_min_delay: secs(1, 0.1, 3600, 'first delay before an RTSP camera is pulled again'),
  rtsp_reconnect_max_delay: secs(30, 0.1, 3600, 'cap of the growing RTSP reconnect delay'),
  rtsp_stall_timeout: secs(5, 0.5, 3600, 'time without media before a camera counts as lost'),
  rtsp_client: choice(
    ['edgerec', 'gstreamer'] as const,
    'edgerec',
    "who pulls TCP cameras: edgerec (its own client, about half the CPU) or gstreamer (rtspsrc); UDP cameras and codecs edgerec's client does not carry always use gstreamer",
  ),
  log_level: choice(LEVELS, 'info', 'log verbosity'),
};

/** The fields of one camera.<name>.* group; null = use the global setting. */
export type CameraField = Exclude<keyof CameraConf, 'name'>;

/** Every camera.<name>.<field>, declared once. */
export const CAMERA_SCHEMA: { readonly [K in CameraField]: KeySpec<CameraConf[K]> } = {
  url: text('', 'RTSP URL to pull (required; may hold user:password)', 'an rtsp:// or rtsps:// URL with a host', v.rtspUrl),
  transport: choice(['tcp', 'udp'] as const, 'tcp', 'RTP transport'),
  record: b('true', 'record this camera'),
  template: emptyDefault('file name template for this camera; empty = stream_record_policy_template', `${TEMPLATE_ALLOWED}, or empty`, (raw, ctx) =>
    raw === '' ? null : v.template(raw, ctx),
  ),
  rotation: emptyDefault('record_rotation for this camera; empty = record_rotation', `${ROTATION_ALLOWED}, or empty`, (raw, ctx) =>
    raw === '' ? null : v.rotation(raw, ctx),
  ),
};

/** Keys of the reference server that name its own implementations: accepted, ignored with a warning. */
export const IGNORED_KEYS: Readonly<Record<string, string>> = {
  webm_java_writer_enable: 'it picks a WebM writer of the reference server; edgerec always muxes with GStreamer',
};

/** The text of conf/edgerec.properties: every key commented out with its default and doc. */
export function renderDefaultProperties(): string {
  const out = [
    '# edgerec configuration: key=value lines, # or ! comments. Every key is listed commented out with its default;',
    '# uncomment a line to change it. Edits apply within a second without a restart (SIGHUP reloads too);',
    '# an invalid edit is refused and the running configuration kept. Relative paths are from the install folder.',
    '# Generated by renderDefaultProperties() in src/conf/schema.ts.',
  ];
  const entry = (key: string, s: KeySpec<unknown>, example?: string) => {
    const unit = s.unit ? ` Unit: ${s.unit}.` : '';
    const inert = s.inert ? ` NO EFFECT (a warning if set): ${s.inert}.` : '';
    out.push('', `# ${s.doc}.${unit} Allowed: ${s.allowed}.${inert}`, `#${key}=${example ?? s.def}`);
  };
  for (const [key, s] of Object.entries(SCHEMA) as [string, KeySpec<unknown>][]) entry(key, s);
  out.push(
    '',
    '# RTSP cameras: one camera.<name>.* group each (name: 1–64 of A-Z a-z 0-9 _ -), recorded as stream <name>.',
  );
  const example: Record<CameraField, string> = {
    url: 'rtsp://user:password@192.168.1.64:554/Streaming/Channels/101',
    transport: 'tcp',
    record: 'true',
    template: '{streamName}-{startTimeMillis}-{endTimeMillis}',
    rotation: '600',
  };
  for (const [field, s] of Object.entries(CAMERA_SCHEMA) as [CameraField, KeySpec<unknown>][]) {
    entry(`camera.lobby.${field}`, s, example[field]);
  }
  out.push('', `# Accepted and ignored (reference server implementation switches): ${Object.keys(IGNORED_KEYS).join(', ')}.`, '');
  return out.join('\n');
}
