import { AssertionError } from 'node:assert';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A child process started by a test; stopped by its PID in stop(). */
export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** everything written to stdout and stderr so far */
  output(): string;
  /** resolves when the process has exited */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (or the given signal), then SIGKILL after graceMs; resolves when gone */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Spawn a process and keep its output; register `t.after(() => p.stop())` in the test. */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  return {
    child,
    pid,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000) {
      if (gone) return;
      try {
        process.kill(pid, signal);
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Poll `fn` every `intervalMs` until it returns a truthy value or `timeoutMs` passes (then throws with `what`).
 * A plain error thrown by `fn` means "not yet" and is retried; a failed assertion (node:assert) inside `fn` is a
 * check that must hold at every sample, so it fails the wait at once instead of only needing to hold at the end.
 */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (let i = 0; i < 100_000; i++) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof AssertionError) {
        err.message = `while waiting for ${what} (sample ${i + 1}): ${err.message}`;
        throw err;
      }
      lastErr = err;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

/** A free TCP port on 127.0.0.1 chosen by the OS. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
