import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { AppError } from '../lib/errors';
import { CAMERA_SCHEMA, type CameraField, type GlobalKey, type GlobalValues, IGNORED_KEYS, type KeySpec, SCHEMA } from './schema';
import type { CameraConf, Conf } from './types';
import { CAMERA_NAME, maskUrl, type ParseContext } from './values';

/** What went wrong where in a config; `errors` lists every problem of the file (a single one lists itself). */
export class ConfError extends AppError {
  /** the key at fault ('' when the line has no key) */
  readonly key: string;
  /** the value as shown (secrets are ***) */
  readonly value: string;
  /** what is allowed instead */
  readonly allowed: string;
  /** 1-based line, null when not from a line */
  readonly line: number | null;
  readonly errors: readonly ConfError[];

  constructor(message: string, f: { key: string; value: string; allowed: string; line: number | null }, errors?: readonly ConfError[]) {
    super('BAD_CONFIG', message);
    this.name = 'ConfError';
    this.key = f.key;
    this.value = f.value;
    this.allowed = f.allowed;
    this.line = f.line;
    this.errors = errors ?? [this];
  }

  /** One error for a list of them (the list itself when it holds one); `more` errors were not kept. */
  static of(list: readonly ConfError[], more = 0): ConfError {
    const first = list[0];
    if (!first) throw new AppError('INTERNAL', 'ConfError.of needs at least one error');
    if (list.length === 1 && more === 0) return first;
    const rest = more > 0 ? `; and ${more} more (only the first ${list.length} are reported)` : '';
    const message = `${list.length + more} errors in config: ${list.map((e) => e.message).join('; ')}${rest}`;
    return new ConfError(message, first, list);
  }
}

/** The result of parsing a config: the frozen Conf and the warnings (unknown, duplicate, ignored keys). */
export interface ParsedConf {
  readonly conf: Conf;
  readonly warnings: string[];
}

interface Entry {
  readonly value: string;
  readonly line: number;
}

/** Largest config file read, bytes: a bigger one is refused before it is read (the running config is kept). */
export const CONF_MAX_BYTES = 1024 * 1024;
/** Errors and warnings reported for one file (the others are counted). */
export const CONF_MAX_REPORTED = 10;
/** Longest value or name quoted in a message, characters. */
const SHOWN_MAX = 64;
/**
 * What a key looks like: lowercase words joined by `_` or `.` (every key of the schema), or one short lowercase
 * word without digits (a typo). Random tokens have capitals or digits.
 */
const KEY_LIKE = /^[a-z][a-z0-9]*(?:[._][a-z0-9]+)+$|^[a-z]{1,20}$/;
const CAMERA_KEY_LIKE = /^camera\.[A-Za-z0-9_-]{1,64}\.[a-z]{1,32}$/;

/**
 * A key as quoted in a message: only when it looks like a key (a token pasted with a `=` in it, e.g. base64
 * padding, would otherwise be echoed as an "unknown key").
 */
function shownKey(key: string): string {
  return (KEY_LIKE.test(key) || CAMERA_KEY_LIKE.test(key)) && key.length <= SHOWN_MAX ? `"${key}"` : `(${key.length} characters, not shown: not a key name, maybe a secret)`;
}

/** A value quoted in a message: at most SHOWN_MAX characters. */
function shortValue(v: string): string {
  const cps = Array.from(v);
  return cps.length <= SHOWN_MAX ? v : `${cps.slice(0, SHOWN_MAX).join('')}…(${cps.length} characters)`;
}

