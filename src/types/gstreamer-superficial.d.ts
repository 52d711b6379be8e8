/** The parts of gstreamer-superficial 1.7.4 (no typings of its own) that edgerec uses. */

declare module 'gstreamer-superficial' {
  /**
   * A bus message: `type` (eos, error, warning, element, ...; a structure field named "type" overwrites it),
   * the message structure's fields (guint64 fields arrive as decimal strings), `_src_element_name`.
   * Errors also carry `message` (the GError text) and `name` (the element path); warnings only `debug`.
   */
  interface BusMessage {
    type: string;
    _src_element_name: string;
    name?: string;
    message?: string;
    debug?: string;
    [field: string]: unknown;
  }

  /** An element found by name: every GObject property is a getter/setter (numbers are set as 32-bit floats). */
  interface GstElement {
    [property: string]: unknown;
  }

  /** An appsrc element. */
  interface AppSrc extends GstElement {
    /** copies `buf` into a GstBuffer; `ptsBE` is an 8-byte big-endian PTS in ns — a number here aborts the process */
    push(buf: Buffer, ptsBE?: Buffer): void;
  }

  /** An appsink element. */
  interface AppSink extends GstElement {
    /** one sample per call (holds a libuv pool thread while waiting); null buffer at EOS */
    pull(cb: (buf: Buffer | null, caps: Record<string, unknown>) => void): void;
  }

  /** A pipeline built with gst_parse_launch; never freed, even when unreferenced, unless dispose() is called. */
  class Pipeline {
    /** throws on a parse error (the message is GStreamer's, e.g. `no element "foo"`) */
    constructor(launch: string);
    play(): void;
    pause(): void;
    /** sets state NULL */
    stop(): void;
    sendEOS(): void;
    /** seconds, -1 when unknown */
    queryPosition(): number;
    /** seconds, -1 when unknown */
    queryDuration(): number;
    seek(seconds: number, flags: number): boolean;
    forceKeyUnit(elementName: string, count: number): boolean;
    findChild(name: string): GstElement | AppSrc | AppSink | undefined;
    setPad(elementName: string, attribute: string, padName: string): void;
    /** calls `cb` for every message, from a libuv pool thread blocked on the bus; ends once the state is NULL after a callback */
    pollBus(cb: (msg: BusMessage) => void): void;
    /**
     * Added by scripts/patches (edgerec): free the pipeline, its elements, bus and the bus's two fds (the binding
     * otherwise never frees one). Only after its bus poll has ended; no method may be called afterwards.
     */
    dispose(): void;
    'auto-flush-bus': boolean;
    delay: number;
    latency: number;
  }

  /**
   * Added by scripts/patches (edgerec): glibc's malloc_trim(0), the free pages of the C heap back to the system;
   * true if memory was released (false on a C library without it).
   */
  export function mallocTrim(): boolean;
}
