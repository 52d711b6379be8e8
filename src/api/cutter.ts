import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { log } from '../lib/log';
import { cutMp4, type CutResult } from './mp4-cut';

/** Options of createCutter. */
export interface CutterOptions {
  /** folder for cuts (mp4_cutter_dir); empty = next to the source */
  cutDir: () => string;
  /** the cutting function (tests count calls); default cutMp4 */
  cut?: (src: string, dst: string, startS: number | null, endS: number | null) => Promise<CutResult>;
}

/** The cut's file name: `<base>-s<S>-e<E>.mp4`, absent bounds left out. */
export function cutName(srcPath: string, startS: number | null, endS: number | null): string {
  const base = basename(srcPath).replace(/\.mp4$/i, '');
  return `${base}${startS !== null ? `-s${String(startS)}` : ''}${endS !== null ? `-e${String(endS)}` : ''}.mp4`;
}

/**
 * A Cutter for registerFileRoutes: returns the path of the cut, reusing one that is newer than the source and
 * building each one once even when several requests ask for it at the same time.
 */
export function createCutter(opts: CutterOptions): (srcPath: string, startS: number | null, endS: number | null) => Promise<string> {
  const inFlight = new Map<string, Promise<string>>();
  const cut = opts.cut ?? cutMp4;
  return (srcPath, startS, endS) => {
    const dir = opts.cutDir() || dirname(srcPath);
    const out = join(dir, cutName(srcPath, startS, endS));
    const running = inFlight.get(out);
    if (running) return running;
    const job = (async () => {
      const [srcSt, outSt] = await Promise.all([stat(srcPath), stat(out).catch(() => null)]);
      if (outSt && outSt.isFile() && outSt.mtimeMs > srcSt.mtimeMs) return out;
      await mkdir(dir, { recursive: true });
      const t = Date.now();
      const r = await cut(srcPath, out, startS, endS);
      log.info({ component: 'cutter', file: basename(out), startS: r.startS, endS: r.endS, bytes: r.bytes, ms: Date.now() - t }, 'mp4 cut made');
      return out;
    })().finally(() => inFlight.delete(out));
    inFlight.set(out, job);
    return job;
  };
}
