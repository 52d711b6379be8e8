import { randomUUID } from 'node:crypto';
import { useH264, useOPUS, useSdesMid, useVP8, type PeerConfig, type RTCRtpCodecParameters } from 'werift';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import { TypedEmitter } from '../../lib/typed-emitter';
import { installWeriftIcePatches } from './werift-ice';
import { acceptBundleOnly, planOffer, type OfferPlan } from './offer';
import { WhipSession, type WhipPublish } from './session';

export type { WhipPublish } from './session';

/** How WhipIngest listens for media. */
export interface WhipIngestOptions {
  /** UDP ports for ICE (webrtc_ice_port_range) */
  readonly portRange: { readonly min: number; readonly max: number };
  /** address announced as an extra host candidate (webrtc_public_ip); '' = the interfaces' addresses only */
  readonly publicIp: string;
  /** also offer 127.0.0.1 (tests, a publisher on the same box) */
  readonly loopback: boolean;
  readonly log: Logger;
  /** ms without RTP before a publish is considered gone; default 5000 */
  readonly idleTimeoutMs?: number;
  /** ms after the answer for the first RTP packet to arrive; default 15000 */
  readonly connectTimeoutMs?: number;
  /** ms allowed for ICE gathering; default 5000 */
  readonly gatherTimeoutMs?: number;
  /** media sections (m= lines) an offer may hold (webrtc_max_media_sections, read per offer); default 8 */
  readonly maxMediaSections?: () => number;
}

/** Events of WhipIngest. */
export type WhipIngestEvents = {
  /** media is flowing: the first RTP packet of each accepted track arrived */
  publish: [pub: WhipPublish];
  /** the publish ended: DELETE, ICE/DTLS failure, the publisher vanished, close() */
  unpublish: [pub: WhipPublish, reason: string];
};

/** Who is publishing, from the WHIP request. */
export interface WhipSessionRequest {
  /** the publisher's own record flag; undefined = the config decides */
  readonly record?: boolean;
  readonly login?: string;
  readonly ip?: string;
}