/** Parse properties text into a deeply frozen Conf; throws ConfError listing every bad line. */
export function parseConf(text: string, opts: { installDir: string }): ParsedConf {
  const ctx: ParseContext = { installDir: resolve(opts.installDir) };
  const errors = new CappedList<ConfError>(CONF_MAX_REPORTED);
  const warnings = new CappedList<string>(CONF_MAX_REPORTED);
  const seen = new Map<string, number>();
  const globals = new Map<string, Entry>();
  const cameras = new Map<string, Map<CameraField, Entry>>();

  text.split(/\r\n|\r|\n/).forEach((rawLine, i) => {
    const line = i + 1;
    const trimmed = rawLine.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith('!')) return;
    const eq = trimmed.indexOf('=');
    const key = eq < 0 ? '' : trimmed.slice(0, eq).trim();
    if (key === '') {
      // never quoted: a line without a key is often a secret pasted on its own
      const shown = `(${Array.from(trimmed).length} characters, not shown)`;
      const allowed = 'key=value, a # or ! comment, or a blank line';
      errors.push(new ConfError(`line ${line} is not key=value ${shown} — allowed: ${allowed}`, { key: '', value: shown, allowed, line }));
      return;
    }
    const value = trimmed.slice(eq + 1).trim();
    const prev = seen.get(key);
    if (prev !== undefined) warnings.push(`duplicate key ${shownKey(key)} at line ${line} (line ${prev} ignored, the last one wins)`);
    seen.set(key, line);

    if (Object.hasOwn(SCHEMA, key)) {
      globals.set(key, { value, line });
      const inert = SCHEMA[key as GlobalKey].inert;
      if (inert !== undefined) warnings.push(`key "${key}" at line ${line} has no effect: ${inert}`);
      return;
    }
    const cam = /^camera\.(.*)\.([^.]*)$/.exec(key);
    if (cam) {
      const name = cam[1] ?? '';
      const field = cam[2] ?? '';
      if (!Object.hasOwn(CAMERA_SCHEMA, field)) {
        warnings.push(`unknown key ${shownKey(key)} at line ${line} (ignored; a camera has ${Object.keys(CAMERA_SCHEMA).join(', ')})`);
        return;
      }
      if (!CAMERA_NAME.test(name)) {
        const allowed = '1–64 characters of A-Z a-z 0-9 _ -';
        const shown = shortValue(name);
        errors.push(new ConfError(`bad camera name at line ${line}: "${shown}" — allowed: ${allowed}`, { key: shortValue(key), value: shown, allowed, line }));
        return;
      }
      let group = cameras.get(name);
      if (!group) cameras.set(name, (group = new Map()));
      group.set(field as CameraField, { value, line });
      return;
    }
    const why = IGNORED_KEYS[key];
    if (why !== undefined) warnings.push(`key "${key}" at line ${line} is ignored: ${why}`);
    else warnings.push(`unknown key ${shownKey(key)} at line ${line} (ignored)`);
  });
  if (warnings.dropped > 0) warnings.push(`and ${warnings.dropped} more warnings (only the first ${CONF_MAX_REPORTED} are reported)`, true);

  const values: Record<string, unknown> = {};
  const fallbacks: [GlobalKey, (c: GlobalValues) => unknown][] = [];
  for (const [key, spec] of Object.entries(SCHEMA) as [GlobalKey, KeySpec<unknown>][]) {
    const got = parseEntry(key, spec, globals.get(key), ctx, errors);
    values[key] = got;
    if (got === '' && spec.fallback) fallbacks.push([key, spec.fallback]);
  }
  const confCameras: Record<string, CameraConf> = {};
  for (const [name, group] of cameras) {
    const cam = parseCamera(name, group, ctx, errors);
    if (cam) confCameras[name] = cam;
  }
  const g = values as unknown as GlobalValues;
  if (values.rtsp_reconnect_min_delay !== undefined && values.rtsp_reconnect_max_delay !== undefined) crossCheck(g, globals, errors);
  const scrub = secretScrubber(globals, cameras);
  if (errors.items.length > 0) {
    const list = errors.items
      .sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity))
      .map((e) => new ConfError(scrub(e.message), { key: e.key, value: scrub(e.value), allowed: e.allowed, line: e.line }));
    throw ConfError.of(list, errors.dropped);
  }
  for (const [key, fb] of fallbacks) values[key] = fb(g);
  return { conf: deepFreeze({ ...values, cameras: confCameras } as unknown as Conf), warnings: warnings.items.map(scrub) };
}

/** Removes from a message every secret of the file (token values, camera passwords), wherever it was quoted. */
function secretScrubber(globals: Map<string, Entry>, cameras: Map<string, Map<CameraField, Entry>>): (m: string) => string {
  const secrets: string[] = [];
  for (const [key, e] of globals) if ((SCHEMA as Record<string, KeySpec<unknown>>)[key]?.secret && e.value.length >= 4) secrets.push(e.value);
  for (const group of cameras.values()) {
    const url = group.get('url')?.value ?? '';
    const userinfo = /^[a-z][a-z0-9+.-]*:\/\/?([^@/]*)@/i.exec(url)?.[1] ?? '';
    const pass = userinfo.slice(userinfo.indexOf(':') + 1);
    if (userinfo.includes(':') && pass.length >= 4) secrets.push(pass);
  }
  if (secrets.length === 0) return (m) => m;
  return (m) => secrets.reduce((out, sec) => out.split(sec).join('***'), m);
}

/** Where parse steps put errors (kept or counted). */
type ErrorSink = Pick<CappedList<ConfError>, 'push' | 'length'>;

/** A list that keeps its first `max` items and counts the others. */
class CappedList<T> {
  readonly items: T[] = [];
  dropped = 0;
  constructor(private readonly max: number) {}

