import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
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

/**
 * A fresh temp folder with a tmpfs of `size` mounted at `<folder>/<sub>`, unmounted and removed after the test;
 * null (and the test skipped, saying why) where this machine cannot mount one.
 */
export async function tmpfsUnder(t: TestContext, prefix: string, sub: string, size: string): Promise<{ dir: string; mount: string } | null> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const mount = join(dir, sub);
  const skip = await mountTmpfs(mount, size);
  if (skip) {
    rmSync(dir, { recursive: true, force: true });
    t.skip(skip);
    return null;
  }
  t.after(async () => {
    await unmount(mount);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mount };
}
