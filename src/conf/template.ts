import { basename, dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Container } from '../pipeline/types';
import type { NameEncoding } from './types';
import { AppError } from '../lib/errors';

// The file name template (SPEC §3), whole: its elements, their limits, expansion, the filling of the values known
// only at the end (by the recorder, and by recovery after a crash), and the rules every recorded name obeys.
// A new element: add it to NameVars, MAX_CHARS and templateVars() below (and to SPEC §3 / the README).

/**
 * Values of the template elements (SPEC §3). `undefined` = not known yet: the element stays literal
 * (`{endTime}` while recording). Codecs may be given as our codec ids (`AAC`, `OPUS`, `H264`…) or as names.
 */
export interface NameVars {
  readonly streamName?: string;
  /** ms, MP4 only, known at the end */
  readonly duration?: number;
  /** ms on the stream's own clock */
  readonly startTime?: number;
  readonly endTime?: number;
  /** server clock, epoch ms */
  readonly startTimeMillis?: number;
  readonly endTimeMillis?: number;
  readonly sessionId?: string;
  readonly mediaSessionId?: string;
  /** '' when anonymous */
  readonly login?: string;
  readonly audioCodec?: string;
  readonly videoCodec?: string;
}

/** How expandTemplate() finishes a name. */
export interface NameOptions {
  /** exclude_record_name_characters: every character in it is removed from the templated name */
  readonly exclude: string;
  readonly encoding: NameEncoding;
  /** fragment number appended as `_N`, null = none (not rotating, or indexing off) */
  readonly fragmentIndex: number | null;
  /** the container: the extension is its name */
  readonly extension: Container;
}

/** File name limit of every common Linux file system (NAME_MAX), in bytes. */
export const NAME_MAX_BYTES = 255;

/**
 * Longest templated recording name, bytes: NAME_MAX less room for the longest cut suffix
 * (`-s9999999.9-e9999999.9.mp4` for `.mp4`, 22 more bytes) and a `~N` variant, so that every recording can be cut.
 */
export const RECORD_NAME_MAX_BYTES = 224;

/** A template element's name, as written between braces. */
export type TemplateElement = keyof NameVars;

/** Every element and its maximum length in characters; null = no own limit (the 255-byte cut still applies). */
const MAX_CHARS: Readonly<Record<TemplateElement, number | null>> = {
  streamName: null,
  duration: null,
  startTime: 20,
  endTime: 20,
  startTimeMillis: 20,
  endTimeMillis: 20,
  sessionId: 60,
  mediaSessionId: 36,
  login: 32,
  audioCodec: 4,
  videoCodec: 4,
};

/** The elements a file name template may hold, in the order the docs list them. */
export const TEMPLATE_ELEMENTS = Object.keys(MAX_CHARS) as readonly TemplateElement[];

/** The `{…}` of a template that are not elements (empty: the template is valid). */
export function unknownElements(template: string): string[] {
  return [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1] ?? '').filter((e) => !isElement(e));
}

/** Our codec ids → the names the reference server puts in file names (SDP encoding names, cut to 4). */
const CODEC_NAMES: Readonly<Record<string, string>> = {
  AAC: 'mpeg', // mpeg4-generic
  OPUS: 'opus',
  PCMA: 'PCMA',
  PCMU: 'PCMU',
  MP3: 'MPA',
  VORBIS: 'vorbis',
  H264: 'H264',
  H265: 'H265',
  VP8: 'VP8',
  VP9: 'VP9',
  MJPEG: 'JPEG',
};

function isElement(key: string): key is TemplateElement {
  return Object.prototype.hasOwnProperty.call(MAX_CHARS, key);
}

/** The first `n` characters (code points, so a surrogate pair is never split). */
function cutChars(s: string, n: number): string {
  const cps = Array.from(s);
  return cps.length <= n ? s : cps.slice(0, n).join('');
}

/** The longest prefix of `s` whose UTF-8 form fits in `maxBytes`, never splitting a character. */
export function cutUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out;
}

function valueOf(key: keyof NameVars, vars: NameVars): string | undefined {
  const v = vars[key];
  if (v === undefined) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? String(Math.round(v)) : undefined;
  if (key === 'audioCodec' || key === 'videoCodec') return CODEC_NAMES[v] ?? v;
  return v;
}

/** Expand the elements only: each cut to its maximum; unknown values and unknown `{foo}` stay literal. */
function expandElements(template: string, vars: NameVars): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (whole: string, key: string) => {
    if (!isElement(key)) return whole;
    const v = valueOf(key, vars);
    if (v === undefined) return whole;
    const max = MAX_CHARS[key];
    return max === null ? v : cutChars(v, max);
  });
}

