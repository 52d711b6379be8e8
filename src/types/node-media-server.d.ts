/** The parts of node-media-server 4.4.3 (no typings of its own) that edgerec uses. */

declare module 'node-media-server/src/protocol/rtmp.js' {
  /** A decoded AMF0 command (connect, publish, play, ...). */
  interface InvokeMessage {
    cmd: string;
    transId?: number;
    cmdObj?: Record<string, unknown> | null;
    streamName?: string;
    [key: string]: unknown;
  }

  /** A media or data message as parsed from RTMP chunks; `data` is a reused buffer, valid for `size` bytes. */
  interface RtmpAvPacket {
    /** 8 audio, 9 video, 15 AMF3 data, 18 AMF0 data */
    codec_type: number;
    codec_id: number;
    flags: number;
    pts: number;
    dts: number;
    size: number;
    data: Buffer;
  }

  /** RTMP handshake, chunk parsing and command answers of one connection (no socket, no server state). */
  class Rtmp {
    constructor();
    /** feed bytes from the socket; a string is a parse error */
    parserData(buffer: Buffer): string | null;
    onConnectCallback: (req: { app: string; name: string; host: string; query: Record<string, string | string[] | undefined> }) => void;
    onPlayCallback: () => void;
    onPushCallback: () => void;
    onPacketCallback: (packet: RtmpAvPacket) => void;
    onOutputCallback: (buffer: Buffer) => void;
    /** prototype methods, called for the matching AMF command; replaceable per instance */
    onPublish(invokeMessage: InvokeMessage): void;
    onPlay(invokeMessage: InvokeMessage): void;
    onDeleteStream(invokeMessage: InvokeMessage): void;
    /** allocates `parserPacket.payload` for the message whose header was just read; replaceable per instance */
    packetAlloc(): void;
    /** handles a protocol control message (Set Chunk Size sets `inChunkSize`); replaceable per instance */
    controlHandler(): void;
    /** decodes and dispatches an AMF command message; replaceable per instance */
    invokeHandler(): void;
    /** hands a complete audio/video/data message (parserPacket) to onPacketCallback; replaceable per instance */
    dataHandler(): void;
    onConnect(invokeMessage: InvokeMessage): void;
    onCreateStream(invokeMessage: InvokeMessage): void;
    /** chunk size set by the peer (128 until it sets one) */
    inChunkSize: number;
    sendStatusMessage(streamId: number, level: string, code: string, description: string): void;
    /** the message being parsed */
    parserPacket: RtmpParserPacket;
    /** per chunk stream id: the message state, each holding a payload buffer of `capacity` bytes */
    inPackets: Map<number, RtmpParserPacket>;
    streamApp: string;
    streamName: string;
  }

  interface RtmpParserPacket {
    header: { fmt: number; cid: number; timestamp: number; length: number; type: number; stream_id: number };
    /** the message's timestamp (ms; what NMS reports as dts) */
    clock: number;
    /** the message bytes (valid up to header.length once complete) */
    payload: Buffer;
    capacity: number;
  }
  export = Rtmp;
}

declare module 'node-media-server/src/protocol/amf.js' {
  /** Decodes an AMF0 data message: `{cmd, dataObj?}` for `@setDataFrame` / `onMetaData`. */
  export function decodeAmf0Data(buf: Buffer): { cmd?: unknown; dataObj?: unknown; [key: string]: unknown };
  /** Decodes an AMF0 command message: `{cmd, transId, cmdObj, streamName?, ...}` by the command's known fields. */
  export function decodeAmf0Cmd(buf: Buffer): { cmd?: unknown; cmdObj?: unknown; streamName?: unknown; [key: string]: unknown };
  /** Encodes an AMF0 command message (tests build publishers' commands with it). */
  export function encodeAmf0Cmd(opt: Record<string, unknown>): Buffer;
}

declare module 'node-media-server/src/core/logger.js' {
  type NmsLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** node-media-server's process-wide logger (prints with console.log). */
  const logger: {
    level: NmsLevel;
    log(message: string, logLevel?: NmsLevel): void;
  };
  export = logger;
}
