/** A scripted RTSP camera on 127.0.0.1 (node:net) for client tests: it records every request and answers as the test's script says. */
import { createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

/** The password in every fake camera's URL (tests check it never leaks). */
export const PASSWORD = 'Pa55-s3cret';

/** A request the fake camera received (header names lower-cased). */
export interface Req {
  readonly method: string;
  readonly uri: string;
  readonly cseq: number;
  readonly headers: ReadonlyMap<string, string>;
}

/** One interleaved packet. */
export interface Packet {
  readonly channel: number;
  readonly payload: Buffer;
}

/** One client connection to the fake camera: what it sent, and its socket to answer on. */
export interface Peer {
  readonly socket: Socket;
  readonly requests: Req[];
  readonly frames: Packet[];
  readonly raw: Buffer[];
  closed: boolean;
}

export interface Camera {
  readonly port: number;
  readonly peers: Peer[];
  readonly url: string;
}

export type Script = (req: Req, peer: Peer, cam: Camera) => void;

/** A scripted RTSP "camera" on 127.0.0.1, port from the OS: `script` answers each request it parses. */
export async function fakeCamera(t: TestContext, script: Script): Promise<Camera> {
  const peers: Peer[] = [];
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    const peer: Peer = { socket, requests: [], frames: [], raw: [], closed: false };
    peers.push(peer);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      peer.raw.push(d);
      buf = Buffer.concat([buf, d]);
      for (let i = 0; i < 1000 && buf.length > 0; i++) {
        if (buf[0] === 0x24) {
          if (buf.length < 4 || buf.length < 4 + buf.readUInt16BE(2)) break;
          peer.frames.push({ channel: buf[1] ?? -1, payload: Buffer.from(buf.subarray(4, 4 + buf.readUInt16BE(2))) });
          buf = buf.subarray(4 + buf.readUInt16BE(2));
          continue;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const [first = '', ...lines] = buf.toString('latin1', 0, end).split('\r\n');
        buf = buf.subarray(end + 4);
        const [method = '', uri = ''] = first.split(' ');
        const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const req: Req = { method, uri, cseq: Number(headers.get('cseq')), headers };
        peer.requests.push(req);
        script(req, peer, cam);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (peer.closed = true));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  const cam: Camera = { port, peers, url: `rtsp://admin:${PASSWORD}@127.0.0.1:${port}/stream` };
  t.after(() => {
    for (const p of peers) p.socket.destroy();
    server.close();
  });
  return cam;
}

/** Write an RTSP answer (echoing the CSeq), optionally followed by binary bytes in the same write. */
export function answer(peer: Peer, req: Req, status: number, headers: Record<string, string> = {}, body = '', extra?: Buffer): void {
  const lines = [`RTSP/1.0 ${status} ${status === 200 ? 'OK' : 'Nope'}`, `CSeq: ${req.cseq}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
  if (!peer.socket.destroyed) peer.socket.write(extra ? Buffer.concat([head, extra]) : head);
}

/** Two tracks: video relative to Content-Base, audio absolute (with credentials the client must not echo). */
export const sdp = (port: number): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=fake', 't=0 0', 'a=control:*', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
    'a=fmtp:96 packetization-mode=1', 'a=control:trackID=1', 'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/48000/2',
    `a=control:rtsp://admin:${PASSWORD}@127.0.0.1:${port}/elsewhere/audio`, ''].join('\r\n');

export interface CameraOptions {
  readonly session?: string;
  /** the Transport answer of the n-th SETUP (default: echo the request's) */
  readonly transport?: (n: number, asked: string) => string;
  readonly setupExtra?: Buffer;
  readonly play?: (req: Req, peer: Peer) => void;
  readonly answerTeardown?: boolean;
}

/** A well-behaved camera (Content-Base .../base/), customisable per step. */
export function camera(o: CameraOptions = {}): Script {
  return (req, peer, cam) => {
    if (req.method === 'DESCRIBE') {
      answer(peer, req, 200, { 'Content-Base': `rtsp://127.0.0.1:${cam.port}/base/`, 'Content-Type': 'application/sdp' }, sdp(cam.port));
    } else if (req.method === 'SETUP') {
      const n = peer.requests.filter((r) => r.method === 'SETUP').length - 1;
      const asked = req.headers.get('transport') ?? '';
      answer(peer, req, 200, { Session: o.session ?? 'abc;timeout=60', Transport: o.transport?.(n, asked) ?? asked }, '', n === 1 ? o.setupExtra : undefined);
    } else if (req.method === 'PLAY') {
      if (o.play) o.play(req, peer);
      else answer(peer, req, 200, { Session: 'abc' });
    } else if (req.method !== 'TEARDOWN' || o.answerTeardown !== false) {
      answer(peer, req, 200);
    }
  };
}
