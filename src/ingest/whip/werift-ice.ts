import { createSocket, type SocketType } from 'node:dgram';
import { dirname, join } from 'node:path';
import { AppError } from '../../lib/errors';

/** How long a port handed out stays reserved: werift binds it right after (same tick), so a few seconds is ample. */
const RESERVE_MS = 5000;

/** Ports in [min, max] handed out recently (port → until, epoch ms) and where the next search starts. */
export class PortReservations {
  private readonly until = new Map<number, number>();
  private cursor = 0;

  /** The candidates to try for [min, max], starting after the last port handed out, skipping reserved ones. */
  *candidates(min: number, max: number, now = Date.now()): Generator<number> {
    const n = max - min + 1;
    if (!(n > 0)) return;
    const start = this.cursor;
    for (let k = 0; k < n; k++) {
      const port = min + ((start + k) % n);
      const u = this.until.get(port);
      if (u !== undefined && u > now) continue;
      yield port;
    }
  }

  /** Hold `port` (before probing it, so a concurrent search skips it). */
  reserve(port: number, now = Date.now()): void {
    this.until.set(port, now + RESERVE_MS);
    if (this.until.size > 4096) for (const [p, u] of this.until) if (u <= now) this.until.delete(p);
  }

  /** The probe failed: free `port` again. */
  release(port: number): void {
    this.until.delete(port);
  }

  /** `port` was handed out: the next search starts after it. */
  handedOut(port: number, min: number, max: number): void {
    this.cursor = (port - min + 1) % (max - min + 1);
  }
}

/** True when `port` can be bound now (bound and closed again at once). */
function probe(port: number, type: SocketType, address: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket(type);
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.once('listening', () => s.close(() => resolve(true)));
    s.bind({ port, address });
  });
}

let installed = false;

/** A file of werift's that its package exports hide, reached from its main entry (lib/webrtc/src/index.js). */
function weriftInternal<T>(...path: string[]): T {
  return require(join(dirname(require.resolve('werift')), '..', '..', ...path)) as T;
}

/**
 * Two fixes to werift 0.25.2's ICE, installed once for the process (idempotent):
 *
 * - Ports: werift picks an ICE port in webrtc_ice_port_range by probing from the bottom of the range and binding
 *   the first free one a moment later, so two sessions gathering at once can pick the same port (the second bind
 *   fails and its gathering never ends) and every search walks past every port in use. Its findPort is replaced by
 *   one that reserves a port before probing it and starts after the last port handed out.
 * - STUN: with no STUN server configured (`iceServers: []`) its ICE agent still falls back to stun.l.google.com
 *   for every transport: a DNS lookup on libuv's 4-thread pool (slow or failing on a box without DNS, and every
 *   session queued behind the lookups of an offer with many m-lines) and a request to a third party. edgerec
 *   configures no STUN server (webrtc_public_ip covers NAT), so the fallback is removed: host candidates only.
 *
 * Together they let sessions gather in parallel: one slow offer delays no other.
 */
export function installWeriftIcePatches(): void {
  if (installed) return;
  const network = weriftInternal<{
    findPort: (min: number, max: number, protocol?: SocketType, interfaceAddresses?: Record<string, string>) => Promise<number>;
  }>('common', 'src', 'network.js');
  const ice = weriftInternal<{ Connection?: { prototype: { applyStunTurnServersFromOptions?: (this: IceConnection) => void } } }>('ice', 'src', 'ice.js');
  const applyServers = ice.Connection?.prototype.applyStunTurnServersFromOptions;
  if (typeof network.findPort !== 'function' || typeof applyServers !== 'function' || !ice.Connection) {
    throw new AppError('INTERNAL', 'werift internals changed (common/src/network findPort, ice/src/ice Connection): the ICE patches cannot be installed');
  }
  const reservations = new PortReservations();
  network.findPort = async (min, max, protocol = 'udp4', interfaceAddresses) => {
    const address = interfaceAddresses?.[protocol];
    for (const port of reservations.candidates(min, max)) {
      reservations.reserve(port);
      if (await probe(port, protocol, address)) {
        reservations.handedOut(port, min, max);
        return port;
      }
      reservations.release(port);
    }
    throw new AppError('INTERNAL', `no free UDP port in ${min}-${max} (webrtc_ice_port_range)`);
  };
  ice.Connection.prototype.applyStunTurnServersFromOptions = function (this: IceConnection) {
    applyServers.call(this);
    if (!this.options.stunServer) this.stunServer = undefined;
  };
  installed = true;
}

/** The fields of werift's ICE Connection the STUN fix touches. */
interface IceConnection {
  options: { stunServer?: unknown };
  stunServer: unknown;
}
