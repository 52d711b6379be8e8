import type { Stats } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import type { Conf } from '../conf/types';
import { errMessage } from '../lib/errors';
import { log as rootLog } from '../lib/log';
import { fillEndElements, numberedName } from '../conf/template';
import { holdsMp4Media } from '../mp4/scan';
import type { AudioCodec, Codecs, Container, VideoCodec } from '../pipeline/types';
import { allWalFiles, appendWriteAhead, walPrefixOf } from '../mp4/write-ahead';
import type { RecordingRow, RecordingsStore } from './recordings';

const log = rootLog.child({ component: 'recover' });

/** Temp files the recorder writes: rec-<recording uuid>-g<generation>-<fragment>.<ext> */
/**
 * Whether a tmp file holds any media: MP4 a `moof` or a non-empty `mdat` box, WebM a Cluster, TS a few packets.
 * Reads at most the first 4 MiB of a WebM; top-level MP4 boxes are walked by their sizes.
 */
export async function holdsMedia(path: string, container: Container, size: number): Promise<boolean> {
  if (size === 0) return false;
  if (container === 'ts') return size >= 188 * 8;
  const fh = await open(path, 'r');
  try {
    if (container === 'webm') {
      const buf = Buffer.alloc(Math.min(size, 4 * 1024 * 1024));
      await fh.read(buf, 0, buf.length, 0);
      return buf.includes(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));
    }
    return await holdsMp4Media(fh, size);
  } finally {
    await fh.close();
  }
}

/** A file to finish into record_dir: what the fragment finalizer needs of a recording's tmp file. */
export interface FileJob {
  readonly rowId: number;
  readonly tmpPath: string;
  readonly container: Container;
  readonly codecs: Codecs;
  readonly streamName: string;
  readonly startMs: number;
  readonly endMs: number;
  /** a crash came after this file was placed in record_dir but before the row said so: only finish the row */
  readonly placedPath?: string;
}

/** A recovered file to finish, as the fragment finalizer takes it (recorder/fragment-finalizer.ts FragmentJob). */
export interface RecoveredJob extends FileJob {
  readonly name: () => string;
  readonly finalState: 'recovered';
}

/**
 * Append to a recording's tmp file what its muxer still held at the crash, from the pipeline's write-ahead sidecar
 * (src/mp4/write-ahead.ts). Returns the sidecar's last write (epoch ms) when samples were appended, else null.
 * Any failure leaves the file as the muxer wrote it.
 */
async function continueFromWriteAhead(rowId: number, tmp: string): Promise<number | null> {
  const prefix = walPrefixOf(basename(tmp));
  if (!prefix) return null;
  try {
    const r = await appendWriteAhead(tmp, dirname(tmp), prefix);
    if (r.video + r.audio === 0) {
      if (r.notes.length && !r.notes.includes('no sidecar')) log.info({ id: rowId, file: basename(tmp), notes: r.notes }, 'nothing appended from the write-ahead');
      return null;
    }
    log.info({ id: rowId, file: basename(tmp), video: r.video, audio: r.audio, seconds: Number(r.seconds.toFixed(3)), notes: r.notes }, 'appended what the muxer held from the write-ahead');
    return r.lastWriteMs;
  } catch (err) {
    log.warn({ id: rowId, file: basename(tmp), reason: errMessage(err) }, 'write-ahead not applied; the file is recovered as the muxer left it');
    return null;
  }
}

/** Where recovery hands its files (the FragmentFinalizer). */
export interface RecoverySink {
  submit(job: RecoveredJob): void;
  /** resolves once every submitted job is done or waiting for space */
  settled(): Promise<void>;
}

const TMP_NAME = /^rec-[0-9a-f-]{36}-g\d+-\d{5}\.(mp4|webm|ts)$/;

/** Numbered variants the finalizer may have used for a name that was taken (`<base>(N).<ext>`). */
const PLACED_VARIANTS = 20;

/** The name the finalizer gives `dst` when taken n times (as in Finalizer.publish). */
function numbered(dst: string, n: number): string {
  return n === 0 ? dst : join(dirname(dst), numberedName(basename(dst), n));
}

/**
 * A `finalizing` row names its intended file before the remux (FragmentFinalizer). If a crash came after the
 * file was linked into record_dir but before the row said so, that file is there: the same inode as the tmp
 * file (a move), or written after the row went `finalizing` (a remux: linked only once complete and synced).
 */
async function placedBeforeCrash(row: RecordingRow, tmpStat: Stats | null, recordDir: string): Promise<string | null> {
  if (row.state !== 'finalizing' || row.path === row.tmpPath || !row.path.startsWith(recordDir + sep)) return null;
  let best: { path: string; mtimeMs: number } | null = null;
  for (let n = 0; n <= PLACED_VARIANTS; n++) {
    const p = numbered(row.path, n);
    const st = await stat(p).catch(() => null);
    if (!st || !st.isFile() || st.size === 0) continue;
    if (tmpStat && st.ino === tmpStat.ino && st.dev === tmpStat.dev) return p;
    if (st.mtimeMs >= row.updatedMs - 50 && (!best || st.mtimeMs > best.mtimeMs)) best = { path: p, mtimeMs: st.mtimeMs };
  }
  return best?.path ?? null;
}