/** WHIP (RFC 9725) ingest without HTTP: offers in, answers out, publishes as events. Routes live elsewhere. */
export class WhipIngest extends TypedEmitter<WhipIngestEvents> {
  private readonly sessions = new Map<string, WhipSession>();
  private readonly byName = new Map<string, WhipSession>();
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly o: WhipIngestOptions) {
    super();
    if (!(o.portRange.min > 0 && o.portRange.max > o.portRange.min && o.portRange.max <= 65535)) {
      throw new AppError('BAD_REQUEST', `bad ICE port range ${o.portRange.min}-${o.portRange.max}: need 1 <= min < max <= 65535`);
    }
    this.log = o.log.child({ component: 'whip' });
    // Sessions gather ICE in parallel (one slow offer delays no other): see werift-ice.ts.
    installWeriftIcePatches();
  }

  /** Answer a WHIP offer: throws AppError BAD_REQUEST (offer we cannot take), CONFLICT (name already publishing), UNAVAILABLE (closing). */
  async createSession(name: string, offerSdp: string, opts: WhipSessionRequest = {}): Promise<{ id: string; answerSdp: string }> {
    if (this.closed) throw new AppError('UNAVAILABLE');
    if (!name || /[/\\\0]/.test(name)) throw new AppError('BAD_REQUEST', `bad stream name "${name}": it must be non-empty, without / \\ or NUL`);
    const sections = countMediaSections(offerSdp);
    const maxSections = this.o.maxMediaSections?.() ?? 8;
    if (sections > maxSections) {
      throw new AppError('BAD_REQUEST', `the WHIP offer has ${sections} media sections (m= lines); allowed: up to ${maxSections} (webrtc_max_media_sections)`);
    }
    const plan = planOffer(offerSdp);
    if (this.byName.has(name)) throw new AppError('CONFLICT', `stream "${name}" is already publishing: DELETE its WHIP session first or use another name`);
    const id = randomUUID();
    const rejectedMedia = [...plan.rejected];
    const session = new WhipSession({
      rejectedMedia,
      id,
      name,
      login: opts.login ?? '',
      ip: opts.ip ?? '',
      ...(opts.record !== undefined ? { record: opts.record } : {}),
      peerConfig: this.peerConfig(plan),
      log: this.log,
      idleTimeoutMs: this.o.idleTimeoutMs ?? 5000,
      connectTimeoutMs: this.o.connectTimeoutMs ?? 15_000,
      onPublish: (s) => this.emit('publish', s),
      onEnd: (s, reason, published) => this.onEnd(s, reason, published),
    });
    this.sessions.set(id, session);
    this.byName.set(name, session);
    try {
      const answerSdp = await session.answer(acceptBundleOnly(offerSdp), this.o.gatherTimeoutMs ?? 5000);
      if (session.acceptedKinds().length === 0) {
        throw new AppError('BAD_REQUEST', 'the WHIP offer was answered with no accepted media section; accepted: VP8 or H.264 video, Opus audio');
      }
      for (const kind of ['video', 'audio'] as const) {
        if (plan[kind].length > 0 && !session.acceptedKinds().includes(kind)) rejectedMedia.push(`${kind}: the WebRTC stack did not accept it`);
      }
      if (rejectedMedia.length > 0) this.log.warn({ stream: name, session: id, rejected: rejectedMedia }, 'whip offer: m-lines that will not be recorded');
      this.log.info({ stream: name, session: id, ip: opts.ip, kinds: session.acceptedKinds() }, 'whip session answered');
      return { id, answerSdp };
    } catch (err) {
      session.end('offer refused');
      if (err instanceof AppError && err.code !== 'INTERNAL') throw err;
      throw new AppError('BAD_REQUEST', `the WHIP offer could not be applied [stream:${name}, reason:${err instanceof Error ? err.message : String(err)}]`);
    }
  }

  /** End a session (WHIP DELETE); false when there is no such session. */
  deleteSession(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    s.end('deleted');
    return true;
  }

  /** The publishing session of a name, if any. */
  sessionOf(name: string): WhipPublish | undefined {
    return this.byName.get(name);
  }

  /** Number of live sessions (answered or publishing). */
  get size(): number {
    return this.sessions.size;
  }

  /** End every session and refuse new ones; resolves when their sockets are closed (at most 5 s); safe twice. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    for (const s of all) s.end('shutdown');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all.map((s) => s.closing)), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  }

  private onEnd(s: WhipSession, reason: string, published: boolean): void {
    this.sessions.delete(s.id);
    if (this.byName.get(s.name) === s) this.byName.delete(s.name);
    if (published) this.emit('unpublish', s, reason);
  }

  /** werift settings for one offer: only the codecs we record, in the publisher's order; NACK + PLI, no TWCC; no public STUN. */
  private peerConfig(plan: OfferPlan): Partial<PeerConfig> {
    const video: RTCRtpCodecParameters[] = plan.video.map((c) =>
      c.name.toUpperCase() === 'H264' ? useH264({ parameters: c.fmtp || 'packetization-mode=1;profile-level-id=42e01f' }) : useVP8(),
    );
    const audio: RTCRtpCodecParameters[] = plan.audio.map(() => useOPUS());
    const hosts: string[] = [];
    if (this.o.loopback) hosts.push('127.0.0.1');
    if (this.o.publicIp) hosts.push(this.o.publicIp);
    return {
      codecs: { video, audio },
      headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
      iceServers: [],
      icePortRange: [this.o.portRange.min, this.o.portRange.max],
      ...(hosts.length > 0 ? { iceAdditionalHostAddresses: hosts } : {}),
    };
  }
}

/** Media sections (m= lines) in an SDP. */
export function countMediaSections(sdp: string): number {
  let n = 0;
  for (let i = sdp.indexOf('m='); i >= 0; i = sdp.indexOf('m=', i + 2)) if (i === 0 || sdp[i - 1] === '\n') n++;
  return n;
}
