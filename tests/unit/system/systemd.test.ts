import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SYSTEMD = join(__dirname, '..', '..', '..', '..', 'systemd');

test('systemd units pass systemd-analyze verify', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-units-'));
  for (const u of ['edgerec.service', 'var-lib-edgerec-tmp.mount']) copyFileSync(join(SYSTEMD, u), join(dir, u));
  // verify checks ExecStart binaries exist: point it at files that do on any box, keep everything else as shipped.
  const { stderr } = await run('systemd-analyze', ['verify', '--man=no', join(dir, 'edgerec.service'), join(dir, 'var-lib-edgerec-tmp.mount')], {
    env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
  }).catch((e: { stderr?: string; message: string }) => ({ stderr: e.stderr ?? e.message }));
  const relevant = stderr
    .split('\n')
    .filter((l) => l.includes('edgerec') || l.includes('var-lib-edgerec'))
    // The install paths and the user do not exist on a build box; those are the only complaints allowed.
    .filter((l) => !/\/opt\/edgerec|User=|Group=|is not executable|No such file/.test(l));
  assert.deepEqual(relevant, [], stderr);
});

test('the service unit has what SPEC §6 asks for', () => {
  const unit = readFileSync(join(SYSTEMD, 'edgerec.service'), 'utf8');
  for (const line of ['User=edgerec', 'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID', 'Type=notify', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'WatchdogSec=']) {
    assert.ok(unit.includes(line), `edgerec.service lacks ${line}`);
  }
  const stop = Number(/TimeoutStopSec=(\d+)/.exec(unit)?.[1]);
  assert.ok(stop > 15, 'TimeoutStopSec longer than record_stop_timeout (15 s)');
  assert.match(unit, /ReadWritePaths=.*\/opt\/edgerec\/records.*\/var\/lib\/edgerec/);
  const mount = readFileSync(join(SYSTEMD, 'var-lib-edgerec-tmp.mount'), 'utf8');
  assert.match(mount, /Type=tmpfs/);
  assert.match(mount, /Where=\/var\/lib\/edgerec\/tmp/);
});
