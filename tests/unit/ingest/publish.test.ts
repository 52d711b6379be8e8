import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindPublishes, type PublishedStream, type StreamSink } from '../../../src/ingest/publish';
import { TypedEmitter } from '../../../src/lib/typed-emitter';
import type { Stream } from '../../../src/recorder/stream';

// The one publish/unpublish contract of push ingests: what RTMP, WHIP (and a future SRT) rely on.

interface Pub {
  readonly id: string;
  readonly name: string;
  readonly record?: boolean;
}

function fakeStream(pub: Pub, log: string[]): PublishedStream {
  return {
    mediaSessionId: `ms-${pub.id}`,
    name: pub.name,
    protocol: 'rtmp',
    sessionId: pub.id,
    login: '',
    startedAt: 0,
    codecs: () => ({ video: 'H264', audio: null }),
    status: () => 'publishing',
    source: () => ({ kind: 'flv' }),
    streamClock: (ms) => ms,
    end: () => log.push(`end ${pub.id}`),
  };
}

test('bindPublishes: a publish is added (recorded as the ingest decides), its unpublish removed and then ended; the count follows', async () => {
  const ingest = new TypedEmitter<{ publish: [Pub]; unpublish: [Pub, string] }>();
  const log: string[] = [];
  let release: () => void = () => undefined;
  const sink: StreamSink = {
    addStream: (s: Stream, opts: { record: boolean }) => log.push(`add ${s.mediaSessionId} record=${opts.record}`),
    removeStream: (id: string) => {
      log.push(`remove ${id}`);
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  };
  const live = bindPublishes<Pub>(ingest, sink, (pub) => fakeStream(pub, log), (pub) => pub.record ?? true);
  ingest.emit('publish', { id: 'a', name: 'cam' });
  ingest.emit('publish', { id: 'b', name: 'lobby', record: false });
  assert.equal(live(), 2);
  assert.deepEqual(log, ['add ms-a record=true', 'add ms-b record=false']);

  ingest.emit('unpublish', { id: 'zz', name: 'never published' }, 'gone');
  assert.equal(live(), 2, 'an unknown unpublish changes nothing');

  ingest.emit('unpublish', { id: 'a', name: 'cam' }, 'left');
  assert.equal(live(), 1);
  assert.deepEqual(log.slice(2), ['remove ms-a'], 'the stream is not ended before the recorder let it go');
  release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log.slice(2), ['remove ms-a', 'end a']);

  ingest.emit('unpublish', { id: 'a', name: 'cam' }, 'again');
  assert.equal(live(), 1, 'a second unpublish of the same publish is ignored');
  assert.equal(log.filter((l) => l === 'remove ms-a').length, 1);
});
