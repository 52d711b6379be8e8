import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDb } from '../../src/store/db';
import { RecordingsStore } from '../../src/store/recordings';
import { launchChromium } from '../helpers/chromium';
import { waitFor } from '../helpers/proc';
import { baseConf, startService } from '../helpers/service';

// Issue 12 (real peers) item 6: the page's Recent files show a date with the time, and a failed row (here one
// named from a wrapped clock, start in 2611, as the old rtspsrc path made) is marked and not ahead of good files.

test('Recent files: date and time, failed rows marked and after the good files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-peers-page-'));
  mkdirSync(join(dir, 'records'), { recursive: true });
  writeFileSync(join(dir, 'edgerec.properties'), baseConf(dir));
  const db = openDb(join(dir, 'edgerec.db'));
  const store = new RecordingsStore(db);
  const hourAgo = Date.now() - 3_600_000;
  const common = { path: join(dir, 'records', 'x.mp4'), streamName: 'cam', mediaSessionId: 'm', sourceProtocol: 'rtsp' as const, container: 'mp4' as const, fragmentIndex: 1 };
  store.insert({ ...common, fileName: 'good.mp4', startMs: hourAgo, endMs: hourAgo + 10_000, durationMs: 10_000, state: 'complete' });
  store.insert({ ...common, fileName: 'wrapped-2611.mp4', startMs: 20_000_000_000_000, state: 'failed', error: 'no complete media box' });
  db.close();
  const s = await startService({ dir });
  t.after(() => s.stop());
  const chrome = await launchChromium();
  t.after(() => chrome.close());
  const ctx = chrome.browser.contexts()[0] ?? (await chrome.browser.newContext());
  const page = await ctx.newPage();
  await page.goto(`${s.base}/`);
  const rows = await waitFor(
    'the Recent files table',
    async () => {
      const r = await page.$$eval('#files tbody tr', (trs) => trs.map((tr) => ({ cls: tr.className, cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') })));
      return r.length >= 2 ? r : null;
    },
    15_000,
    200,
  );
  assert.equal(rows[0]?.cells[0], 'good.mp4', `good files first: ${JSON.stringify(rows)}`);
  const year = String(new Date(hourAgo).getFullYear());
  assert.ok(rows[0]?.cells[2]?.includes(year), `the start shows the date, not only the time: "${rows[0]?.cells[2]}"`);
  assert.equal(rows[1]?.cells[0], 'wrapped-2611.mp4');
  assert.equal(rows[1]?.cls, 'failed');
  assert.equal(rows[1]?.cells[5], 'failed', 'marked as failed');
});
