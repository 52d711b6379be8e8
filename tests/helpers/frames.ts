import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeErrors, probe } from './media';

const run = promisify(execFile);

/** md5 of every decoded video frame, in order (no frame rate conversion). */
export async function frameSums(path: string): Promise<string[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', path, '-map', '0:v:0', '-fps_mode', 'passthrough', '-f', 'framemd5', '-'], { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').pop()?.trim() ?? '');
}

/** Where `part` sits in `whole` as one contiguous run (-1 when it does not). */
export function runAt(whole: readonly string[], part: readonly string[]): number {
  if (part.length === 0) return -1;
  for (let k = whole.indexOf(part[0] ?? ''); k >= 0; k = whole.indexOf(part[0] ?? '', k + 1)) {
    if (part.every((x, i) => whole[k + i] === x)) return k;
  }
  return -1;
}

/** The first k at which `sums` is a run of `a` followed by a run of `b` (-1 when it is not two such runs). */
export function splitRuns(a: readonly string[], b: readonly string[], sums: readonly string[]): number {
  for (let k = 1; k < sums.length; k++) if (runAt(a, sums.slice(0, k)) >= 0 && runAt(b, sums.slice(k)) >= 0) return k;
  return -1;
}

/** What a playback answer over one publish of an H.264 + AAC source must be. */
export interface PlaybackRangeCheck {
  /** 'mp4' or 'fmp4' (for messages) */
  readonly format: string;
  /** the range asked, epoch ms */
  readonly from: number;
  readonly to: number;
  /** keyframe interval of the source, s */
  readonly gopS: number;
  readonly fps: number;
  /** frameSums of the source clip */
  readonly source: readonly string[];
  /** fragment boundaries inside the range (for messages) */
  readonly joins: number;
}

/**
 * The playback frame-run check: H.264 + AAC, from the keyframe at or before `from` (at most one GOP early, never
 * short of the range beyond a frame), no gap, a clean decode, and the decoded frames one contiguous run of the
 * source's (nothing lost or repeated at the joins), as many as the duration holds. Returns the run's offset.
 */
export async function assertPlaybackRun(path: string, headers: Headers, c: PlaybackRangeCheck): Promise<{ at: number; frames: number; durationS: number }> {
  const p = await probe(path);
  assert.deepEqual(p.streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort(), ['audio:aac', 'video:h264'], c.format);
  const dur = Number(p.format.duration);
  const want = (c.to - c.from) / 1000;
  assert.ok(dur >= want - 0.1 && dur <= want + c.gopS + 0.1, `${c.format}: duration ${dur} s for a ${want} s range`);
  const start = Number(headers.get('x-playback-start'));
  assert.ok(start <= c.from && start >= c.from - c.gopS * 1000 - 50, `${c.format}: starts at the keyframe before from (${start} vs ${c.from})`);
  assert.equal(headers.get('x-playback-gaps'), '', `${c.format}: no gap within one publish`);
  assert.equal(await decodeErrors(path), '', `${c.format} decodes cleanly`);
  const sums = await frameSums(path);
  const at = runAt(c.source, sums);
  assert.ok(at >= 0, `${c.format}: the ${sums.length} decoded frames are one contiguous run of the source's frames (nothing lost or repeated at ${c.joins} joins)`);
  assert.ok(Math.abs(sums.length - dur * c.fps) <= 2, `${c.format}: ${sums.length} frames for ${dur} s`);
  return { at, frames: sums.length, durationS: dur };
}
