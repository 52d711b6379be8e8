import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { errMessage } from '../lib/errors';
import type { Logger } from '../lib/log';

/** How a hook run ended. `error` is set when the script could not be started at all. */
export interface HookResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  /** captured output, at most OUTPUT_MAX bytes each (the rest is dropped) */
  readonly stdout: string;
  readonly stderr: string;
  readonly error?: string;
}

export interface HookOptions {
  /** on_record_hook_timeout in ms: SIGTERM then, SIGKILL KILL_GRACE_MS later */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** Bytes of stdout and of stderr kept per run. */
const OUTPUT_MAX = 64 * 1024;
/** Characters of each output put in the log line. */
const LOG_MAX = 4096;
/** Time between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the hook exits, how long its pipes may stay open (held by something it left running). */
const CLOSE_WAIT_MS = 500;

class Capture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  add(b: Buffer): void {
    const room = OUTPUT_MAX - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.truncated = true;
    this.chunks.push(Buffer.from(part));
    this.size += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Run the record hook `script streamName absPath` without a shell: the arguments reach it verbatim and are
 * never interpreted. Output is captured (bounded) and logged. After `timeoutMs` its process group gets
 * SIGTERM, then SIGKILL. Never rejects: a missing, failing or hanging hook changes nothing else.
 */
export function runHook(script: string, args: readonly [streamName: string, absPath: string], opts: HookOptions): Promise<HookResult> {
  const log = opts.log;
  const t0 = Date.now();
  return new Promise<HookResult>((resolve) => {
    const out = new Capture();
    const err = new Capture();
    let timedOut = false;
    let done = false;
    let termTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;

    const finish = (r: Omit<HookResult, 'stdout' | 'stderr' | 'timedOut'>): void => {
      if (done) return;
      done = true;
      clearTimeout(termTimer);
      clearTimeout(closeTimer);
      // the SIGKILL timer is not cleared: after a timeout, what the script started may outlive it
      const res: HookResult = { ...r, timedOut, stdout: out.text(), stderr: err.text() };
      const ctx = {
        script, stream: args[0], file: args[1], code: res.code, signal: res.signal, timedOut, ms: Date.now() - t0,
        stdout: res.stdout.slice(0, LOG_MAX), stderr: res.stderr.slice(0, LOG_MAX), truncated: out.truncated || err.truncated || undefined,
      };
      if (res.error !== undefined) log.warn({ ...ctx, err: res.error }, 'record hook could not run');
      else if (timedOut) log.warn(ctx, `record hook killed after ${opts.timeoutMs} ms`);
      else if (res.code !== 0) log.warn(ctx, 'record hook failed');
      else log.info(ctx, 'record hook done');
      resolve(res);
    };

    if (!script) {
      finish({ code: null, signal: null, error: 'no hook script is set' });
      return;
    }
    let proc: ChildProcessByStdio<null, Readable, Readable>;
    try {
      // detached: its own process group, so a timeout also stops whatever the script started
      proc = spawn(script, [...args], { shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      finish({ code: null, signal: null, error: `cannot run ${script}: ${errMessage(e)}` });
      return;
    }
    proc.stdout.on('data', (b: Buffer) => out.add(b));
    proc.stderr.on('data', (b: Buffer) => err.add(b));
    proc.once('error', (e) => finish({ code: null, signal: null, error: `cannot run ${script}: ${errMessage(e)}` }));

    let exit: { code: number | null; signal: string | null } | null = null;
    proc.once('exit', (code, signal) => {
      exit = { code, signal };
      // Something the hook left running may hold its pipes open: wait a little for the output, not for it.
      closeTimer = setTimeout(() => {
        proc.stdout.destroy();
        proc.stderr.destroy();
        finish({ code, signal });
      }, CLOSE_WAIT_MS);
    });
    proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      finish(exit ?? { code, signal });
    });

    const pid = proc.pid;
    if (pid === undefined) return; // spawn failed: 'error' follows
    termTimer = setTimeout(() => {
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
    }, Math.max(0, opts.timeoutMs));
  });
}
