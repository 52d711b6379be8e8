import { Socket, type SocketConstructorOpts } from 'node:net';

/** Bytes per socket read into the reused buffer (Node's own reads are up to 64 KiB too). */
export const READ_BUFFER_BYTES = 64 * 1024;

/** What a net.Socket holds and Node's `onread` needs: the accepted connection's libuv handle (not in @types/node). */
interface WithHandle {
  _handle: object | null;
}

/**
 * Takes a connection accepted by a server created with `pauseOnConnect: true` (nothing read from it yet) and returns
 * the same connection as a socket whose reads land in `buf` (Node's `onread` option, offered only to sockets Node
 * builds from a handle): no fresh Buffer per read for V8 to track and collect. `onBytes` gets a view of `buf`
 * valid during the call only (the next read overwrites it): it must copy what it keeps. One `buf` may serve every
 * socket of the process (each read and its callback run together on the main thread). `onBytes` returning false
 * stops reading (as pause() does) until the socket's resume(). 'end', 'close', 'error',
 * 'timeout', pause(), resume(), write() and setTimeout() work as on any socket; 'data' is not emitted.
 * Returns null when the connection is already gone.
 */
export function withReadBuffer(accepted: Socket, buf: Buffer, onBytes: (chunk: Buffer) => boolean | void): Socket | null {
  const old = accepted as unknown as WithHandle;
  const handle = old._handle;
  if (!handle || accepted.destroyed) {
    accepted.destroy();
    return null;
  }
  // the accepted socket lets go of the handle (its destroy() then closes nothing) and the new one owns it
  old._handle = null;
  accepted.destroy();
  const opts = {
    handle,
    onread: {
      buffer: buf,
      callback: (n: number) => onBytes(buf.subarray(0, n)) !== false,
    },
  };
  return new Socket(opts as SocketConstructorOpts);
}
