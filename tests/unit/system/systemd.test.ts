import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SYSTEMD = join(__dirname, '..', '..', '..', '..', 'systemd');

/** `systemd-analyze verify` of the two units as shipped (or as `edit` changes the service): its complaints. */
async function verify(edit: (unit: string) => string = (u) => u): Promise<{ code: number; complaints: string[]; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerec-units-'));
  try {
    writeFileSync(join(dir, 'edgerec.service'), edit(readFileSync(join(SYSTEMD, 'edgerec.service'), 'utf8')));
    copyFileSync(join(SYSTEMD, 'var-lib-edgerec-tmp.mount'), join(dir, 'var-lib-edgerec-tmp.mount'));
    // systemd-analyze is required (Makefile APT_TEST: systemd): a missing binary fails here, it is not a pass.
    const r = await run('systemd-analyze', ['verify', '--man=no', join(dir, 'edgerec.service'), join(dir, 'var-lib-edgerec-tmp.mount')], {
      env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
    }).then(
      (x) => ({ code: 0, stderr: x.stderr }),
      (e: NodeJS.ErrnoException & { code?: number | string; stderr?: string }) => {
        if (e.code === 'ENOENT') throw new Error('systemd-analyze is not installed (apt-get install systemd; make test installs it)');
        return { code: Number(e.code), stderr: e.stderr ?? '' };
      },
    );
    const complaints = r.stderr
      .split('\n')
      .filter((l) => l.includes('edgerec') || l.includes('var-lib-edgerec'))
      // The install paths and the user do not exist on a build box; those are the only complaints allowed.
      .filter((l) => !/\/opt\/edgerec|User=|Group=|is not executable|No such file/.test(l));
    return { code: r.code, complaints, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('systemd units pass systemd-analyze verify', async () => {
  const r = await verify();
  assert.deepEqual(r.complaints, [], r.stderr);
  assert.equal(r.code, 0, r.stderr);
});

test('systemd-analyze verify really checks the unit: a broken copy is refused', async () => {
  const r = await verify((u) => u.replace('Type=notify', 'Type=notifyy').replace('Restart=on-failure', 'Restartt=on-failure'));
  assert.equal(r.complaints.length, 2, r.stderr);
  assert.match(r.complaints.join('\n'), /notifyy/);
  assert.match(r.complaints.join('\n'), /Restartt/);
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
