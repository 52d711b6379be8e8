import type { MovieTrack } from '../mp4/movie-track';
import type { SourceTrack } from '../mp4/source';

/** One track of one recorded file, as the timeline needs it. */
export type TimelineTrack = SourceTrack;

/** One recorded file in range, oldest first. */
export interface TimelineFile {
  /** wall time (epoch ms) of the file's presentation time 0 */
  readonly startMs: number;
  /** epoch ms; null while it is being recorded */
  readonly endMs: number | null;
  readonly mediaSessionId: string;
  readonly tracks: readonly TimelineTrack[];
}

/** A stretch of [from, to) where nothing was recorded. */
export interface Gap {
  readonly fromMs: number;
  readonly toMs: number;
}

/** What one playback answer holds. */
export interface Timeline {
  /** wall time of the answer's time 0: the keyframe at or before `from` */
  readonly t0Ms: number;
  /** wall time where the answer ends */
  readonly endMs: number;
  readonly tracks: MovieTrack[];
  /** gaps between the files used (and before the first / after the last, within the range) */
  readonly gaps: Gap[];
}

/** Files of one session closer than this (ms) continue each other: decode times run on without a jump. */
export const CONTINUOUS_MS = 5;
/** Audio further than this (ms) from its wall-clock place at a join is placed by the clock. */
export const MAX_DRIFT_MS = 500;
/** Gaps shorter than this (ms) are not reported. */
export const GAP_REPORT_MS = 250;

/** Presentation time of sample i in ms of wall time. */
function wallPts(f: TimelineFile, t: TimelineTrack, i: number): number {
  const { table, timing } = t;
  return f.startMs + (((table.dts[i] ?? 0) + (table.cts[i] ?? 0) - timing.mediaTime) / timing.timescale + timing.emptyS) * 1000;
}

function isSync(t: TimelineTrack, i: number): boolean {
  return !t.table.sync || t.table.sync[i] === 1;
}

function trackOf(f: TimelineFile, handler: string): TimelineTrack | undefined {
  return f.tracks.find((t) => t.handler === handler && t.table.count > 0);
}

/** The keyframe that starts the answer: the latest at or before fromMs over all files, else the first one after it. */
function startKeyframe(files: readonly TimelineFile[], fromMs: number): { file: number; index: number; wall: number } | null {
  let best: { file: number; index: number; wall: number } | null = null;
  let first: { file: number; index: number; wall: number } | null = null;
  for (const [k, f] of files.entries()) {
    if (f.startMs > fromMs + 0.5 && (best || first)) break;
    const v = trackOf(f, 'vide');
    if (!v) continue;
    for (let i = 0; i < v.table.count; i++) {
      if (!isSync(v, i)) continue;
      const wall = wallPts(f, v, i);
      first ??= { file: k, index: i, wall };
      if (wall > fromMs + 0.5) break;
      if (!best || wall >= best.wall) best = { file: k, index: i, wall };
    }
  }
  return best ?? first;
}

/**
 * Lay the samples of `files` for [fromMs, toMs) on one timeline, without re-encoding: video from the keyframe at
 * or before fromMs, every track up to the last sample shown before toMs. Files of one session that follow each
 * other continue the decode times; after a gap (camera down, another session) a track resumes at its wall-clock
 * place and its last sample before the gap lasts until then, so the answer's time t is wall time t0Ms + t.
 */
export function buildTimeline(files: readonly TimelineFile[], fromMs: number, toMs: number): Timeline | null {
  const kf = startKeyframe(files, fromMs);
  const handlers: string[] = [];
  for (const f of files) for (const t of f.tracks) if ((t.handler === 'vide' || t.handler === 'soun') && t.table.count > 0 && !handlers.includes(t.handler)) handlers.push(t.handler);
  handlers.sort((a, b) => (a === 'vide' ? -1 : b === 'vide' ? 1 : 0));
  let t0Ms = fromMs;
  const firstFile = kf ? kf.file : 0;
  if (kf) t0Ms = kf.wall;
  else {
    // audio only: start at the first sample still playing at fromMs
    let best = Infinity;
    for (const f of files) {
      const a = trackOf(f, 'soun');
      if (!a) continue;
      for (let i = 0; i < a.table.count; i++) {
        const w = wallPts(f, a, i);
        if (w + ((a.table.dur[i] ?? 0) / a.timing.timescale) * 1000 > fromMs) {
          best = Math.min(best, w);
          break;
        }
      }
      if (best < Infinity) break;
    }
    if (best === Infinity) return null;
    t0Ms = best;
  }

  const tracks: MovieTrack[] = [];
  for (const handler of handlers) {
    const out = layTrack(files, handler, firstFile, kf && handler === 'vide' ? kf.index : -1, t0Ms, toMs);
    if (out && out.file.length > 0) tracks.push(out);
  }
  if (tracks.length === 0) return null;
  let endMs = t0Ms;
  for (const t of tracks) {
    const n = t.dts.length - 1;
    endMs = Math.max(endMs, t0Ms + (((t.dts[n] ?? 0) + (t.dur[n] ?? 0) - t.cts0) / t.timescale) * 1000);
  }
  return { t0Ms, endMs, tracks, gaps: gapsOf(files.slice(firstFile), Math.max(fromMs, t0Ms), toMs) };
}

