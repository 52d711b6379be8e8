import { extname } from 'node:path';

/** What an object key is made of. */
export interface KeyFields {
  readonly boxId: string;
  readonly streamName: string;
  /** start of the file, epoch ms ({date} is its UTC day) */
  readonly startMs: number;
  readonly fileName: string;
}

/** One path segment of a key: no '/', no control characters, never '.' or '..', at most 200 characters. */
function segment(v: string): string {
  const s = v.replace(/[\x00-\x1f\x7f/\\]/g, '_').slice(0, 200);
  return s === '' || s === '.' || s === '..' ? '_' : s;
}

/** Expand archive_key_template (pure): {boxId} {streamName} {date} (YYYY-MM-DD, UTC) {fileName}. */
export function objectKey(template: string, f: KeyFields): string {
  const date = new Date(f.startMs).toISOString().slice(0, 10);
  const values: Record<string, string> = { boxId: segment(f.boxId), streamName: segment(f.streamName), date, fileName: segment(f.fileName) };
  return template.replace(/\{(boxId|streamName|date|fileName)\}/g, (_m, k: string) => values[k] ?? '').replace(/\/{2,}/g, '/');
}

/** The key made unique for one recording when another file already owns `key`: `<base>(r<id>)<ext>`. */
export function uniqueKey(key: string, recordingId: number): string {
  const slash = key.lastIndexOf('/');
  const name = key.slice(slash + 1);
  const ext = extname(name);
  const base = name.slice(0, name.length - ext.length);
  return `${key.slice(0, slash + 1)}${base}(r${recordingId})${ext}`;
}
