import { execFile } from 'node:child_process';
import { mkdirSync, statfsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Mount a tmpfs of `size` (e.g. '4m') on `dir`; null, or why not when this machine does not allow it. */
export async function mountTmpfs(dir: string, size: string): Promise<string | null> {
  mkdirSync(dir, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    return null;
  } catch (err) {
    return `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${String(err).slice(0, 200)}`;
  }
}

/** Lazy unmount (a process may still hold a file there). */
export async function unmount(dir: string): Promise<void> {
  await run('umount', ['-l', dir]).catch(() => undefined);
}

/** Bytes free for unprivileged writers on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
