import assert from 'node:assert/strict';
import { RtspError } from '../../src/protocols/rtsp/target';

/** Rejects with an RtspError of this kind; returns it. */
export async function rejectsWith(p: Promise<unknown>, kind: RtspError['kind']): Promise<RtspError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RtspError, `expected an RtspError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    return err;
  }
  assert.fail(`expected a ${kind} error, but it resolved`);
}
