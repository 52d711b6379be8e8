import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip, type ClipOptions } from './media';
import { start, waitFor, type Proc } from './proc';

/** Mounts every test server serves, each looping an 8 s clip without gaps. */
export const RTSP_MOUNTS = {
  h264aac: { video: 'h264', audio: 'aac' },
  h264: { video: 'h264', audio: null },
  h265: { video: 'h265', audio: null },
  h264pcma: { video: 'h264', audio: 'pcma' },
  h264pcmu: { video: 'h264', audio: 'pcmu' },
  mjpeg: { video: 'mjpeg', audio: null },
  aac: { video: null, audio: 'aac' },
} as const satisfies Record<string, Pick<ClipOptions, 'video' | 'audio'>>;

export type RtspMount = keyof typeof RTSP_MOUNTS;

export interface RtspServerOptions {
  /** every mount then needs these credentials (GstRTSPServer cannot mix open and protected mounts) */
  readonly auth?: { readonly user: string; readonly password: string; readonly method?: 'basic' | 'digest' };
  /** the server's own safety bound: it exits after this long (default 900 s; a soak needs more) */
  readonly maxSeconds?: number;
  /** RTCP sender reports carry wall clock + this many seconds (a camera whose clock is off); default: true wall clock */
  readonly clockOffsetS?: number;
}

/** A running loopback RTSP server (tests/helpers/rtsp-server.py). */
export interface RtspServer {
  readonly port: number;
  /** the current server process (a new one after restart()) */
  readonly proc: Proc;
  /** rtsp://127.0.0.1:<port>/<mount>, with user:password@ when creds are given */
  url(mount: string, creds?: { user: string; password: string }): string;
  /** SIGTERM, then SIGKILL; safe when already gone or paused */
  stop(): Promise<void>;
  /** send a signal and wait for the exit */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** freeze it (SIGSTOP): connections stay open, nothing answers */
  pause(): void;
  /** thaw it (SIGCONT) */
  resume(): void;
  /** start a new server on the same port (after kill/stop); `size`: its clips' WxH (a camera rebooted with a new SPS) */
  restart(o?: { readonly size?: string }): Promise<void>;
}

const CLIP = { seconds: 8, size: '320x180', fps: 25 } as const;

/** The clips behind every mount, generated (and cached) with makeClip(). */
async function mountArgs(auth: RtspServerOptions['auth'], size: string = CLIP.size): Promise<string[]> {
  const args: string[] = [];
  for (const [name, codecs] of Object.entries(RTSP_MOUNTS)) {
    const clip = await makeClip({ ...codecs, ...CLIP, size });
    args.push('--mount', `/${name}=${name}:${clip}`);
  }
  if (auth) args.push('--user', auth.user, '--password', auth.password, '--auth', auth.method ?? 'basic');
  return args;
}

/** Launch the python server on `port` (0 = any) and resolve with the process and its bound port. */
async function launch(port: number, args: string[]): Promise<{ proc: Proc; port: number }> {
  const proc = start('/usr/bin/python3', [scriptPath(), '--port', String(port), ...args]);
  try {
    const bound = await waitFor(
      'the RTSP test server to print READY',
      async () => {
        const out = proc.output();
        const m = /^PORT (\d+)$/m.exec(out);
        if (m && /^READY$/m.test(out)) return Number(m[1]);
        if (proc.child.exitCode !== null) assert.fail(`rtsp-server.py exited: ${out.slice(-800)}`);
        return 0;
      },
      15_000,
      50,
    );
    return { proc, port: bound };
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
}

/** The .py next to this helper, whether run from the sources or from a build folder (<outDir>/tests/helpers). */
function scriptPath(): string {
  const local = join(__dirname, 'rtsp-server.py');
  return existsSync(local) ? local : join(__dirname, '..', '..', '..', 'tests', 'helpers', 'rtsp-server.py');
}

/** Start the test RTSP server; register `t.after(() => srv.stop())`. */
export async function startRtspServer(opts: RtspServerOptions = {}): Promise<RtspServer> {
  const extra: string[] = [];
  if (opts.maxSeconds !== undefined) extra.push('--max-seconds', String(Math.ceil(opts.maxSeconds)));
  if (opts.clockOffsetS !== undefined) extra.push('--clock-offset-s', String(opts.clockOffsetS));
  let args = [...(await mountArgs(opts.auth)), ...extra];
  let cur = await launch(0, args);
  const port = cur.port;
  const srv: RtspServer = {
    port,
    get proc() {
      return cur.proc;
    },
    url(mount, creds) {
      const auth = creds ? `${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@` : '';
      return `rtsp://${auth}127.0.0.1:${port}/${mount.replace(/^\//, '')}`;
    },
    async stop() {
      srv.resume();
      await cur.proc.stop('SIGTERM', 3000);
    },
    async kill(signal = 'SIGKILL') {
      if (signal !== 'SIGKILL') srv.resume();
      await cur.proc.stop(signal, 3000);
    },
    pause() {
      signal(cur.proc, 'SIGSTOP');
    },
    resume() {
      signal(cur.proc, 'SIGCONT');
    },
    async restart(o) {
      await cur.proc.stop('SIGKILL', 1000);
      if (o?.size) args = [...(await mountArgs(opts.auth, o.size)), ...extra];
      // The old listening socket is gone with the process; a few bounded tries cover a slow kernel.
      let lastErr: unknown;
      for (let i = 0; i < 3; i++) {
        try {
          cur = await launch(port, args);
          return;
        } catch (err) {
          lastErr = err;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
      throw new Error(`could not restart the RTSP test server on port ${port}: ${String(lastErr)}`);
    },
  };
  return srv;
}

function signal(p: Proc, sig: NodeJS.Signals): void {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    /* already gone */
  }
}
