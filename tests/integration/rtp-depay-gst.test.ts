import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { AacDepay } from '../../src/protocols/rtp/aac-depay';
import { H264Depay, H265Depay } from '../../src/protocols/rtp/depay';
import type { AccessUnit, Depayloader } from '../../src/protocols/rtp/depayloader';
import { parseRtp, type RtpPacket } from '../../src/protocols/rtp/packet';
import { RtpTimeline } from '../../src/protocols/rtp/timeline';
import { decodeErrors, makeClip, probe } from '../helpers/media';

// Real RTP from GStreamer's payloaders, written as RFC 4571 (2-byte length + packet) by rtpstreampay: no sockets.
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'edgerec-depay-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Payloaded {
  packets: RtpPacket[];
  /** the payloader's caps fields (what an RTSP server puts in the SDP fmtp), keys lower-cased */
  caps: Record<string, string>;
}

/** Run `filesrc clip ! <chain> ! rtpstreampay ! filesink` and return the RTP packets and the payloader's caps. */
async function payload(name: string, clip: string, chain: string): Promise<Payloaded> {
  const out = join(dir, `${name}.rtp`);
  const { stdout } = await run('gst-launch-1.0', ['-v', ...`filesrc location=${clip} ! ${chain} ! rtpstreampay ! filesink location=${out}`.split(' ')], {
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const capsLine = /caps = application\/x-rtp, (.*)$/m.exec(stdout)?.[1];
  assert.ok(capsLine, `no RTP caps in gst-launch -v output:\n${stdout.slice(0, 2000)}`);
  const caps: Record<string, string> = {};
  for (const m of capsLine.matchAll(/([\w-]+)=\([\w]+\)("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    caps[(m[1] ?? '').toLowerCase()] = (m[2] ?? '').replace(/^"|"$/g, '').replace(/\\(.)/g, '$1');
  }
  const b = readFileSync(out);
  const packets: RtpPacket[] = [];
  for (let off = 0, i = 0; off + 2 <= b.length && i < 1_000_000; i++) {
    const len = b.readUInt16BE(off);
    const p = parseRtp(b.subarray(off + 2, off + 2 + len));
    assert.ok(p, `packet ${i} at byte ${off} is not RTP`);
    packets.push(p);
    off += 2 + len;
  }
  return { packets, caps };
}

function depayAll(d: Depayloader, packets: RtpPacket[]): AccessUnit[] {
  return packets.flatMap((p) => d.push(p));
}

async function ffprobeValue(path: string, stream: string, entry: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', stream, '-show_entries', `stream=${entry}`, '-of', 'csv=p=0', path], {
    timeout: 60_000,
  });
  return Number(stdout.trim().split(/[\s,]/)[0]);
}

/** MD5 of every decoded video frame, in output order. */
async function frameHashes(path: string): Promise<string[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-map', '0:v:0', '-f', 'framemd5', '-'], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').pop()?.trim() ?? '');
}

/** Sorted PTS steps from RtpTimeline over the units: all equal to one frame for a constant-rate clip. */
function ptsSteps(units: AccessUnit[], clockRate: number): number[] {
  const tl = new RtpTimeline(clockRate);
  const pts = units.map((u) => tl.ptsNs(u.rtpTime, 1e9)).sort((a, b) => a - b);
  return [...new Set(pts.slice(1).map((p, i) => p - (pts[i] ?? 0)))];
}

/** Kinds of RTP payload seen (H.264): 'single', 'stap-a', 'fu-a'. */
function h264Kinds(packets: RtpPacket[]): Set<string> {
  return new Set(packets.map((p) => ({ 24: 'stap-a', 28: 'fu-a' })[(p.payload[0] ?? 0) & 0x1f] ?? 'single'));
}

test('H.264 with B-frames from rtph264pay (STAP-A, FU-A, in-band SPS/PPS) depayloads to the same decoded frames', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25, bframes: true });
  const { packets } = await payload('h264-inband', clip, 'qtdemux ! h264parse ! rtph264pay mtu=400 config-interval=-1 aggregate-mode=zero-latency');
  const kinds = h264Kinds(packets);
  assert.ok(kinds.has('stap-a') && kinds.has('fu-a'), `payload kinds: ${[...kinds].join(' ')}`);
  const units = depayAll(new H264Depay(), packets);
  const frames = await ffprobeValue(clip, 'v:0', 'nb_frames');
  assert.equal(frames, 100);
  assert.equal(units.length, frames);
  assert.equal(units.filter((u) => u.key).length, 4, 'one IDR a second');
  assert.deepEqual(ptsSteps(units, 90000), [40e6], 'B-frame timestamps sort to an even 25 fps');
  // lose one FU-A middle packet of one P-frame and the FU-A end of another: those two frames go, the rest is untouched
  const fuP = (from: number, edge: number) =>
    packets.findIndex((p, i) => i > from && (p.payload[0] ?? 0) % 32 === 28 && (p.payload[1] ?? 0) % 32 === 1 && ((p.payload[1] ?? 0) & 0xc0) === edge);
  const middle = fuP(packets.length / 3, 0);
  const end = fuP(middle + 20, 0x40);
  assert.ok(middle > 0 && end > middle, `FU-A packets to lose: ${middle} ${end}`);
  const lost = new Set([packets[middle]?.timestamp, packets[end]?.timestamp]);
  assert.equal(lost.size, 2);
  const lossy = depayAll(new H264Depay(), packets.filter((_, i) => i !== middle && i !== end));
  assert.deepEqual(
    lossy.map((u) => [u.rtpTime, u.data.toString('base64')]),
    units.filter((u) => !lost.has(u.rtpTime)).map((u) => [u.rtpTime, u.data.toString('base64')]),
  );
  const out = join(dir, 'inband.h264');
  writeFileSync(out, Buffer.concat(units.map((u) => u.data)));
  assert.equal((await probe(out)).streams[0]?.codec_name, 'h264');
  assert.equal(await ffprobeValue(out, 'v:0', 'nb_read_frames'), frames);
  assert.equal(await decodeErrors(out), '');
  assert.deepEqual(await frameHashes(out), await frameHashes(clip), 'every decoded frame equals the clip');
});

