/** Caps on connections that have not published yet (rtmp_max_pending_connections, rtmp_max_pending_per_ip). */
export interface PendingCaps {
  /** over all addresses */
  readonly total: number;
  /** from one address */
  readonly perIp: number;
}

interface Pending<T> {
  readonly conn: T;
  readonly ip: string;
  readonly seq: number;
}

/**
 * The RTMP connections that have not started publishing, and whom to drop to admit a new one. A new connection
 * is always let in, so idle connections cannot lock publishers out: past the per-address cap the oldest
 * connection of that address goes; past the overall cap the oldest connection of the address holding the most
 * goes (a publisher from its own address is the last to be taken). A connection that has shown the publish token
 * is trusted: it is not counted and never dropped here (its deadline still applies). Publishing connections are
 * not in here at all, so they are never dropped to admit anyone.
 */
export class PendingConnections<T> {
  private readonly byIp = new Map<string, Pending<T>[]>();
  private readonly all = new Map<T, Pending<T>>();
  private seq = 0;

  constructor(private readonly caps: () => PendingCaps) {}

  /** Untrusted pending connections. */
  get size(): number {
    return this.all.size;
  }

  /** Pending connections from one address. */
  countOf(ip: string): number {
    return this.byIp.get(ip)?.length ?? 0;
  }

  /** Admit `conn` from `ip`; returns the connections to drop to make room (oldest first). */
  add(conn: T, ip: string): T[] {
    const caps = this.caps();
    const evicted: T[] = [];
    const list = this.byIp.get(ip) ?? [];
    while (list.length >= Math.max(1, caps.perIp)) {
      const old = list[0];
      if (!old) break;
      this.remove(old.conn);
      evicted.push(old.conn);
    }
    for (let i = 0; this.all.size >= Math.max(1, caps.total) && i < caps.total + 1; i++) {
      const victim = this.heaviest();
      if (!victim) break;
      this.remove(victim.conn);
      evicted.push(victim.conn);
    }
    const p: Pending<T> = { conn, ip, seq: ++this.seq };
    const cur = this.byIp.get(ip);
    if (cur) cur.push(p);
    else this.byIp.set(ip, [p]);
    this.all.set(conn, p);
    return evicted;
  }

  /** The connection published, showed the token, or closed: it no longer counts. */
  remove(conn: T): void {
    const p = this.all.get(conn);
    if (!p) return;
    this.all.delete(conn);
    const list = this.byIp.get(p.ip);
    if (!list) return;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byIp.delete(p.ip);
  }

  /** The oldest connection of the address with the most pending connections (ties: the older connection). */
  private heaviest(): Pending<T> | undefined {
    let best: Pending<T> | undefined;
    let bestCount = 0;
    for (const list of this.byIp.values()) {
      const first = list[0];
      if (!first) continue;
      if (list.length > bestCount || (list.length === bestCount && best && first.seq < best.seq)) {
        best = first;
        bestCount = list.length;
      }
    }
    return best;
  }
}
