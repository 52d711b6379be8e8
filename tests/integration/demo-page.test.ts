import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumHandle } from '../helpers/chromium';
import { waitFor } from '../helpers/proc';
import { checkRecording, download, recordingOpened, type Expected } from '../helpers/recorded-file';
import { startService, type Service } from '../helpers/service';

// The installers' page (GET /) driven in headless Chromium with a fake camera and microphone: Start publishes
// over WHIP with ?record=true, Stop ends it and shows the links; the linked file is fetched and checked.

/** Where the page's screenshot goes (for a person to look at; not committed). */
const SCREENSHOT = process.env.EDGEREC_DEMO_SCREENSHOT ?? join(tmpdir(), 'edgerec-demo-page.png');
const ICE_MIN = 40000 + Math.floor(Math.random() * 50) * 200;
const dir = mkdtempSync(join(tmpdir(), 'edgerec-demo-'));
let s: Service;
let chrome: ChromiumHandle;
let page: Page;

before(async () => {
  s = await startService({ conf: `webrtc_ice_port_range=${ICE_MIN}-${ICE_MIN + 199}\n` });
  chrome = await launchChromium();
  const ctx = chrome.browser.contexts()[0] ?? (await chrome.browser.newContext());
  page = await ctx.newPage();
  await page.goto(`${s.base}/`);
});
after(async () => {
  await chrome?.close();
  await s?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

async function recordWithPage(name: string, codec: 'VP8' | 'H264', expected: Expected, screenshot: boolean): Promise<void> {
  await page.fill('#name', name);
  await page.selectOption('#codec', codec);
  await page.click('#start');
  await page.waitForFunction('!document.getElementById("stop").disabled', null, { timeout: 20_000 });
  const live = await waitFor(
    `${name} publishing (webrtc) in /rest-api/stream/find_all`,
    async () => {
      const r = await s.post('/rest-api/stream/find_all', {});
      const rows = r.status === 200 ? (r.body as { name: string; published: string; recording: boolean; videoCodec: string }[]) : [];
      return rows.find((x) => x.name === name && x.recording);
    },
    10_000,
    100,
  );
  assert.equal(live.published, 'webrtc');
  assert.equal(live.videoCodec, codec);
  await recordingOpened(s, name);
  await new Promise((r) => setTimeout(r, 5000)); // the length of the recording
  await page.click('#stop');
  await page.waitForSelector('#play-link', { timeout: 30_000 });
  assert.equal(await page.textContent('#state'), 'recorded');
  const play = await page.getAttribute('#play-link', 'href');
  const dl = await page.getAttribute('#download-link', 'href');
  assert.ok(play && dl && play === dl, `links ${play} ${dl}`);
  assert.equal(await page.getAttribute('#download-link', 'download'), '');
  // the page's own player loads the file and knows its length
  await page.waitForFunction('(document.querySelector("#result video")?.readyState ?? 0) >= 1', null, { timeout: 10_000 });
  const shown = Number(await page.evaluate('document.querySelector("#result video").duration'));
  assert.ok(shown >= expected.minSeconds && shown <= expected.maxSeconds, `the page's player says ${shown} s`);
  if (screenshot) {
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
  }
  const file = await download(s.base, dl, dir);
  const sum = await checkRecording(file, expected);
  console.log(`page ${codec} → ${dl}: ${JSON.stringify(sum)}`);
}

test('Start / 5 s / Stop with the default codec records VP8 + Opus WebM that plays', async () => {
  await recordWithPage('demo-vp8', 'VP8', { format: /webm|matroska/, video: 'vp8', audio: 'opus', minSeconds: 4, maxSeconds: 6 }, true);
});

test('with "H.264 → MP4" selected it records H.264 + AAC MP4 that plays', async () => {
  await recordWithPage('demo-h264', 'H264', { format: /mp4/, video: 'h264', audio: 'aac', minSeconds: 4, maxSeconds: 6 }, false);
});
