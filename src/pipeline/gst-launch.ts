import { execFile } from 'node:child_process';
import { AppError } from '../lib/errors';
import { gstLaunchArgv } from './launch';

/**
 * Run a short-lived `gst-launch-1.0 -q -e <description>` (remux at finalization, recovery): a separate process,
 * so its pipeline is freed when it exits (the binding never frees pipelines). Rejects with GStreamer's own error
 * (an AppError whose cause has code ENOSPC when the disk was full).
 */
export function runGstLaunch(description: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'gst-launch-1.0',
      ['-q', '-e', ...gstLaunchArgv(description)],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, env: { ...process.env, GST_DEBUG: '0' } },
      (err, stdout, stderr) => {
        const text = `${stderr}\n${stdout}`;
        // gst-launch exits 0 on some errors after -e; its ERROR lines are what count.
        const m = /ERROR: (.*)/.exec(text);
        if (err || m) {
          const reason = m?.[1] ?? (err && 'killed' in err && err.killed ? `timed out after ${timeoutMs} ms` : (err?.message ?? 'failed'));
          // the child's words are all there is: a full disk becomes ENOSPC here, so callers test a code, not text
          const full = /no space left/i.test(text) ? { cause: Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }) } : undefined;
          reject(new AppError('INTERNAL', `gst-launch-1.0 failed: ${reason.trim().slice(0, 400)}`, full));
          return;
        }
        resolve();
      },
    );
  });
}
