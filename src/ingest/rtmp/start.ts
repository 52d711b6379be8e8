import type { IngestContext, IngestPart } from '../publish';
import { bindPublishes } from '../publish';
import { RtmpIngest, type RtmpPublish } from './ingest';
import { RtmpStream } from './stream';

/** RTMP publishers (rtmp_port): listening, limits from the config, publishes handed to the recorder. */
export async function startRtmp(ctx: IngestContext): Promise<IngestPart> {
  const { conf, log } = ctx;
  const rtmp = new RtmpIngest({
    port: conf().rtmp_port,
    bind: conf().rest_bind,
    publishToken: () => conf().publish_auth_token,
    log,
    limits: () => {
      const c = conf();
      return {
        maxPending: c.rtmp_max_pending_connections,
        maxPendingPerIp: c.rtmp_max_pending_per_ip,
        handshakeTimeoutMs: c.rtmp_handshake_timeout * 1000,
        maxMessageSize: c.rtmp_max_message_size,
        maxChunkSize: c.rtmp_max_chunk_size,
        maxPendingBytes: c.rtmp_max_pending_bytes,
      };
    },
  });
  const publishing = bindPublishes<RtmpPublish>(
    rtmp,
    ctx.streams,
    (pub) => new RtmpStream(pub, { audioHold: conf().record_audio_buffer_max_size, onRepair: (kind) => ctx.onRepair(pub.name, kind) }),
    (pub) => {
      const flag = pub.query.record;
      return flag === 'true' ? true : flag === 'false' ? false : conf().record_flash_published_streams;
    },
  );
  rtmp.on('rejected', () => ctx.onRejected('rtmp'));
  rtmp.on('dropped', (reason) => ctx.onDropped('rtmp', reason));
  await rtmp.start();
  log.info({ rtmpPort: rtmp.port }, 'rtmp listening');
  return { name: 'rtmp', publishing, close: () => rtmp.close(), health: () => ({ rtmp: { port: rtmp.port, publishing: publishing(), pending: rtmp.pendingCount } }) };
}
