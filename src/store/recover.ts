import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import type { AudioCodec, Codecs, Container, VideoCodec } from '../pipeline/types';
import type { FragmentFinalizer } from '../recorder/fragment-finalizer';
import type { RecordingsStore } from './recordings';

const log = rootLog.child({ component: 'recover' });

/** Temp files the recorder writes: rec-<recording uuid>-g<generation>-<fragment>.<ext> */
const TMP_NAME = /^rec-[0-9a-f-]{36}-g\d+-\d{5}\.(mp4|webm|ts)$/;

/** Fill the end-time elements a running recording's name still holds (not possible once the name is encoded). */
export function fillEndElements(name: string, startMs: number, endMs: number, streamClockStart: number): string {
  return name
    .replace(/\{endTimeMillis\}/g, String(endMs).slice(0, 20))
    .replace(/\{endTime\}/g, String(streamClockStart + (endMs - startMs)).slice(0, 20))
    .replace(/\{duration\}/g, String(endMs - startMs));
}

/**
 * At start, before anything records: rows left in recording/finalizing and files left in record_tmp_dir by a
 * crash or power loss become playable files in record_dir (state `recovered`, end time from the file's last
 * write) or `failed` with the reason. Idempotent: a crash during recovery leaves rows to recover next time.
 */
export async function recoverAtStart(conf: Conf, store: RecordingsStore, finalizer: FragmentFinalizer): Promise<{ recovered: number; failed: number }> {
  let recovered = 0;
  let failed = 0;
  const known = new Set<string>();
  for (const row of store.listUnfinished()) {
    const tmp = row.tmpPath;
    if (tmp) known.add(tmp);
    const st = tmp ? await stat(tmp).catch(() => null) : null;
    if (!tmp || !st || st.size === 0) {
      const reason = !tmp ? 'no temp file recorded for this row' : !st ? `temp file ${basename(tmp)} is gone (tmpfs lost at power-off?)` : 'temp file is empty';
      store.update(row.id, { state: 'failed', endMs: row.endMs ?? row.startMs, error: `recovery: ${reason}` });
      log.warn({ id: row.id, file: row.fileName, reason }, 'recording could not be recovered');
      failed++;
      continue;
    }
    const endMs = Math.max(row.startMs, Math.round(st.mtimeMs));
    // RTMP names count time from the publish start; others use epoch ms: infer which from the name's start element.
    const clockStart = row.sourceProtocol === 'rtmp' ? 0 : row.startMs;
    const name = fillEndElements(row.fileName, row.startMs, endMs, clockStart);
    finalizer.submit({
      rowId: row.id,
      tmpPath: tmp,
      container: row.container,
      codecs: { video: (row.videoCodec as VideoCodec | null) ?? null, audio: (row.audioCodec as AudioCodec | null) ?? null },
      streamName: row.streamName,
      name: () => name,
      startMs: row.startMs,
      endMs,
      finalState: 'recovered',
    });
    recovered++;
  }
  // Files with no row (a crash between the muxer opening the file and the row insert): keep them too.
  const entries = await readdir(conf.record_tmp_dir).catch(() => [] as string[]);
  for (const f of entries) {
    const m = TMP_NAME.exec(f);
    const path = join(conf.record_tmp_dir, f);
    if (!m || known.has(path)) continue;
    const st = await stat(path).catch(() => null);
    if (!st || st.size === 0) continue;
    const container = m[1] as Container;
    const codecs: Codecs = container === 'webm' ? { video: 'VP8', audio: 'OPUS' } : { video: 'H264', audio: 'AAC' };
    const startMs = Math.round(st.birthtimeMs || st.ctimeMs);
    const endMs = Math.max(startMs, Math.round(st.mtimeMs));
    try {
      const rowId = store.insert({
        fileName: `recovered-${f}`,
        path,
        tmpPath: path,
        streamName: 'unknown',
        mediaSessionId: 'unknown',
        sourceProtocol: 'rtsp',
        startMs,
        container,
        fragmentIndex: 1,
        state: 'finalizing',
        audioCodec: null,
        videoCodec: null,
      });
      finalizer.submit({ rowId, tmpPath: path, container, codecs, streamName: 'unknown', name: () => `recovered-${f}`, startMs, endMs, finalState: 'recovered' });
      recovered++;
    } catch (err) {
      log.error({ file: f, reason: errMessage(err) }, 'orphan temp file could not be indexed');
    }
  }
  if (recovered || failed) log.info({ recovered, failed }, 'recovery after an unclean stop');
  await finalizer.idle();
  return { recovered, failed };
}
