import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeErrors, probe } from './media';
import { waitFor } from './proc';
import type { Service } from './service';

const run = promisify(execFile);

/** A row of GET /rest-api/recordings. */
export interface RecordingRow {
  readonly id: number;
  readonly fileName: string;
  readonly stream: string;
  readonly mediaSessionId: string;
  readonly published: string;
  /** epoch ms */
  readonly start: number;
  readonly end: number | null;
  readonly durationMs: number | null;
  readonly bytes: number | null;
  readonly audioCodec: string | null;
  readonly videoCodec: string | null;
  readonly container: string;
  readonly fragmentIndex: number | null;
  readonly state: string;
  readonly url: string | null;
  readonly error: string | null;
}

/** Rows of a stream once none of them is still recording or finalizing (bounded poll). */
export async function settledRecordings(s: Service, stream: string, timeoutMs = 20_000): Promise<RecordingRow[]> {
  return waitFor(
    `the recordings of ${stream} to be finalized`,
    async () => {
      const r = await s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=100`);
      if (r.status !== 200) return null;
      const rows = (r.body as { recordings: RecordingRow[] }).recordings;
      return rows.length > 0 && rows.every((x) => x.state !== 'recording' && x.state !== 'finalizing') ? rows : null;
    },
    timeoutMs,
    250,
  );
}

/** Resolves once the stream's first file is open (a keyframe arrived and the recording really started). */
export async function recordingOpened(s: Service, stream: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `a recording row of ${stream}`,
    async () => {
      const r = await s.json(`/rest-api/recordings?stream=${encodeURIComponent(stream)}&limit=1`);
      return r.status === 200 && (r.body as { recordings: unknown[] }).recordings.length > 0;
    },
    timeoutMs,
    50,
  );
}

/** GET a file from the service (as a VMS or the page would) into `dir`; returns its path. */
export async function download(base: string, url: string, dir: string): Promise<string> {
  const r = await fetch(new URL(url, base));
  assert.equal(r.status, 200, `GET ${url} → ${r.status}`);
  const path = join(dir, decodeURIComponent(url.split('/').pop() ?? 'file'));
  writeFileSync(path, Buffer.from(await r.arrayBuffer()));
  return path;
}

/** What a recorded file must hold. */
export interface Expected {
  readonly format: RegExp;
  readonly video: string;
  readonly audio: string;
  readonly minSeconds: number;
  readonly maxSeconds: number;
}

/** Facts about a recording, printed by the tests. */
export interface AvSummary {
  readonly seconds: number;
  readonly videoStart: number;
  readonly audioStart: number;
  readonly videoSeconds: number;
  readonly audioSeconds: number;
}

interface Packet {
  stream_index: number;
  pts_time?: string;
  duration_time?: string;
  flags: string;
}

/**
 * Checks a finished recording: plays without decode errors, codecs and duration as expected, video starts at a
 * keyframe, audio and video start within 100 ms of each other and span the same time (±250 ms: they are in sync).
 */
export async function checkRecording(path: string, e: Expected): Promise<AvSummary> {
  const p = await probe(path);
  assert.match(p.format.format_name, e.format);
  const v = p.streams.find((x) => x.codec_type === 'video');
  const a = p.streams.find((x) => x.codec_type === 'audio');
  assert.equal(v?.codec_name, e.video, `video stream ${JSON.stringify(p.streams)}`);
  assert.equal(a?.codec_name, e.audio, `audio stream ${JSON.stringify(p.streams)}`);
  const seconds = Number(p.format.duration);
  assert.ok(seconds >= e.minSeconds && seconds <= e.maxSeconds, `duration ${seconds} s, expected ${e.minSeconds}–${e.maxSeconds} s`);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,pts_time,duration_time,flags', '-of', 'json', path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const packets = (JSON.parse(stdout) as { packets: Packet[] }).packets;
  const vIdx = p.streams.indexOf(v as (typeof p.streams)[number]);
  const aIdx = p.streams.indexOf(a as (typeof p.streams)[number]);
  const span = (idx: number) => {
    const ps = packets.filter((x) => x.stream_index === idx && x.pts_time !== undefined);
    const pts = ps.map((x) => Number(x.pts_time));
    const last = ps[ps.length - 1];
    return { first: ps[0], start: Math.min(...pts), end: Math.max(...pts) + Number(last?.duration_time ?? 0) };
  };
  const vs = span(vIdx);
  const as = span(aIdx);
  assert.ok(vs.first?.flags.startsWith('K'), `the first video packet is not a keyframe: ${JSON.stringify(vs.first)}`);
  assert.ok(Math.abs(vs.start - as.start) <= 0.1, `audio starts at ${as.start} s, video at ${vs.start} s: more than 100 ms apart`);
  const summary = { seconds, videoStart: vs.start, audioStart: as.start, videoSeconds: vs.end - vs.start, audioSeconds: as.end - as.start };
  assert.ok(Math.abs(summary.videoSeconds - summary.audioSeconds) <= 0.25, `audio and video lengths differ (out of sync): ${JSON.stringify(summary)}`);
  assert.equal(await decodeErrors(path), '', 'decodes without errors');
  return summary;
}
