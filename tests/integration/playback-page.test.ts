import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumHandle } from '../helpers/chromium';
import { makeClip } from '../helpers/media';
import { type Proc, start, waitFor } from '../helpers/proc';
import type { RecordingRow as Row } from '../helpers/recorded-file';
import { baseConf, rtmpPort, type Service, startService } from '../helpers/service';

// Issue 17: the page's timeline (GET /) in headless Chromium: a click on a recorded span plays it through
// /rest-api/playback in the page's player, in both formats.

let s: Service;
let chrome: ChromiumHandle;
let page: Page;
const procs: Proc[] = [];

before(async () => {
  const clip = await makeClip({ video: 'h264', audio: 'aac', seconds: 25, size: '320x180', fps: 25, gop: 25 });
  s = await startService({ conf: 'record_rotation=5\n' });
  const port = await rtmpPort(s);
  const pub = start('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', clip, '-t', '14', '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/tlcam`]);
  procs.push(pub);
  await pub.exited;
  await waitFor(
    'the files of tlcam to be finalized',
    async () => {
      const r = await s.json('/rest-api/recordings?stream=tlcam&limit=100');
      const rows = (r.body as { recordings: Row[] }).recordings;
      return rows.length >= 2 && rows.every((x) => x.state === 'complete');
    },
    40_000,
    200,
  );
  chrome = await launchChromium();
  const ctx = chrome.browser.contexts()[0] ?? (await chrome.browser.newContext());
  page = await ctx.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${s.base}/`);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await chrome?.close();
  await s?.stop();
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

for (const format of ['fmp4', 'mp4'] as const) {
  test(`a click on the timeline plays the stream from that point (${format}): readyState ≥ 3 and the time advances`, async () => {
    await page.selectOption('#tl-window', '600000');
    await page.selectOption('#tl-format', format);
    await page.evaluate('refreshTimeline()');
    const span = page.locator('#timeline .tl-row[data-stream="tlcam"] .span').first();
    await span.waitFor({ timeout: 15_000 });
    const box = await span.boundingBox();
    assert.ok(box && box.width >= 10, `the recorded span is drawn (${JSON.stringify(box)})`);
    const start = Number(await span.getAttribute('data-start'));
    const end = Number(await span.getAttribute('data-end'));
    assert.ok(end - start > 10_000, `one span of the ~14 s recorded (${end - start} ms)`);
    // a third of the way into the span. Through the locator, not page.mouse at the box measured above: the page
    // redraws its stream list every 2 s and the timeline every 10 s, and a layout shift between the measure and
    // the press sent the press elsewhere (the player never got a src); the locator measures when it presses and
    // checks the span is what receives it.
    await span.click({ position: { x: box.width / 3, y: box.height / 2 } });
    await page.waitForFunction('document.getElementById("tl-player").readyState >= 3', null, { timeout: 20_000 }).catch(async (err: unknown) => {
      // say what the player and the page saw, so a failure here can be told apart (no click, no answer, no data)
      const state = await page.evaluate(`(() => { const v = document.getElementById("tl-player"); return JSON.stringify({ src: v.currentSrc, from: v.dataset.from, readyState: v.readyState, networkState: v.networkState, error: v.error && v.error.message, buffered: v.buffered.length ? v.buffered.end(0) : 0, state: document.getElementById("tl-state").textContent }); })()`);
      throw new Error(`${String(err)}\nplayer: ${String(state)}`);
    });
    const from = Number(await page.evaluate('document.getElementById("tl-player").dataset.from'));
    assert.ok(from > start + 2000 && from < end - 5000, `the click maps to a time inside the span (${from - start} ms in)`);
    const src = String(await page.evaluate('document.getElementById("tl-player").currentSrc'));
    assert.match(src, new RegExp(`/rest-api/playback\\?stream=tlcam&from=${from}&to=\\d+&format=${format}$`));
    const t1 = Number(await page.evaluate('document.getElementById("tl-player").currentTime'));
    await page.waitForFunction(`document.getElementById("tl-player").currentTime > ${t1 + 1}`, null, { timeout: 15_000 });
    const err = await page.evaluate('document.getElementById("tl-player").error && document.getElementById("tl-player").error.message');
    assert.equal(err, null);
    // it plays on across the file joins to the end of what was recorded (from the keyframe at or before the click)
    const want = (end - from) / 1000;
    await page.waitForFunction(`document.getElementById("tl-player").currentTime >= ${want - 0.5}`, null, { timeout: 40_000 });
    const duration = Number(await page.evaluate('document.getElementById("tl-player").duration'));
    // the mp4 form announces its length up front; the streamed fmp4 one grows as Chromium reads it
    assert.ok(duration >= want - 0.2 && duration <= want + 1.2, `the player's length: ${duration} s for ${want} s`);
    console.log(`${format}: played from ${from - start} ms into the span; player duration ${duration}, readyState ≥ 3, time advancing`);
    assert.match(String(await page.textContent('#tl-state')), /playing tlcam/);
  });
}

test('with rest_auth_token set, the timeline plays through the page\'s REST token, and /rest-api/playback refuses a request without it', async () => {
  const token = 'tl-secret-token';
  const before = s.logs().filter((l) => l.msg === 'config applied').length;
  s.writeConf(baseConf(s.dir) + `record_rotation=5\nrest_auth_token=${token}\n`);
  await waitFor('the config to be applied', () => s.logs().filter((l) => l.msg === 'config applied').length > before, 10_000, 50);
  const bare = await fetch(`${s.base}/rest-api/playback?stream=tlcam&from=0&to=1000`);
  assert.equal(bare.status, 401);
  await bare.text();
  await page.fill('#restToken', token);
  await page.selectOption('#tl-window', '600000');
  await page.selectOption('#tl-format', 'mp4');
  await page.evaluate('refreshTimeline()');
  const span = page.locator('#timeline .tl-row[data-stream="tlcam"] .span').first();
  await span.waitFor({ timeout: 15_000 });
  // its middle, measured when pressed (a redraw may replace the element between a measure and a press)
  await span.click();
  await page.waitForFunction('document.getElementById("tl-player").readyState >= 3', null, { timeout: 20_000 });
  const src = String(await page.evaluate('document.getElementById("tl-player").currentSrc'));
  assert.match(src, /^blob:/, 'the answer was fetched with the token and played from memory');
  const t1 = Number(await page.evaluate('document.getElementById("tl-player").currentTime'));
  await page.waitForFunction(`document.getElementById("tl-player").currentTime > ${t1 + 1}`, null, { timeout: 15_000 });
});
