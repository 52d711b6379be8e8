import type { Codecs } from '../codecs';
import { RtspError } from './target';
import { RtspSession } from './session';
import { sdpCodecs, type SdpMedia } from '../sdp/sdp';

/** What a camera's DESCRIBE answer tells before its pipeline is built. */
export interface RtspDescription {
  readonly sdp: string;
  readonly media: SdpMedia[];
  readonly codecs: Codecs;
  /** Content-Base (or the request URL), without credentials: a=control values are relative to it */
  readonly contentBase: string;
}

/** Learn a camera's media with one RTSP/1.0 DESCRIBE (Basic/Digest auth from the URL, one redirect), within timeoutMs. */
export async function describeRtsp(url: string, opts: { readonly timeoutMs: number }): Promise<RtspDescription> {
  const session = new RtspSession(url);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RtspError('timeout', `${session.phase} within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  });
  try {
    const d = await Promise.race([session.describe(), timeout]);
    return { sdp: d.sdp, media: d.media, codecs: sdpCodecs(d.media), contentBase: d.base };
  } finally {
    clearTimeout(timer);
    await session.close();
  }
}
