import type { Conf } from '../conf/types';
import type { Logger } from '../lib/log';
import type { Part } from '../part';
import type { Repair } from '../pipeline/timestamp-guard';
import type { Stream } from '../recorder/stream';

/** Who publishes, whatever the protocol: what each push ingest's publish carries (RtmpPublish, WhipPublish). */
export interface Publisher {
  /** the ingest's session id (UUID) */
  readonly id: string;
  /** the stream name the publisher gave */
  readonly name: string;
  /** the publisher's login, '' when anonymous */
  readonly login: string;
  /** peer address (no port) */
  readonly ip: string;
}

/** A publisher's stream as an ingest hands it over; `end()` once it is no longer recorded. */
export interface PublishedStream extends Stream {
  end(): void;
}

/** Where publishes go (the recording manager). */
export interface StreamSink {
  addStream(stream: Stream, opts: { record: boolean }): void;
  removeStream(mediaSessionId: string): Promise<void>;
}

/** The one publish/unpublish contract of push ingests (RTMP, WHIP, SRT…): a publish per publisher, then its unpublish. */
export interface PushIngest<P extends { readonly id: string }> {
  on(event: 'publish', fn: (pub: P) => void): unknown;
  on(event: 'unpublish', fn: (pub: P) => void): unknown;
}

/** What the root gives every push ingest. */
export interface IngestContext {
  /** the running config (read at each use: it changes on reload) */
  readonly conf: () => Conf;
  readonly log: Logger;
  readonly streams: StreamSink;
  /** a timestamp repair the ingest made on a stream (metrics) */
  onRepair(stream: string, kind: Repair): void;
  /** a publish refused (auth, limits, bad request) — metrics by protocol */
  onRejected(protocol: string): void;
  /** a connection dropped before it published (limits, deadline, bytes that are not the protocol) */
  onDropped(protocol: string, reason: string): void;
}

/** A started push ingest: a Part plus how many publishers are live. */
export interface IngestPart extends Part {
  readonly publishing: () => number;
}

/** Starts one push ingest; the root holds one of these per protocol (src/engine.ts INGESTS). */
export type StartIngest = (ctx: IngestContext) => Promise<IngestPart>;

/**
 * Wires a push ingest to the sink: each publish becomes a stream (recorded when `record(pub)`), each unpublish
 * removes it from the sink, then ends it. Returns the number of live publishes.
 */
export function bindPublishes<P extends { readonly id: string }>(
  ingest: PushIngest<P>,
  sink: StreamSink,
  toStream: (pub: P) => PublishedStream,
  record: (pub: P) => boolean,
): () => number {
  const live = new Map<string, PublishedStream>();
  ingest.on('publish', (pub) => {
    const s = toStream(pub);
    live.set(pub.id, s);
    sink.addStream(s, { record: record(pub) });
  });
  ingest.on('unpublish', (pub) => {
    const s = live.get(pub.id);
    if (!s) return;
    live.delete(pub.id);
    void sink.removeStream(s.mediaSessionId).finally(() => s.end());
  });
  return () => live.size;
}
