import { execFile } from 'node:child_process';
import { log } from '../lib/log';

/** True when systemd started us as Type=notify. */
export function underSystemd(): boolean {
  return Boolean(process.env.NOTIFY_SOCKET);
}

/** Send a state line to systemd (READY=1, WATCHDOG=1, STOPPING=1, RELOADING=1, STATUS=...); no-op outside systemd. */
export function sdNotify(...states: string[]): void {
  if (!underSystemd()) return;
  // systemd-notify is a child of the service: the unit sets NotifyAccess=all.
  execFile('systemd-notify', [...states], { timeout: 5000 }, (err) => {
    if (err) log.warn({ err, component: 'notify', states }, 'systemd-notify failed');
  });
}

/** Interval at which to ping the watchdog (half of WatchdogSec), or 0 when there is none. */
export function watchdogIntervalMs(): number {
  const usec = Number(process.env.WATCHDOG_USEC ?? 0);
  if (!usec || !underSystemd()) return 0;
  const pid = Number(process.env.WATCHDOG_PID ?? process.pid);
  if (pid !== process.pid) return 0;
  return Math.max(1000, Math.floor(usec / 1000 / 2));
}
