import { createSocket, type Socket } from 'node:dgram';
import { MediaStreamTrack, RTCPeerConnection, useH264, useOPUS, useVP8 } from 'werift';
import { start, type Proc } from './proc';

type Kind = 'video' | 'audio';

/** A live ffmpeg test source (testsrc2 + sine) sending RTP to UDP sockets on 127.0.0.1, fanned out to subscribers. */
export interface RtpSource {
  readonly video: 'vp8' | 'h264' | null;
  readonly audio: boolean;
  readonly proc: Proc;
  /** packets received so far, per kind */
  readonly counts: Record<Kind, number>;
  /** subscribe to its RTP; returns an unsubscribe function */
  subscribe(cb: (kind: Kind, packet: Buffer) => void): () => void;
  stop(): Promise<void>;
}

/** Options of startRtpSource(). */
export interface RtpSourceOptions {
  readonly video: 'vp8' | 'h264' | null;
  readonly audio: boolean;
  /** default 320x240 */
  readonly size?: string;
  /** default 25 */
  readonly fps?: number;
}

async function bindUdp(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return { socket, port: socket.address().port };
}

/** Start ffmpeg encoding a test pattern (VP8 or H.264, 1 s GOP) and/or a tone (Opus) live (-re) to RTP. */
export async function startRtpSource(o: RtpSourceOptions): Promise<RtpSource> {
  const fps = o.fps ?? 25;
  const subs = new Set<(kind: Kind, packet: Buffer) => void>();
  const counts: Record<Kind, number> = { video: 0, audio: 0 };
  const sockets: Socket[] = [];
  const args = ['-hide_banner', '-loglevel', 'error', '-re'];
  if (o.video) args.push('-f', 'lavfi', '-i', `testsrc2=size=${o.size ?? '320x240'}:rate=${fps}`);
  if (o.audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  const listen = async (kind: Kind): Promise<number> => {
    const { socket, port } = await bindUdp();
    socket.on('message', (msg) => {
      counts[kind]++;
      for (const cb of subs) cb(kind, msg);
    });
    sockets.push(socket);
    return port;
  };
  if (o.video) {
    const port = await listen('video');
    const enc =
      o.video === 'vp8'
        ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k']
        : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-bf', '0'];
    args.push('-map', '0:v', ...enc, '-pix_fmt', 'yuv420p', '-g', String(fps), '-keyint_min', String(fps), '-payload_type', '96');
    args.push('-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`);
  }
  if (o.audio) {
    const port = await listen('audio');
    args.push('-map', `${o.video ? 1 : 0}:a`, '-c:a', 'libopus', '-ar', '48000', '-ac', '2', '-b:a', '48k', '-payload_type', '111');
    args.push('-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`);
  }
  const proc = start('ffmpeg', args);
  return {
    video: o.video,
    audio: o.audio,
    proc,
    counts,
    subscribe(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    async stop() {
      subs.clear();
      await proc.stop('SIGKILL');
      for (const s of sockets) s.close();
    },
  };
}

/** Options of publishWhip(). */
export interface PublishOptions {
  /** the WHIP exchange: takes the offer, resolves to the answer (throws to refuse) */
  readonly offerTo: (offerSdp: string) => Promise<string>;
  readonly video: 'vp8' | 'h264' | null;
  readonly audio: boolean;
  /** a shared source; default: one started (and stopped by close()) for this publisher */
  readonly source?: RtpSource;
}

/** A werift WebRTC publisher. */
export interface WhipPublisher {
  readonly pc: RTCPeerConnection;
  readonly offerSdp: string;
  readonly source: RtpSource;
  /** RTP packets written to the peer connection */
  sent(): number;
  /** keyframe requests (RTCP PLI) received from the other side */
  plis(): number;
  /** skip the next n video packets (a loss NACK cannot repair: they were never sent) */
  dropVideo(n: number): void;
  /** close the peer connection (and the source when it is its own) */
  close(): Promise<void>;
}

/** Publish an ffmpeg test source over WebRTC: build an offer (all candidates included), exchange it, write RTP to the tracks. */
export async function publishWhip(o: PublishOptions): Promise<WhipPublisher> {
  const own = o.source === undefined;
  const source = o.source ?? (await startRtpSource({ video: o.video, audio: o.audio }));
  const pc = new RTCPeerConnection({
    codecs: { video: o.video === 'h264' ? [useH264()] : [useVP8()], audio: [useOPUS()] },
    iceServers: [],
    iceAdditionalHostAddresses: ['127.0.0.1'],
    // max-compat gathers a transport per m-line and leaks the unbundled ones on close (werift 0.25.2)
    bundlePolicy: 'max-bundle',
  });
  const tracks: Partial<Record<Kind, MediaStreamTrack>> = {};
  let plis = 0;
  if (o.video) {
    tracks.video = new MediaStreamTrack({ kind: 'video' });
    pc.addTransceiver(tracks.video, { direction: 'sendonly' }).sender.onPictureLossIndication.subscribe(() => plis++);
  }
  if (o.audio) {
    tracks.audio = new MediaStreamTrack({ kind: 'audio' });
    pc.addTransceiver(tracks.audio, { direction: 'sendonly' });
  }
  let sent = 0;
  let drop = 0;
  let unsubscribe: () => void = () => undefined;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, 5000);
      pc.iceGatheringStateChange.subscribe((s) => {
        if (s === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const offerSdp = pc.localDescription?.sdp ?? '';
    const answer = await o.offerTo(offerSdp);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    unsubscribe = source.subscribe((kind, packet) => {
      const t = tracks[kind];
      if (!t || pc.connectionState !== 'connected') return;
      if (kind === 'video' && drop > 0) {
        drop--;
        return;
      }
      t.writeRtp(packet);
      sent++;
    });
    return {
      pc,
      offerSdp,
      source,
      sent: () => sent,
      plis: () => plis,
      dropVideo(n) {
        drop = n;
      },
      async close() {
        unsubscribe();
        await pc.close();
        if (own) await source.stop();
      },
    };
  } catch (err) {
    unsubscribe();
    await pc.close();
    if (own) await source.stop();
    throw err;
  }
}
