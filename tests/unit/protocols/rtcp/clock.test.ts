import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ntpToEpochMs, rtpToWallClock } from '../../../../src/protocols/rtcp/clock';
import { rtpTsDelta, seqDelta } from '../../../../src/protocols/rtp/packet';

test('ntpToEpochMs: NTP era offset and fraction', () => {
  const sec = BigInt(2_208_988_800 + 1_700_000_000);
  assert.equal(ntpToEpochMs((sec << 32n) | 0x8000_0000n), 1_700_000_000_500);
});

test('rtpTsDelta and seqDelta wrap', () => {
  assert.equal(rtpTsDelta(10, 0xffff_fff0), 26);
  assert.equal(rtpTsDelta(0xffff_fff0, 10), -26);
  assert.equal(seqDelta(2, 65534), 4);
  assert.equal(seqDelta(65534, 2), -4);
  assert.equal(seqDelta(5, 5), 0);
});

test('rtpToWallClock maps through the sender report, before and after it, across a wrap', () => {
  const sr = { ntpMs: 1_000_000, rtpTs: 0xffff_0000, receivedAt: 0 };
  assert.equal(rtpToWallClock(sr, 0xffff_0000 + 45_000, 90_000), 1_000_500);
  assert.equal(rtpToWallClock(sr, (0xffff_0000 + 180_000) % 0x1_0000_0000, 90_000), 1_002_000);
  assert.equal(rtpToWallClock(sr, 0xffff_0000 - 48_000, 48_000), 999_000);
});
