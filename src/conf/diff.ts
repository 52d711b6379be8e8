import { SCHEMA, type GlobalKey } from './schema';
import type { Conf } from './types';

/** What changed between two configs. */
export interface ConfDiff {
  /** global keys whose value changed (deep compare), in schema order */
  readonly changedKeys: string[];
  readonly camerasAdded: string[];
  readonly camerasRemoved: string[];
  /** cameras present in both whose settings changed */
  readonly camerasChanged: string[];
  /** nothing changed */
  readonly empty: boolean;
}

/** The difference between two configs (pure). */
export function diffConf(prev: Conf, next: Conf): ConfDiff {
  const changedKeys = (Object.keys(SCHEMA) as GlobalKey[]).filter((k) => !deepEqual(prev[k], next[k]));
  const before = Object.keys(prev.cameras);
  const after = Object.keys(next.cameras);
  const camerasAdded = after.filter((n) => !Object.hasOwn(prev.cameras, n)).sort();
  const camerasRemoved = before.filter((n) => !Object.hasOwn(next.cameras, n)).sort();
  const camerasChanged = before.filter((n) => Object.hasOwn(next.cameras, n) && !deepEqual(prev.cameras[n], next.cameras[n])).sort();
  const empty = changedKeys.length + camerasAdded.length + camerasRemoved.length + camerasChanged.length === 0;
  return { changedKeys, camerasAdded, camerasRemoved, camerasChanged, empty };
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}
