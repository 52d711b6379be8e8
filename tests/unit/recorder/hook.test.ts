import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from '../../../src/lib/log';
import { runHook } from '../../../src/recorder/hook';
import { waitFor } from '../../helpers/proc';

const quiet = log.child({ component: 'hook-test' }, { level: 'silent' });

function script(t: { after: (fn: () => void) => void }, body: string, mode = 0o755): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-hook-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'hook.sh');
  writeFileSync(path, `#!/bin/bash\n${body}\n`);
  chmodSync(path, mode);
  return { path, dir };
}

/** A process is gone when kill(0) fails or it is a zombie waiting for a reaper. */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('the hook gets exactly two arguments, verbatim, never interpreted by a shell', async (t) => {
  const tag = randomBytes(6).toString('hex');
  const pwned = [`/tmp/pwned-${tag}-a`, `/tmp/pwned-${tag}-b`, `/tmp/pwned-${tag}-c`];
  t.after(() => pwned.forEach((p) => rmSync(p, { force: true })));
  // the count on the first line, then every argument NUL-terminated (an argument may hold newlines)
  const { path } = script(t, `printf '%s\\n' "$#"\nfor a in "$@"; do printf '%s\\0' "$a"; done`);
  const name = `my cam "lobby" 'x' $(touch ${pwned[0]}); touch ${pwned[1]} \`touch ${pwned[2]}\` a\nb $HOME * | & > /tmp/x`;
  const file = '/srv/records/my cam $(id).mp4';
  const r = await runHook(path, [name, file], { timeoutMs: 10_000, log: quiet });
  assert.equal(r.error, undefined);
  assert.equal(r.code, 0);
  assert.equal(r.timedOut, false);
  const [count, rest = ''] = [r.stdout.slice(0, r.stdout.indexOf('\n')), r.stdout.slice(r.stdout.indexOf('\n') + 1)];
  assert.equal(count, '2');
  assert.deepEqual(rest.split('\0'), [name, file, '']);
  for (const p of pwned) assert.equal(existsSync(p), false, `${p} was created: an argument was interpreted`);
});

test('a hanging hook is killed at its timeout, with what it started, and the promise resolves', async (t) => {
  const { path, dir } = script(t, `echo $$ > "${'$'}1"\nsleep 60 &\necho $! >> "${'$'}1"\nwait`);
  const pids = join(dir, 'pids');
  const t0 = Date.now();
  const r = await runHook(path, [pids, '/x.mp4'], { timeoutMs: 500, log: quiet });
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  assert.equal(r.timedOut, true);
  assert.equal(r.code, null);
  assert.equal(r.signal, 'SIGTERM');
  const [shell, sleeper] = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  assert.ok(shell && sleeper);
  await waitFor('hook processes gone', () => gone(shell) && gone(sleeper), 4000, 50);
});

test('a hook that ignores SIGTERM gets SIGKILL 2 s later', async (t) => {
  const { path, dir } = script(t, `trap '' TERM\necho $$ > "${'$'}1"\nsleep 60`);
  const pids = join(dir, 'pids');
  const t0 = Date.now();
  const r = await runHook(path, [pids, '/x.mp4'], { timeoutMs: 300, log: quiet });
  const ms = Date.now() - t0;
  assert.ok(ms >= 2000 && ms < 8000, `took ${ms} ms`);
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  const shell = Number(readFileSync(pids, 'utf8').trim());
  await waitFor('hook gone', () => gone(shell), 4000, 50);
});

test('a failing hook reports its exit code and output; a missing or non-executable one its error', async (t) => {
  const { path } = script(t, 'echo "to out"\necho "to err" >&2\nexit 3');
  const r = await runHook(path, ['s', '/f.mp4'], { timeoutMs: 10_000, log: quiet });
  assert.deepEqual(
    { code: r.code, signal: r.signal, timedOut: r.timedOut, stdout: r.stdout, stderr: r.stderr, error: r.error },
    { code: 3, signal: null, timedOut: false, stdout: 'to out\n', stderr: 'to err\n', error: undefined },
  );
  const missing = await runHook('/nonexistent/edgerec-hook.sh', ['s', '/f.mp4'], { timeoutMs: 1000, log: quiet });
  assert.match(missing.error ?? '', /cannot run \/nonexistent\/edgerec-hook\.sh: .*ENOENT/);
  assert.equal(missing.code, null);
  const noexec = script(t, 'exit 0', 0o644);
  const ne = await runHook(noexec.path, ['s', '/f.mp4'], { timeoutMs: 1000, log: quiet });
  assert.match(ne.error ?? '', /EACCES/);
  const none = await runHook('', ['s', '/f.mp4'], { timeoutMs: 1000, log: quiet });
  assert.match(none.error ?? '', /no hook script/);
});

test('output is captured up to a bound', async (t) => {
  const { path } = script(t, 'head -c 300000 /dev/zero | tr "\\0" "a"');
  const r = await runHook(path, ['s', '/f.mp4'], { timeoutMs: 10_000, log: quiet });
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, 64 * 1024);
  assert.match(r.stdout, /^a+$/);
});