/** Gaps between files (ms), and before the first / after the last within [fromMs, toMs). */
export function gapsOf(files: readonly Pick<TimelineFile, 'startMs' | 'endMs'>[], fromMs: number, toMs: number): Gap[] {
  const gaps: Gap[] = [];
  let reached = fromMs;
  for (const f of files) {
    if (f.startMs - reached >= GAP_REPORT_MS && f.startMs > fromMs) gaps.push({ fromMs: Math.round(reached), toMs: Math.round(Math.min(f.startMs, toMs)) });
    reached = Math.max(reached, f.endMs ?? Infinity);
    if (reached >= toMs) break;
  }
  if (reached < toMs && toMs - reached >= GAP_REPORT_MS) gaps.push({ fromMs: Math.round(reached), toMs: Math.round(toMs) });
  return gaps.filter((g) => g.toMs > g.fromMs);
}

function layTrack(files: readonly TimelineFile[], handler: string, firstFile: number, firstIndex: number, t0Ms: number, toMs: number): MovieTrack | null {
  let out: MovieTrack | null = null;
  let nextT = 0;
  let prev: TimelineFile | null = null;
  for (let k = firstFile; k < files.length; k++) {
    const f = files[k];
    if (!f) continue;
    const t = trackOf(f, handler);
    if (!t) {
      prev = null;
      continue;
    }
    out ??= {
      handler, timescale: t.timing.timescale, template: t.trak, entries: [], file: [], src: [], size: [], dts: [], dur: [], cts: [], sync: [], sdi: [], cts0: 0,
    };
    const o = out;
    const ratio = o.timescale / t.timing.timescale;
    // where this track stands on the wall clock now (ms)
    const wallNext = o.dts.length === 0 ? t0Ms : t0Ms + ((nextT - o.cts0) / o.timescale) * 1000;
    const video = handler === 'vide';
    let continuing = prev !== null && o.dts.length > 0 && prev.mediaSessionId === f.mediaSessionId && prev.endMs !== null && Math.abs(f.startMs - prev.endMs) <= CONTINUOUS_MS;
    // audio that drifted from the wall clock by more than MAX_DRIFT_MS (files that are not one continuous stream)
    // is placed by the clock again: late audio jumps forward, early audio drops what overlaps
    if (continuing && !video && Math.abs(wallPts(f, t, 0) - wallNext) > MAX_DRIFT_MS) continuing = false;
    let a = -1;
    if (k === firstFile && video && firstIndex >= 0) a = firstIndex;
    else if (continuing) a = 0;
    else {
      for (let i = 0; i < t.table.count; i++) {
        if (video && !isSync(t, i)) continue;
        const halfDur = ((t.table.dur[i] ?? 0) / t.timing.timescale) * 500;
        if (wallPts(f, t, i) + halfDur >= wallNext) {
          a = i;
          break;
        }
      }
    }
    // last sample (decode order) shown before toMs: samples after it are not needed to decode it
    let b = 0;
    for (let i = Math.max(a, 0); i < t.table.count; i++) if (wallPts(f, t, i) < toMs) b = i + 1;
    prev = f;
    if (a < 0 || b <= a) continue;

    const entryMap = t.entries.map((e) => {
      const at = o.entries.findIndex((x) => x.equals(e));
      if (at >= 0) return at + 1;
      o.entries.push(e);
      return o.entries.length;
    });
    const firstCts = Math.round((t.table.cts[a] ?? 0) * ratio);
    let base: number;
    if (o.dts.length === 0) {
      o.cts0 = video ? firstCts : 0;
      base = video ? 0 : Math.max(0, Math.round(((wallPts(f, t, a) - t0Ms) / 1000) * o.timescale));
    } else if (continuing) base = nextT;
    else {
      const ideal = Math.round(((wallPts(f, t, a) - t0Ms) / 1000) * o.timescale) - firstCts + o.cts0;
      base = Math.max(nextT, ideal);
      // the last sample before the gap lasts until this file starts (a held frame, as a demuxer would show it)
      const last = o.dur.length - 1;
      if (last >= 0 && base > nextT) o.dur[last] = (o.dur[last] ?? 0) + base - nextT;
    }
    const d0 = t.table.dts[a] ?? 0;
    let prevEnd = base;
    for (let i = a; i < b; i++) {
      // muxers leave the last sample of a file 0 long: it lasts as long as the one before it
      const srcDur = (t.table.dur[i] ?? 0) || (t.table.dur[i - 1] ?? 0) || 1;
      const dts = Math.max(prevEnd, base + Math.round(((t.table.dts[i] ?? 0) - d0) * ratio));
      const end = Math.max(dts + 1, base + Math.round(((t.table.dts[i] ?? 0) + srcDur - d0) * ratio));
      prevEnd = end;
      o.file.push(k);
      o.src.push(t.table.offset[i] ?? 0);
      o.size.push(t.table.size[i] ?? 0);
      o.dts.push(dts);
      o.dur.push(Math.max(0, end - dts));
      o.cts.push(Math.round((t.table.cts[i] ?? 0) * ratio));
      o.sync.push(isSync(t, i));
      o.sdi.push(entryMap[(t.table.sdi[i] ?? 1) - 1] ?? 1);
      nextT = end;
    }
  }
  return out;
}