test('H.264 without in-band SPS/PPS decodes only with sprop-parameter-sets from the caps', async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25, bframes: true });
  const { packets, caps } = await payload('h264-sprop', clip, 'qtdemux ! h264parse ! rtph264pay mtu=1200 config-interval=0');
  assert.ok(!packets.some((p) => [7, 8].includes((p.payload[0] ?? 0) & 0x1f)), 'no SPS/PPS packets');
  assert.ok(h264Kinds(packets).has('single'), 'single NAL packets too');
  assert.match(caps['sprop-parameter-sets'] ?? '', /^[\w+/=]+,[\w+/=]+$/);
  const units = depayAll(new H264Depay({ 'sprop-parameter-sets': caps['sprop-parameter-sets'] ?? '' }), packets);
  const out = join(dir, 'sprop.h264');
  writeFileSync(out, Buffer.concat(units.map((u) => u.data)));
  assert.equal(await decodeErrors(out), '');
  assert.equal(await ffprobeValue(out, 'v:0', 'nb_read_frames'), 100);
  // the control: without the sprop the stream carries no SPS/PPS and cannot be decoded
  const bare = join(dir, 'bare.h264');
  writeFileSync(bare, Buffer.concat(depayAll(new H264Depay(), packets).map((u) => u.data)));
  await assert.rejects(async () => {
    const errors = await decodeErrors(bare);
    if (errors) throw new Error(errors);
  });
});

test('H.265 from rtph265pay (AP, FU) depayloads to the same decoded frames', async () => {
  const clip = await makeClip({ video: 'h265', audio: null, seconds: 8, size: '320x180' });
  const { packets, caps } = await payload('h265', clip, 'qtdemux ! h265parse ! rtph265pay mtu=400 config-interval=-1 aggregate-mode=zero-latency');
  const kinds = new Set(packets.map((p) => ((p.payload[0] ?? 0) >> 1) & 0x3f).map((t) => (t === 48 ? 'ap' : t === 49 ? 'fu' : 'single')));
  assert.ok(kinds.has('ap') && kinds.has('fu'), `payload kinds: ${[...kinds].join(' ')}`);
  const units = depayAll(new H265Depay({ 'sprop-vps': caps['sprop-vps'] ?? '', 'sprop-sps': caps['sprop-sps'] ?? '', 'sprop-pps': caps['sprop-pps'] ?? '' }), packets);
  const frames = await ffprobeValue(clip, 'v:0', 'nb_frames');
  assert.equal(frames, 200);
  assert.equal(units.length, frames);
  assert.equal(units.filter((u) => u.key).length, 4, 'one IRAP each 2 s');
  assert.deepEqual(ptsSteps(units, 90000), [40e6]);
  const out = join(dir, 'out.h265');
  writeFileSync(out, Buffer.concat(units.map((u) => u.data)));
  assert.equal((await probe(out)).streams[0]?.codec_name, 'hevc');
  assert.equal(await decodeErrors(out), '');
  assert.deepEqual(await frameHashes(out), await frameHashes(clip), 'every decoded frame equals the clip');
});

for (const mtu of [1400, 150]) {
  test(`AAC from rtpmp4gpay mtu=${mtu} depayloads to the ADTS stream ffmpeg writes, byte for byte`, async () => {
    const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 4, size: '320x180', gop: 25, bframes: true });
    // the clip's AAC as ffmpeg writes it in ADTS: the reference, and the payloader's input (qtdemux would trim
    // the encoder-delay frames the MP4 edit list hides, so the counts would not compare)
    const ref = join(dir, `ref-${mtu}.aac`);
    await run('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-vn', '-c:a', 'copy', '-f', 'adts', ref], { timeout: 60_000 });
    const { packets, caps } = await payload(`aac-${mtu}`, ref, `aacparse ! rtpmp4gpay mtu=${mtu}`);
    assert.equal(caps['encoding-name'], 'MPEG4-GENERIC');
    assert.equal(caps.config, '1210');
    const units = depayAll(new AacDepay(caps), packets);
    const frames = await ffprobeValue(clip, 'a:0', 'nb_frames');
    assert.equal(frames, 174);
    if (mtu < 400) assert.ok(packets.length > frames * 2, `small MTU splits AUs: ${packets.length} packets for ${frames} AUs`);
    assert.equal(units.length, frames);
    // GStreamer rounds each RTP timestamp from a ns PTS: steps are 1023 or 1024 ticks
    const rate = Number(caps['clock-rate']);
    for (const d of ptsSteps(units, rate)) assert.ok(Math.abs(d - (1024 * 1e9) / rate) <= 1e9 / rate + 1, `AAC PTS step ${d} ns`);
    const out = join(dir, `out-${mtu}.aac`);
    writeFileSync(out, Buffer.concat(units.map((u) => u.data)));
    assert.ok(readFileSync(out).equals(readFileSync(ref)), 'identical to ffmpeg -f adts');
    const s = (await probe(out)).streams[0];
    assert.deepEqual([s?.codec_name, s?.sample_rate, s?.channels], ['aac', '44100', 2]);
    assert.equal(await ffprobeValue(out, 'a:0', 'nb_read_frames'), frames);
    assert.equal(await decodeErrors(out), '');
  });
}
