import { statfs } from 'node:fs/promises';

/** Space on the filesystem holding a folder. */
export interface DiskUsage {
  readonly path: string;
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** free for unprivileged users, percent of total */
  readonly freePercent: number;
}

/** statfs of a folder (systeminformation's fsSize() filters by device, not by path). */
export async function diskUsage(path: string): Promise<DiskUsage> {
  const s = await statfs(path);
  const totalBytes = s.blocks * s.bsize;
  const freeBytes = s.bavail * s.bsize;
  return { path, totalBytes, freeBytes, freePercent: totalBytes > 0 ? Math.round((freeBytes / totalBytes) * 10000) / 100 : 0 };
}
