import { AppError } from '../lib/errors';
import { GAP_REPORT_MS } from './timeline';

/** Latest time accepted (year 9999), epoch ms. */
const MAX_MS = 253_402_300_799_999;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** A time parameter: epoch ms (digits) or RFC 3339 with a zone (2026-12-03T14:02:10.5Z, ...+01:00). */
export function parseTime(name: string, raw: string | undefined): number {
  if (raw === undefined || raw === '') throw new AppError('BAD_REQUEST', `${name}: required; epoch ms (e.g. 1795750000000) or RFC 3339 (e.g. 2026-12-03T14:02:10Z)`);
  const shown = JSON.stringify(raw.slice(0, 64));
  let ms = NaN;
  if (/^\d{1,16}$/.test(raw)) ms = Number(raw);
  else {
    const m = RFC3339.exec(raw);
    // Date.parse alone accepts too much ("1", "March 7"); the pattern first, then check the fields survived
    if (m && Number(m[2]) >= 1 && Number(m[2]) <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= 31 && Number(m[4]) <= 23 && Number(m[5]) <= 59 && Number(m[6]) <= 59) {
      const frac = m[7] ? m[7].slice(0, 4).padEnd(4, '0') : '';
      ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${frac}${m[8]?.toUpperCase()}`);
      const day = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
      if (day.getUTCDate() !== Number(m[3])) ms = NaN;
    }
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MS) {
    throw new AppError('BAD_REQUEST', `${name}: ${shown} is not a time; use epoch ms (e.g. 1795750000000) or RFC 3339 (e.g. 2026-12-03T14:02:10Z)`);
  }
  return Math.floor(ms);
}

/** [from, to) checked: to after from, at most maxS seconds long. */
export function checkRange(fromMs: number, toMs: number, maxS: number, limitName: string): void {
  if (toMs <= fromMs) throw new AppError('BAD_REQUEST', `to (${toMs}) must be after from (${fromMs})`);
  if (toMs - fromMs > maxS * 1000) {
    throw new AppError('BAD_REQUEST', `the range is ${((toMs - fromMs) / 1000).toFixed(3)} s long; at most ${maxS} s is allowed (${limitName}); ask for several shorter ranges`);
  }
}

/** A file as the spans see it. */
export interface SpanRow {
  readonly startMs: number;
  /** null while recording */
  readonly endMs: number | null;
  readonly state: string;
  readonly mediaSessionId: string;
}

/** A recorded stretch: files that follow each other without a gap. */
export interface Span {
  readonly startMs: number;
  readonly endMs: number;
  /** the last file of it is being recorded */
  readonly recording: boolean;
  /** media sessions in it (a publisher reconnecting within GAP_REPORT_MS stays one span) */
  readonly mediaSessionIds: string[];
  readonly files: number;
}

/**
 * The recorded spans of `rows` (failed files left out) clipped to [fromMs, toMs), and the gaps between them.
 * A running file (end null) reaches `nowMs`.
 */
export function spansOf(rows: readonly SpanRow[], fromMs: number, toMs: number, nowMs: number): { spans: Span[]; gaps: Array<{ startMs: number; endMs: number }> } {
  const usable = rows.filter((r) => r.state !== 'failed').sort((a, b) => a.startMs - b.startMs);
  const spans: Array<{ startMs: number; endMs: number; recording: boolean; mediaSessionIds: string[]; files: number }> = [];
  for (const r of usable) {
    const end = r.endMs ?? Math.max(r.startMs, nowMs);
    const last = spans[spans.length - 1];
    if (last && r.startMs - last.endMs < GAP_REPORT_MS) {
      if (end >= last.endMs) {
        last.endMs = end;
        last.recording = r.endMs === null;
      }
      if (!last.mediaSessionIds.includes(r.mediaSessionId)) last.mediaSessionIds.push(r.mediaSessionId);
      last.files++;
    } else spans.push({ startMs: r.startMs, endMs: end, recording: r.endMs === null, mediaSessionIds: [r.mediaSessionId], files: 1 });
  }
  const clipped = spans
    .map((s) => ({ ...s, startMs: Math.max(s.startMs, fromMs), endMs: Math.min(s.endMs, toMs) }))
    .filter((s) => s.endMs > s.startMs);
  const gaps: Array<{ startMs: number; endMs: number }> = [];
  let at = fromMs;
  const until = Math.min(toMs, Math.max(nowMs, fromMs));
  for (const s of clipped) {
    if (s.startMs - at >= GAP_REPORT_MS) gaps.push({ startMs: at, endMs: s.startMs });
    at = Math.max(at, s.endMs);
  }
  if (until - at >= GAP_REPORT_MS) gaps.push({ startMs: at, endMs: until });
  return { spans: clipped, gaps };
}