function encode(name: string, encoding: NameEncoding): string {
  const buf = Buffer.from(name, 'utf8');
  if (encoding === 'hex') return buf.toString('hex');
  // base64url (RFC 4648 §5, no padding): standard base64 has '/', which cannot be in a file name
  if (encoding === 'base64') return buf.toString('base64url');
  return name;
}

/**
 * Make `s` usable as part of one path component: slash and backslash become '_' (the file server refuses
 * backslashes too), control characters (NUL included) are removed.
 */
function sanitize(s: string): string {
  return s.replace(/[/\\]/g, '_').replace(/[\u0000-\u001f\u007f]/g, '');
}

/**
 * The file name for a recording (SPEC §3): elements expanded and cut, excluded characters removed,
 * encoding applied, `_N` and the extension appended, cut to RECORD_NAME_MAX_BYTES (224) keeping index and extension.
 * The result is always one safe path component (no '/', no NUL or control characters, no leading '.').
 */
export function expandTemplate(template: string, vars: NameVars, opts: NameOptions): string {
  let base = expandElements(template, vars);
  if (opts.exclude) {
    const excluded = new Set(Array.from(opts.exclude));
    base = Array.from(base).filter((ch) => !excluded.has(ch)).join('');
  }
  base = sanitize(encode(base, opts.encoding));
  if (base.startsWith('.')) base = `_${base}`;
  if (base === '') base = '_';
  const index = opts.fragmentIndex === null ? '' : `_${Math.trunc(opts.fragmentIndex)}`;
  const suffix = `${index}.${opts.extension}`;
  return cutUtf8(base, RECORD_NAME_MAX_BYTES - Buffer.byteLength(suffix, 'utf8')) + suffix;
}

/** What templateVars() reads of a live stream (a recorder/stream.ts Stream fits). */
export interface NameSource {
  readonly name: string;
  readonly sessionId: string;
  readonly mediaSessionId: string;
  readonly login: string;
  codecs(): { readonly video: string | null; readonly audio: string | null };
  /** a time on the stream's own clock (ms) from epoch ms */
  streamClock(epochMs: number): number;
}

/**
 * The element values of one file of a stream: start values once the start is known, end values (endElements)
 * once the end is; what is not known stays undefined (literal in the name).
 */
export function templateVars(s: NameSource, container: Container, startEpochMs: number | null, endEpochMs?: number): NameVars {
  const codecs = s.codecs();
  const end = endEpochMs !== undefined && startEpochMs !== null ? endElements(container, startEpochMs, endEpochMs, s.streamClock(endEpochMs)) : {};
  return {
    streamName: s.name,
    sessionId: s.sessionId,
    mediaSessionId: s.mediaSessionId,
    login: s.login,
    audioCodec: codecs.audio ?? undefined,
    videoCodec: codecs.video ?? undefined,
    startTime: startEpochMs === null ? undefined : s.streamClock(startEpochMs),
    startTimeMillis: startEpochMs ?? undefined,
    ...end,
  };
}

/**
 * The values known only at the end of a file (epoch ms; `endStreamClock` is the end on the stream's own clock):
 * {endTimeMillis}, {endTime}, and {duration} for MP4 only (SPEC §3: elsewhere it stays literal).
 */
export function endElements(container: Container, startEpochMs: number, endEpochMs: number, endStreamClock: number): Pick<NameVars, 'endTime' | 'endTimeMillis' | 'duration'> {
  return { endTimeMillis: endEpochMs, endTime: endStreamClock, duration: container === 'mp4' ? endEpochMs - startEpochMs : undefined };
}

/**
 * Fill the end-known elements a recorded name still holds literally (a recording a crash cut short: recovery
 * knows the name, not the template). An encoded name holds none, and is returned as it is.
 */
export function fillEndElements(name: string, container: Container, startEpochMs: number, endEpochMs: number, endStreamClock: number): string {
  const end = endElements(container, startEpochMs, endEpochMs, endStreamClock);
  return expandElements(name, end);
}

/** The name of the n-th variant of a taken file name (`<base>(n).<ext>`; n = 0: the name), cut to 255 bytes keeping the suffix. */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const ext = extname(name);
  const suffix = `(${n})${ext}`;
  return cutUtf8(name.slice(0, name.length - ext.length), NAME_MAX_BYTES - Buffer.byteLength(suffix, 'utf8')) + suffix;
}

/** `dir/name`, throwing unless `name` is one path component that stays directly inside `dir`. */
export function safeJoin(dir: string, name: string): string {
  const root = resolve(dir);
  const full = resolve(root, name);
  const rel = relative(root, full);
  if (
    name === '' || name.includes('\0') || name.includes('/') || name === '.' || name === '..' ||
    rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) || dirname(full) !== root || basename(full) !== name
  ) {
    throw new AppError('INTERNAL', `unsafe file name ${JSON.stringify(name)}: a name must be one path component inside ${root}`);
  }
  return full;
}
