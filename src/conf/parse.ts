import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CAMERA_SCHEMA, type CameraField, type GlobalKey, type GlobalValues, IGNORED_KEYS, type KeySpec, SCHEMA } from './schema';
import type { CameraConf, Conf } from './types';
import { CAMERA_NAME, maskUrl, type ParseContext } from './values';

/** What went wrong where in a config; `errors` lists every problem of the file (a single one lists itself). */
export class ConfError extends Error {
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
    super(message);
    this.name = 'ConfError';
    this.key = f.key;
    this.value = f.value;
    this.allowed = f.allowed;
    this.line = f.line;
    this.errors = errors ?? [this];
  }

  /** One error for a list of them (the list itself when it holds one). */
  static of(list: readonly ConfError[]): ConfError {
    const first = list[0];
    if (!first) throw new Error('ConfError.of needs at least one error');
    if (list.length === 1) return first;
    const message = `${list.length} errors in config: ${list.map((e) => e.message).join('; ')}`;
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

const SECRET_HINT = /token|passw|secret|@/i;

/** Parse properties text into a deeply frozen Conf; throws ConfError listing every bad line. */
export function parseConf(text: string, opts: { installDir: string }): ParsedConf {
  const ctx: ParseContext = { installDir: resolve(opts.installDir) };
  const errors: ConfError[] = [];
  const warnings: string[] = [];
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
      const shown = SECRET_HINT.test(trimmed) ? '***' : trimmed;
      const allowed = 'key=value, a # or ! comment, or a blank line';
      errors.push(new ConfError(`line ${line} is not key=value: "${shown}" — allowed: ${allowed}`, { key: '', value: shown, allowed, line }));
      return;
    }
    const value = trimmed.slice(eq + 1).trim();
    const prev = seen.get(key);
    if (prev !== undefined) warnings.push(`duplicate key "${key}" at line ${line} (line ${prev} ignored, the last one wins)`);
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
        warnings.push(`unknown key "${key}" at line ${line} (ignored; a camera has ${Object.keys(CAMERA_SCHEMA).join(', ')})`);
        return;
      }
      if (!CAMERA_NAME.test(name)) {
        const allowed = '1–64 characters of A-Z a-z 0-9 _ -';
        errors.push(new ConfError(`bad camera name in "${key}" at line ${line}: "${name}" — allowed: ${allowed}`, { key, value: name, allowed, line }));
        return;
      }
      let group = cameras.get(name);
      if (!group) cameras.set(name, (group = new Map()));
      group.set(field as CameraField, { value, line });
      return;
    }
    const why = IGNORED_KEYS[key];
    if (why !== undefined) warnings.push(`key "${key}" at line ${line} is ignored: ${why}`);
    else warnings.push(`unknown key "${key}" at line ${line} (ignored)`);
  });

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
  if (errors.length > 0) throw ConfError.of(errors.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity)));
  for (const [key, fb] of fallbacks) values[key] = fb(g);
  return { conf: deepFreeze({ ...values, cameras: confCameras } as unknown as Conf), warnings };
}

/** Read and parse a config file; a missing or unreadable file is a ConfError naming the path. */
export function loadConf(path: string, installDir: string): ParsedConf {
  return parseConf(readConfFile(path), { installDir });
}

/** The text of a config file; a missing or unreadable file is a ConfError naming the path. */
export function readConfFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    const allowed = 'a readable properties file';
    throw new ConfError(`cannot read config file ${path}: ${why} — allowed: ${allowed}`, { key: '', value: path, allowed, line: null });
  }
}

function shownValue(key: string, value: string, spec: KeySpec<unknown>): string {
  if (spec.secret) return '***';
  return key.endsWith('.url') ? maskUrl(value) : value;
}

function parseEntry<T>(key: string, spec: KeySpec<T>, entry: Entry | undefined, ctx: ParseContext, errors: ConfError[]): T | undefined {
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

function parseCamera(name: string, group: Map<CameraField, Entry>, ctx: ParseContext, errors: ConfError[]): CameraConf | null {
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

function crossCheck(c: GlobalValues, entries: Map<string, Entry>, errors: ConfError[]): void {
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
