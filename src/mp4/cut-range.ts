import type { SampleTable } from './sample-table';

/** Where a track's media sits on the movie timeline: from its edit list (first empty edits, first media edit). */
export interface TrackTiming {
  /** media timescale (units per second) */
  timescale: number;
  /** media time shown at the start of the media edit (media units) */
  mediaTime: number;
  /** empty edits before the media edit (seconds) */
  emptyS: number;
}

/** Samples [a, b) of a track, in decode order. */
export interface SampleRange {
  a: number;
  b: number;
}

/** The edit list of a cut track: an optional empty edit, then media from mediaTime (media units, relative to the first kept sample). */
export interface CutEdit {
  emptyS: number;
  mediaTime: number;
  segmentS: number;
}

/** Presentation time (source movie timeline, seconds) of sample i. */
export function samplePts(t: SampleTable, tm: TrackTiming, i: number): number {
  return ((t.dts[i] ?? 0) + (t.cts[i] ?? 0) - tm.mediaTime) / tm.timescale + tm.emptyS;
}

/**
 * Video samples for [startS, endS): from the sync sample at or before startS (the first sample when none is)
 * to the last sample in decode order shown before endS. A decode-order range keeps every reference it needs.
 */
export function selectVideo(t: SampleTable, tm: TrackTiming, startS: number, endS: number | null): SampleRange {
  const eps = 0.5 / tm.timescale;
  let a = 0;
  for (let i = 0; i < t.count; i++) {
    if (t.sync && !t.sync[i]) continue;
    if (samplePts(t, tm, i) > startS + eps) break;
    a = i;
  }
  let b = t.count;
  if (endS !== null) {
    b = a + 1;
    for (let i = t.count - 1; i > a; i--) {
      if (samplePts(t, tm, i) < endS - eps) {
        b = i + 1;
        break;
      }
    }
  }
  return { a, b };
}

/** Samples of another track shown in [t0S, tEndS); `preroll` keeps one more sample before (AAC decoder warm-up, hidden by the edit). */
export function selectOverlap(t: SampleTable, tm: TrackTiming, t0S: number, tEndS: number, preroll: boolean): SampleRange {
  const eps = 0.5 / tm.timescale;
  let a = t.count;
  for (let i = 0; i < t.count; i++) {
    if (samplePts(t, tm, i) + (t.dur[i] ?? 0) / tm.timescale > t0S + eps) {
      a = i;
      break;
    }
  }
  if (preroll && a > 0 && a < t.count) a--;
  let b = a;
  while (b < t.count && samplePts(t, tm, b) < tEndS - eps) b++;
  return { a, b };
}

/**
 * The edit that shows samples [a, b) from source time t0S on the cut's timeline (0 = t0S), ending no later than
 * tEndS (null = wherever the media ends). Null when nothing of the range would be shown.
 */
export function cutEdit(t: SampleTable, tm: TrackTiming, r: SampleRange, t0S: number, tEndS: number | null): CutEdit | null {
  if (r.b <= r.a) return null;
  const base = t.dts[r.a] ?? 0;
  let minPts = Infinity;
  let maxEnd = -Infinity;
  for (let i = r.a; i < r.b; i++) {
    const pts = (t.dts[i] ?? 0) - base + (t.cts[i] ?? 0);
    minPts = Math.min(minPts, pts);
    maxEnd = Math.max(maxEnd, pts + (t.dur[i] ?? 0));
  }
  // media time (relative to the first kept sample) that falls on t0S
  const m0 = (t0S - tm.emptyS) * tm.timescale + tm.mediaTime - base;
  let emptyS = 0;
  let mediaTime = Math.round(m0);
  if (mediaTime < minPts) {
    emptyS = (minPts - m0) / tm.timescale;
    mediaTime = minPts;
  }
  let segmentS = (maxEnd - mediaTime) / tm.timescale;
  if (tEndS !== null) segmentS = Math.min(segmentS, tEndS - t0S - emptyS);
  if (segmentS <= 0) return null;
  return { emptyS, mediaTime, segmentS };
}
