import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeErrors, probe } from './media';
import type { RecordingRow } from './recorded-file';

const run = promisify(execFile);
const DAY_MS = 86_400_000;

/** What checkPeerFile found. */
export interface PeerFileFacts {
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly firstVideoKey: boolean;
  readonly tracks: string[];
}

/**
 * The checks the real-peers issue asks of every file a third-party peer made: starts on a keyframe, ffmpeg decodes
 * it with no error, its duration is within 1 s of the wall time its row covers, every epoch-ms time in its name is
 * within a day of the server clock (a template with {startTimeMillis}/{endTimeMillis} puts them there).
 */
export async function checkPeerFile(path: string, row: RecordingRow): Promise<PeerFileFacts> {
  const p = await probe(path);
  const seconds = Number(p.format.duration);
  const tracks = p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
  const v = p.streams.findIndex((s) => s.codec_type === 'video');
  let firstVideoKey = true;
  if (v >= 0) {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', String(v), '-show_entries', 'packet=flags', '-read_intervals', '%+#1', '-of', 'csv=p=0', path]);
    firstVideoKey = stdout.trim().split('\n')[0]?.startsWith('K') === true;
  }
  assert.ok(firstVideoKey, `${row.fileName}: the first video packet is not a keyframe`);
  const vs = p.streams.find((x) => x.codec_type === 'video');
  const as = p.streams.find((x) => x.codec_type === 'audio');
  if (vs && as) {
    const gap = Math.abs(Number(vs.start_time ?? 0) - Number(as.start_time ?? 0));
    assert.ok(gap <= 0.1, `${row.fileName}: audio starts ${as.start_time} s, video ${vs.start_time} s: not aligned at the keyframe`);
  }
  assert.equal(await decodeErrors(path), '', `${row.fileName} decodes with no error`);
  assert.ok(row.end !== null && row.durationMs !== null, `${row.fileName}: its row has an end and a duration`);
  const wallSeconds = ((row.end ?? 0) - row.start) / 1000;
  assert.ok(Math.abs(seconds - wallSeconds) <= 1, `${row.fileName}: ${seconds} s of media for ${wallSeconds} s of wall time in its row`);
  assert.ok(Math.abs((row.durationMs ?? 0) / 1000 - seconds) <= 1, `${row.fileName}: durationMs ${row.durationMs} for a ${seconds} s file`);
  const now = Date.now();
  for (const m of row.fileName.match(/\d{12,}/g) ?? []) assert.ok(Math.abs(Number(m) - now) < DAY_MS, `${row.fileName}: ${m} is not within a day of the server clock`);
  assert.ok(Math.abs(row.start - now) < DAY_MS, `${row.fileName}: start ${row.start} is not within a day of now`);
  return { seconds, wallSeconds, firstVideoKey, tracks };
}
