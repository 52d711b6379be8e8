import { RtspError } from './target';
import { RtspSession } from './session';
import { ntpToEpochMs } from '../rtcp/clock';

/** The sender info of an RTCP SR (RFC 3550 §6.4.1). */
export interface RtcpSenderInfo {
  readonly ssrc: number;
  /** 64-bit NTP timestamp: seconds since 1900 in the high word */
  readonly ntp: bigint;
  readonly rtpTime: number;
}

/** The first sender report (PT 200) of an RTCP packet, compound or not; null when it holds none or is malformed. */
export function findSenderReport(rtcp: Buffer): RtcpSenderInfo | null {
  let off = 0;
  // Every sub-packet is at least 4 bytes, so at most length/4 passes.
  while (off + 4 <= rtcp.length) {
    const b0 = rtcp[off] ?? 0;
    if (b0 >> 6 !== 2) return null;
    const size = (rtcp.readUInt16BE(off + 2) + 1) * 4;
    if (off + size > rtcp.length) return null;
    if (rtcp[off + 1] === 200 && size >= 28) {
      return { ssrc: rtcp.readUInt32BE(off + 4), ntp: rtcp.readBigUInt64BE(off + 8), rtpTime: rtcp.readUInt32BE(off + 16) };
    }
    off += size;
  }
  return null;
}

/** How far the camera's wall clock is ahead of ours (ms, negative = behind), from an SR's NTP time and when it arrived. */
export function clockOffsetMs(sr: RtcpSenderInfo, arrivedAtMs: number): number {
  return Math.round(ntpToEpochMs(sr.ntp) - arrivedAtMs) + 0; // + 0: no -0
}

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

export { controlUrl } from './session';
