import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { start, waitFor, type Proc } from './proc';

/** Flags that let Debian's Chromium publish fake camera + microphone over WebRTC to a peer on 127.0.0.1 (NOTES.md). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-gpu',
  '--disable-background-networking',
  '--allow-loopback-in-peer-connection',
  '--no-first-run',
  '--no-default-browser-check',
  '--mute-audio',
];

/** A headless Chromium we started ourselves (its own process group), driven by playwright-core over CDP. */
export interface ChromiumHandle {
  readonly pid: number;
  readonly browser: Browser;
  readonly proc: Proc;
  /** SIGKILL the whole process group (browser, renderers, GPU/utility processes) */
  kill(): Promise<void>;
  /** close the CDP connection, stop the process group by PID, remove the profile; safe twice */
  close(): Promise<void>;
}

/** Launch /usr/bin/chromium with a fresh --user-data-dir and connect playwright-core to it. */
export async function launchChromium(executable = process.env.CHROMIUM ?? '/usr/bin/chromium'): Promise<ChromiumHandle> {
  const profile = mkdtempSync(join(tmpdir(), 'edgerec-chromium-'));
  const proc = start(executable, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], {
    detached: true,
  });
  const groupKill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, signal);
    } catch {
      /* already gone */
    }
  };
  let browser: Browser;
  try {
    const ws = await waitFor('Chromium DevTools endpoint', () => /DevTools listening on (ws:\/\/\S+)/.exec(proc.output())?.[1], 20_000, 100);
    browser = await chromium.connectOverCDP(ws, { timeout: 20_000 });
  } catch (err) {
    groupKill('SIGKILL');
    await proc.exited;
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`Chromium did not start: ${String(err)}\n${proc.output().slice(-2000)}`);
  }
  let closed = false;
  const kill = async () => {
    groupKill('SIGKILL');
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 5000))]);
  };
  return {
    pid: proc.pid,
    browser,
    proc,
    kill,
    async close() {
      if (closed) return;
      closed = true;
      await browser.close().catch(() => undefined);
      groupKill('SIGTERM');
      const gone = await Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!gone) await kill();
      else groupKill('SIGKILL'); // leftover children of the group
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