  /** Keep `item` while there is room (or always when `force`). */
  push(item: T, force = false): void {
    if (force || this.items.length < this.max) this.items.push(item);
    else this.dropped++;
  }

  get length(): number {
    return this.items.length + this.dropped;
  }
}

/** Read and parse a config file; a missing or unreadable file is a ConfError naming the path. */
export function loadConf(path: string, installDir: string): ParsedConf {
  return parseConf(readConfFile(path), { installDir });
}

/**
 * The text of a config file; a missing, unreadable or too large (over CONF_MAX_BYTES) file is a ConfError naming
 * the file (by its name: the message reaches health). A large file is refused from its size, before any read.
 */
export function readConfFile(path: string): string {
  const name = basename(path);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in its place must not block the service in open()
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    const allowed = 'a readable properties file';
    throw new ConfError(`cannot read config file ${name}: ${why} — allowed: ${allowed}`, { key: '', value: name, allowed, line: null });
  }
  try {
    const st = fstatSync(fd);
    const tooLarge = (size: string) => {
      const allowed = `a properties file of at most ${CONF_MAX_BYTES} bytes (1 MiB)`;
      return new ConfError(`config file ${name} is too large (${size}); it was not read — allowed: ${allowed}`, { key: '', value: name, allowed, line: null });
    };
    if (!st.isFile()) {
      const allowed = 'a regular properties file';
      throw new ConfError(`config file ${name} is not a regular file — allowed: ${allowed}`, { key: '', value: name, allowed, line: null });
    }
    if (st.size > CONF_MAX_BYTES) throw tooLarge(`${st.size} bytes`);
    // it may grow while we read: never read more than the bound
    const buf = Buffer.allocUnsafe(CONF_MAX_BYTES + 1);
    let n = 0;
    for (let i = 0; n < buf.length && i < 10_000; i++) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > CONF_MAX_BYTES) throw tooLarge(`more than ${CONF_MAX_BYTES} bytes`);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

function shownValue(key: string, value: string, spec: KeySpec<unknown>): string {
  if (spec.secret) return '***';
  return shortValue(key.endsWith('.url') ? maskUrl(value) : value);
}

function parseEntry<T>(key: string, spec: KeySpec<T>, entry: Entry | undefined, ctx: ParseContext, errors: ErrorSink): T | undefined {
  const raw = entry?.value ?? spec.def;
  const got = spec.parse(raw, ctx);
  if (got === undefined) {
    const shown = shownValue(key, raw, spec);
    const where = entry ? `at line ${entry.line}` : '(default)';
    errors.push(
      new ConfError(`bad value for ${key} ${where}: "${shown}" — allowed: ${spec.allowed}`, {
        key,
        value: shown,
        allowed: spec.allowed,
        line: entry?.line ?? null,
      }),
    );
  }
  return got;
}

function parseCamera(name: string, group: Map<CameraField, Entry>, ctx: ParseContext, errors: ErrorSink): CameraConf | null {
  const before = errors.length;
  const url = group.get('url');
  if (!url) {
    const key = `camera.${name}.url`;
    const first = Math.min(...[...group.values()].map((e) => e.line));
    const allowed = CAMERA_SCHEMA.url.allowed;
    errors.push(new ConfError(`camera "${name}" (line ${first}) has no ${key} — allowed: ${allowed}`, { key, value: '', allowed, line: first }));
  }
  const field = <F extends CameraField>(f: F): CameraConf[F] | undefined =>
    parseEntry(`camera.${name}.${f}`, CAMERA_SCHEMA[f] as KeySpec<CameraConf[F]>, group.get(f), ctx, errors);
  const cam = {
    name,
    url: url ? field('url') : '',
    transport: field('transport'),
    record: field('record'),
    template: field('template'),
    rotation: field('rotation'),
  };
  if (errors.length > before) return null;
  return cam as CameraConf;
}

function crossCheck(c: GlobalValues, entries: Map<string, Entry>, errors: ErrorSink): void {
  if (c.rtsp_reconnect_min_delay > c.rtsp_reconnect_max_delay) {
    const key = entries.has('rtsp_reconnect_max_delay') ? 'rtsp_reconnect_max_delay' : 'rtsp_reconnect_min_delay';
    const line = entries.get(key)?.line ?? null;
    const allowed = `rtsp_reconnect_min_delay (${c.rtsp_reconnect_min_delay}) ≤ rtsp_reconnect_max_delay`;
    const value = String(c[key]);
    errors.push(new ConfError(`bad value for ${key} at line ${line ?? '-'}: "${value}" — allowed: ${allowed}`, { key, value, allowed, line }));
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
