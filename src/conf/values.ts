import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { unknownElements } from './template';
import type { ByteQuota, NameEncoding, Rotation } from './types';

/** What a value parser may need besides the text. */
export interface ParseContext {
  /** absolute install folder; relative paths resolve against it */
  readonly installDir: string;
}

/** Turns the (trimmed) text of a value into its typed value, or undefined when the text is not allowed. */
export type ValueParser<T> = (raw: string, ctx: ParseContext) => T | undefined;

/** true / false, any case. */
export const bool: ValueParser<boolean> = (raw) => {
  const v = raw.toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
};

/** A whole number in [min, max]. */
export function int(min: number, max: number): ValueParser<number> {
  return (raw) => {
    if (!/^\+?\d{1,15}$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
}

/** A decimal number (e.g. 2 or 0.5) in [min, max]. */
export function decimal(min: number, max: number): ValueParser<number> {
  return (raw) => {
    if (!/^\+?(\d{1,12}(\.\d{0,9})?|\.\d{1,9})$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
}

/** One of the given numbers. */
export function oneOfNumbers(values: readonly number[]): ValueParser<number> {
  return (raw) => {
    const n = int(0, Number.MAX_SAFE_INTEGER)(raw, { installDir: '/' });
    return n !== undefined && values.includes(n) ? n : undefined;
  };
}

/** One of the given words, any case; the value is the canonical spelling. */
export function oneOf<T extends string>(values: readonly T[]): ValueParser<T> {
  return (raw) => values.find((v) => v.toLowerCase() === raw.toLowerCase());
}

/** Any text without control characters, including empty. */
export const text: ValueParser<string> = (raw) => (/[\x00-\x1f\x7f]/.test(raw) ? undefined : raw);

/** A TCP/UDP port; 0 lets the OS pick. */
export const port: ValueParser<number> = int(0, 65535);

/** `A-B` with 0 ≤ A ≤ B ≤ 65535. */
export const portRange: ValueParser<{ readonly min: number; readonly max: number }> = (raw, ctx) => {
  const m = /^(\d+)\s*-\s*(\d+)$/.exec(raw);
  if (!m) return undefined;
  const min = port(m[1] ?? '', ctx);
  const max = port(m[2] ?? '', ctx);
  return min !== undefined && max !== undefined && min <= max ? { min, max } : undefined;
};

/** `N` seconds, `NM` megabytes, or `disabled`. */
export const rotation: ValueParser<Rotation> = (raw) => {
  if (raw.toLowerCase() === 'disabled') return { kind: 'disabled' };
  const m = /^(\d{1,9})\s*([mM]?)$/.exec(raw);
  const n = Number(m?.[1] ?? 0);
  if (!m || n < 1) return undefined;
  return m[2] ? { kind: 'megabytes', megabytes: n } : { kind: 'seconds', seconds: n };
};

/** `N` bytes, `NK`/`NM`/`NG` (binary units), or `P%` of a disk (0 < P ≤ 100). */
export const byteQuota: ValueParser<ByteQuota> = (raw) => {
  const pct = /^(\d{1,3}(?:\.\d{1,3})?)\s*%$/.exec(raw);
  if (pct) {
    const percent = Number(pct[1]);
    return percent > 0 && percent <= 100 ? { kind: 'percent', percent } : undefined;
  }
  const m = /^(\d{1,15})\s*([kKmMgG]?)$/.exec(raw);
  if (!m) return undefined;
  const bytes = Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
  return bytes >= 1 && bytes <= Number.MAX_SAFE_INTEGER ? { kind: 'bytes', bytes } : undefined;
};

/** `false`, `true,HEX` or `true,BASE64` (any case, spaces around the comma allowed). */
export const nameEncoding: ValueParser<NameEncoding> = (raw) => {
  const v = raw.toLowerCase().replace(/\s+/g, '');
  if (v === 'false') return 'none';
  if (v === 'true,hex') return 'hex';
  if (v === 'true,base64') return 'base64';
  return undefined;
};

/** A non-empty file name template whose {elements} are all known (src/conf/template.ts). */
export const template: ValueParser<string> = (raw) => (raw === '' || unknownElements(raw).length > 0 ? undefined : raw);

/** A non-empty path, made absolute against the install folder. */
export const dirPath: ValueParser<string> = (raw, ctx) => (raw === '' || raw.includes('\0') ? undefined : resolve(ctx.installDir, raw));

/** A path made absolute, or '' when empty (the key's fallback or "off" applies). */
export const optionalPath: ValueParser<string> = (raw, ctx) => (raw === '' ? '' : dirPath(raw, ctx));

/** An IPv4 or IPv6 address, or localhost. */
export const bindAddress: ValueParser<string> = (raw) => (isIP(raw) !== 0 || raw.toLowerCase() === 'localhost' ? raw : undefined);

/** An IP address, or '' (auto). */
export const optionalIp: ValueParser<string> = (raw) => (raw === '' || isIP(raw) !== 0 ? raw : undefined);

/** A bearer token: empty (off) or visible ASCII without spaces. */
export const token: ValueParser<string> = (raw) => (/^[\x21-\x7e]*$/.test(raw) ? raw : undefined);

/** An rtsp:// or rtsps:// URL with a host. */
export const rtspUrl: ValueParser<string> = (raw) => {
  if (!/^rtsps?:\/\//i.test(raw) || /\s/.test(raw)) return undefined;
  try {
    return new URL(raw).hostname ? raw : undefined;
  } catch {
    return undefined;
  }
};

/** A camera name: 1–64 of A-Z a-z 0-9 _ -. */
export const CAMERA_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A URL (or URL-ish text) with any user:password before the last '@' replaced by ***, for messages. */
export function maskUrl(raw: string): string {
  const at = raw.lastIndexOf('@');
  if (at < 0) return raw;
  const scheme = /^[a-z][a-z0-9+.-]*:\/*/i.exec(raw);
  const from = scheme ? scheme[0].length : 0;
  return at >= from ? `${raw.slice(0, from)}***${raw.slice(at)}` : raw;
}

/** An http:// or https:// URL with a host and no user:password, or '' (off). */
export const optionalHttpUrl: ValueParser<string> = (raw) => {
  if (raw === '') return '';
  if (!/^https?:\/\//i.test(raw) || /\s/.test(raw)) return undefined;
  try {
    const u = new URL(raw);
    return u.hostname && !u.username && !u.password ? raw.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
};

/** An S3 bucket name (3–63 of a-z 0-9 . -, starting and ending with a letter or digit), or '' (only when archiving is off). */
export const optionalBucket: ValueParser<string> = (raw) => (raw === '' || /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw) ? raw : undefined);

/** The elements an archive key template may hold. */
export const ARCHIVE_KEY_ELEMENTS = ['boxId', 'streamName', 'date', 'fileName'] as const;

/** An object key template: holds {fileName}, only known elements, no leading '/', no '..' segment, no control characters. */
export const archiveKeyTemplate: ValueParser<string> = (raw) => {
  if (!raw.includes('{fileName}') || raw.startsWith('/') || /[\x00-\x1f\x7f\\]/.test(raw) || raw.split('/').some((seg) => seg === '..' || seg === '.')) return undefined;
  for (const m of raw.matchAll(/\{([^{}]*)\}/g)) {
    if (!(ARCHIVE_KEY_ELEMENTS as readonly string[]).includes(m[1] ?? '')) return undefined;
  }
  return raw;
};

/** A box id for object keys: 1–64 of A-Z a-z 0-9 . _ -, or '' (the host name). */
export const optionalBoxId: ValueParser<string> = (raw) => (raw === '' || /^[A-Za-z0-9._-]{1,64}$/.test(raw) ? raw : undefined);

/** An integer in [min, max] that may be negative. */
export function signedInt(min: number, max: number): ValueParser<number> {
  return (raw) => {
    if (!/^[+-]?\d{1,15}$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
}
