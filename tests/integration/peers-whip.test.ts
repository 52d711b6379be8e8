import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPeerFile } from '../helpers/peer-file';
import { start, waitFor } from '../helpers/proc';
import { download, settledRecordings } from '../helpers/recorded-file';
import { ROOT, startService } from '../helpers/service';

// Issue 12 (real peers) item 4: GStreamer webrtcbin publishing over WHIP with its default bundle-policy=max-bundle
// (every m-line after the first is port 0 + a=bundle-only): both tracks are recorded.

const work = mkdtempSync(join(tmpdir(), 'edgerec-peers-whip-'));

for (const [video, tracks] of [
  ['vp8', ['audio:opus', 'video:vp8']],
  ['h264', ['audio:aac', 'video:h264']],
] as const) {
  test(`webrtcbin (max-bundle) publishing ${video.toUpperCase()} + Opus over WHIP: both tracks recorded`, async (t) => {
    const s = await startService({ conf: 'record_webrtc_streams=true\nstream_record_policy_template={streamName}-{startTimeMillis}-{endTimeMillis}\n' });
    t.after(() => s.stop());
    const pub = start('/usr/bin/python3', [join(ROOT, 'tests', 'helpers', 'whip-gst.py'), `${s.base}/whip/gst-${video}`, '--video', video, '--seconds', '8']);
    t.after(() => pub.stop('SIGKILL'));
    await waitFor('the publisher to finish', () => {
      if (pub.child.exitCode !== null && !/DONE/.test(pub.output())) throw new Error(`whip-gst.py failed: ${pub.output().slice(-1500)}`);
      return /DONE/.test(pub.output());
    }, 40_000, 200);
    const offerLine = s.logs().find((l) => l.msg === 'whip offer: m-lines that will not be recorded');
    assert.equal(offerLine, undefined, `no m-line rejected: ${JSON.stringify(offerLine)}`);
    const rows = await settledRecordings(s, `gst-${video}`, 30_000);
    assert.deepEqual(rows.map((r) => r.state), ['complete'], JSON.stringify(rows));
    const row = rows[0];
    assert.ok(row?.url);
    const facts = await checkPeerFile(await download(s.base, row.url, work), row);
    assert.deepEqual(facts.tracks, tracks);
    assert.ok(facts.seconds >= 5, `${facts.seconds} s recorded of 8 s published`);
  });
}
