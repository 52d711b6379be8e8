import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AppError, errnoOf } from '../../../src/lib/errors';
import { log } from '../../../src/lib/log';
import { runGstLaunch } from '../../../src/pipeline/gst-launch';
import { Finalizer } from '../../../src/recorder/finalize';
import { isNoSpace } from '../../../src/recorder/fragment-finalizer';

// A full disk is told by a code (ENOSPC, on the error or on one it wraps), never by the words of a message.

test('isNoSpace: the ENOSPC code, on the error or down its cause chain; words alone are not enough', () => {
  const enospc = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
  assert.equal(isNoSpace(enospc), true);
  assert.equal(isNoSpace(new AppError('INTERNAL', 'finalize failed', { cause: new AppError('INTERNAL', 'copy', { cause: enospc }) })), true);
  assert.equal(errnoOf(new AppError('INTERNAL', 'x', { cause: Object.assign(new Error('gone'), { code: 'ENOENT' }) })), 'ENOENT');
  assert.equal(isNoSpace(new Error('no space left on the device of /srv/rec')), false);
  assert.equal(isNoSpace(new AppError('BAD_CONFIG', 'ENOSPC')), false);
  assert.equal(isNoSpace(null), false);
});

/** A 64 KiB tmpfs, or null when this machine cannot mount one (not root). */
function smallDisk(t: TestContext): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  t.after(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test('a full disk under the finalizer and under gst-launch is recognised as no space', async (t) => {
  const small = smallDisk(t);
  if (!small) {
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  const src = join(mkdtempSync(join('/dev/shm', 'edgerec-src-')), 'big.ts');
  t.after(() => rmSync(join(src, '..'), { recursive: true, force: true }));
  execFileSync('dd', ['if=/dev/zero', `of=${src}`, 'bs=1024', 'count=512'], { stdio: 'ignore' });
  const f = new Finalizer({ concurrency: 1, log: log.child({}, { level: 'silent' }) });
  const moved = await f.finalize({ src, dst: join(small, 'big.ts') }).then(() => null, (e: unknown) => e);
  assert.ok(isNoSpace(moved), `finalizer: ${String(moved)}`);
  // GStreamer says "No space left on the resource" on stderr: gst-launch's boundary turns it into the code
  const gst = await runGstLaunch(`videotestsrc num-buffers=200 ! filesink location=${join(small, 'raw.bin')}`, 30_000).then(() => null, (e: unknown) => e);
  assert.ok(gst instanceof AppError && isNoSpace(gst), `gst-launch: ${String(gst)}`);
});
