import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, mkdtempSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, waitFor, type Proc } from './proc';

/** A VLC 3.0 RTSP server (a third-party camera): RTP over UDP only, joined wherever its stream stands. */
export interface VlcCamera {
  readonly url: string;
  readonly proc: Proc;
  /** SIGKILL VLC (its process group: runuser and cvlc) and wait */
  stop(): Promise<void>;
}

/** A TCP port the OS gave and released (VLC takes no port 0). */
async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** An even UDP port (RTP) whose odd neighbour (RTCP) was free too. */
async function freeRtpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const p = s.address().port & ~1;
    s.close();
    if (p > 1024 && p < 65000) return p;
  }
  throw new Error('no free UDP port pair for VLC');
}

/**
 * `cvlc` serving `clip` in a loop over RTSP (`#rtp{sdp=rtsp://...}`). VLC refuses to run as root: as root it runs
 * as `nobody` with its own HOME, the clip copied where that user can read it.
 */
export async function startVlcCamera(clip: string): Promise<VlcCamera> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-vlc-'));
  chmodSync(dir, 0o755);
  const local = join(dir, `clip${clip.slice(clip.lastIndexOf('.'))}`);
  copyFileSync(clip, local);
  chmodSync(local, 0o644);
  const rtsp = await freeTcpPort();
  const rtp = await freeRtpPort();
  const url = `rtsp://127.0.0.1:${rtsp}/cam`;
  const vlc = ['-I', 'dummy', '--no-audio-time-stretch', local, '--loop', '--sout', `#rtp{port=${rtp},sdp=${url}}`, '--sout-keep'];
  const root = process.getuid?.() === 0;
  const proc = root
    ? start('runuser', ['-u', 'nobody', '--', 'cvlc', ...vlc], { env: { ...process.env, HOME: dir }, cwd: dir, detached: true })
    : start('cvlc', vlc, { cwd: dir, detached: true });
  const stop = async () => {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await proc.exited;
  };
  try {
    // ready when its RTSP port answers
    await waitFor(
      'VLC to serve RTSP',
      () =>
        new Promise<boolean>((resolve) => {
          const c = connect(rtsp, '127.0.0.1');
          c.once('connect', () => (c.destroy(), resolve(true)));
          c.once('error', () => resolve(false));
          if (proc.child.exitCode !== null) assert.fail(`cvlc exited: ${proc.output().slice(-1000)}`);
        }),
      15_000,
      200,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, proc, stop };
}