/**
 * At start, before anything records: rows left in recording/finalizing and files left in record_tmp_dir (or the spill dir) by a
 * crash or power loss become playable files in record_dir (state `recovered`, end time from the file's last
 * write) or `failed` with the reason. Idempotent: a crash during recovery leaves rows to recover next time.
 */
export async function recoverAtStart(conf: Conf, store: RecordingsStore, finalizer: RecoverySink, spillDir: string): Promise<{ recovered: number; failed: number }> {
  let recovered = 0;
  let failed = 0;
  // Before any job writes its own: partial remux outputs a crash left (Finalizer: `.<name>.<pid>-<seq>.part`).
  const done = await readdir(conf.record_dir).catch(() => [] as string[]);
  for (const f of done) {
    if (!/^\..+\.\d+-\d+\.part(\.faststart)?$/.test(f)) continue;
    await unlink(join(conf.record_dir, f)).then(
      () => log.info({ file: f }, 'removed the partial output of an interrupted finalization'),
      (err: unknown) => log.warn({ file: f, reason: errMessage(err) }, 'cannot remove a partial finalization output'),
    );
  }
  const known = new Set<string>();
  for (const row of store.listUnfinished()) {
    const tmp = row.tmpPath;
    if (tmp) known.add(tmp);
    const st = tmp ? await stat(tmp).catch(() => null) : null;
    const placed = await placedBeforeCrash(row, st, conf.record_dir);
    if (placed) {
      log.info({ id: row.id, file: basename(placed) }, 'the file was placed before the crash; finishing its row');
      finalizer.submit({
        rowId: row.id,
        tmpPath: st ? (tmp ?? '') : '',
        container: row.container,
        codecs: { video: (row.videoCodec as VideoCodec | null) ?? null, audio: (row.audioCodec as AudioCodec | null) ?? null },
        streamName: row.streamName,
        name: () => basename(placed),
        startMs: row.startMs,
        endMs: row.endMs ?? Math.max(row.startMs, Math.round(st?.mtimeMs ?? row.startMs)),
        finalState: 'recovered',
        placedPath: placed,
      });
      recovered++;
      continue;
    }
    if (!tmp || !st || st.size === 0) {
      const reason = !tmp ? 'no temp file recorded for this row' : !st ? `temp file ${basename(tmp)} is gone (tmpfs lost at power-off?)` : 'temp file is empty';
      store.update(row.id, { state: 'failed', endMs: row.endMs ?? row.startMs, error: `recovery: ${reason}` });
      log.warn({ id: row.id, file: row.fileName, reason }, 'recording could not be recovered');
      failed++;
      continue;
    }
    // A row that reached `finalizing` knows its end and its intended name; others end at the file's last write.
    const intended = row.state === 'finalizing' && row.endMs !== null && row.path !== tmp && row.path.startsWith(conf.record_dir + sep);
    // a file still being recorded: append what its muxer held, from the write-ahead sidecar (its end: the sidecar's)
    const lastWriteMs = row.state === 'recording' && row.container === 'mp4' ? await continueFromWriteAhead(row.id, tmp) : null;
    const endMs = intended && row.endMs !== null ? row.endMs : Math.max(row.startMs, Math.round(lastWriteMs ?? st.mtimeMs));
    // RTMP names count time from the publish start; others use epoch ms: infer which from the name's start element.
    const clockStart = row.sourceProtocol === 'rtmp' ? 0 : row.startMs;
    const name = intended ? basename(row.path) : fillEndElements(row.fileName, row.container, row.startMs, endMs, clockStart + (endMs - row.startMs));
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
  const orphans: [dir: string, file: string][] = [];
  for (const dir of [conf.record_tmp_dir, spillDir]) for (const f of await readdir(dir).catch(() => [] as string[])) orphans.push([dir, f]);
  for (const [dir, f] of orphans) {
    const m = TMP_NAME.exec(f);
    const path = join(dir, f);
    // a failed row keeps its tmp file (for a look by hand); it is not an orphan to index again at every start
    if (!m || known.has(path) || store.findByTmpPath(path)) continue;
    const st = await stat(path).catch(() => null);
    if (!st) continue;
    const container = m[1] as Container;
    if (!(await holdsMedia(path, container, st.size))) {
      // a muxer opened before any media reached it (a camera failing at SETUP, on older versions): nothing to keep
      await unlink(path).then(
        () => log.info({ file: f, bytes: st.size }, 'removed a temp file with no row and no media'),
        (err: unknown) => log.warn({ file: f, reason: errMessage(err) }, 'could not remove a temp file with no media'),
      );
      continue;
    }
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
  // every sidecar has been used (or its pipeline ended normally): none belongs to a running pipeline yet
  for (const dir of [conf.record_tmp_dir, spillDir]) {
    for (const p of await allWalFiles(dir)) {
      await unlink(p).catch((err: unknown) => log.warn({ file: basename(p), reason: errMessage(err) }, 'cannot remove a write-ahead sidecar'));
    }
  }
  if (recovered || failed) log.info({ recovered, failed }, 'recovery after an unclean stop');
  // Not idle(): fragments waiting for space must not keep the service from starting.
  await finalizer.settled();
  return { recovered, failed };
}
