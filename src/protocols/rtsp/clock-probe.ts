import { RtspError } from './target';
import { RtspSession } from './session';
import { clockOffsetMs, findSenderReport } from '../rtcp/sender-report';

/** Limits of a clock probe. */
export interface ProbeOptions {
  /** the whole probe, RTSP handshake included */
  readonly timeoutMs: number;
  /** media bytes read while waiting for an SR before giving up with null (default 4 MB) */
  readonly maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Open a short RTSP session (TCP interleaved, Basic/Digest auth from the URL), play it until the first RTCP sender
 * report and return the camera clock's offset in ms: SR NTP time as epoch ms − Date.now() when it arrived.
 * null: the session played but no SR with a non-zero NTP time came within timeoutMs / maxBytes.
 * Throws RtspError (never with the password) when the camera cannot be reached, refuses, or does not answer
 * the handshake (DESCRIBE/SETUP/PLAY) in time. The socket is always destroyed (after a TEARDOWN when playing).
 */
export async function probeCameraClock(url: string, opts: ProbeOptions): Promise<number | null> {
  const session = new RtspSession(url);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeoutMs);
  });
  const run = async (): Promise<number | null> => {
    const d = await session.describe();
    const tracks = await session.setup(d, d.media);
    const rtcp = new Set(tracks.map((t) => t.rtcpChannel));
    let bytes = 0;
    const found = new Promise<number | null>((resolve, reject) => {
      session.onEnd = (err) => reject(new RtspError(err.kind, `${err.message} before sending an RTCP sender report`));
      session.onFrame = (channel, payload, arrivedAt) => {
        bytes += payload.length;
        if (rtcp.has(channel)) {
          const sr = findSenderReport(payload);
          // RFC 3550: a sender without a wall clock may send NTP 0 — that says nothing about its clock.
          if (sr && sr.ntp !== 0n) resolve(clockOffsetMs(sr, arrivedAt));
        }
        if (bytes > maxBytes) resolve(null);
      };
    });
    // Armed before PLAY (an SR may share a TCP chunk with the PLAY answer); a failed PLAY leaves it unawaited.
    found.catch(() => undefined);
    await session.play();
    session.phase = `no RTCP sender report from ${session.where}`;
    return found;
  };
  try {
    const r = await Promise.race([run(), timeout]);
    if (r !== 'timeout') return r;
    if (session.playing) return null;
    throw new RtspError('timeout', `${session.phase} within ${opts.timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await session.close();
  }
}
