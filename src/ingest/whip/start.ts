import type { IngestContext, IngestPart } from '../publish';
import { bindPublishes } from '../publish';
import { WhipIngest, type WhipPublish } from './whip-ingest';
import { WhipStream } from './stream';

/** The WHIP ingest as a part; `ingest` answers the offers of the WHIP routes (src/api/whip-routes.ts). */
export interface WhipPart extends IngestPart {
  readonly ingest: WhipIngest;
}

/** WebRTC (WHIP) publishers: ICE ports from the config, publishes handed to the recorder. */
export async function startWhip(ctx: IngestContext): Promise<WhipPart> {
  const { conf, log } = ctx;
  const whip = new WhipIngest({
    portRange: conf().webrtc_ice_port_range,
    publicIp: conf().webrtc_public_ip,
    loopback: true,
    log,
    maxMediaSections: () => conf().webrtc_max_media_sections,
  });
  const publishing = bindPublishes<WhipPublish>(
    whip,
    ctx.streams,
    (pub) => new WhipStream(pub, { onRepair: (kind) => ctx.onRepair(pub.name, kind) }),
    (pub) => pub.record ?? conf().record_webrtc_streams,
  );
  return { name: 'whip', ingest: whip, publishing, close: async () => whip.close(), health: () => ({ webrtc: { publishing: publishing() } }) };
}
