/**
 * Runs the test files in two lanes, each one file at a time, each file in its own `node --test` process:
 * - the serial lane: every integration file not listed in BESIDE (they start real peers, encode, time things);
 * - the beside lane, alongside it: the unit files and the integration files listed in BESIDE (they mostly wait:
 *   a camera refusing SETUP for a minute, a store down for 20 s), so they cost the serial lane little CPU;
 * then the files in ALONE, one at a time with nothing else (they time a latency, or encode live test sources in real time).
 * Each file's output is printed whole when it ends, then a table of files by duration and CPU time. Exit code 1
 * when any file failed. `make test` runs every built test file with it.
 *
 * Usage: node dist/tests/run.js [file.test.js ...]   (no argument: every dist/tests/{unit,integration} file)
 *        EDGEREC_TEST_JOBS=1 runs every file in one lane (as before), for comparison.
 *
 * A new integration file needs nothing here: it runs in the serial lane. List it in BESIDE only when its CPU time
 * is a small part of its duration (the table shows both) and it asserts no latency or rate that another process
 * could disturb. A new unit file runs beside; one that is heavy (encodes, times things) goes in SERIAL_UNIT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve as resolvePath } from 'node:path';

/**
 * Integration files that mostly wait and assert no latency: they run beside the serial lane. Measured with both
 * lanes busy on a loaded 2-core box (CPU seconds of the file's process tree / wall seconds); the whole suite used
 * 402 s of CPU in 1623 s of files.
 */
const BESIDE: Record<string, string> = {
  'integration/archive-faults': 'a store down for 20 s, throttled uploads (CPU 43 / 205 s)',
  'integration/archive': 'real-time publishers, uploads (CPU 22 / 96 s)',
  'integration/disk-full': 'a filling tmpfs (CPU 4 / 17 s)',
  'integration/peers-setup-461': 'a camera refusing SETUP for a minute (CPU 2 / 63 s)',
  'integration/playback': 'real-time publishers (CPU 14 / 82 s)',
  'integration/playback-archive': 'real-time publishers, uploads (CPU 16 / 56 s)',
  'integration/rest-api': 'a real-time publisher (CPU 3 / 18 s)',
  'integration/retention': 'waits for retention passes (CPU 2 / 35 s)',
  'integration/swift-helper': 'starts and kills a Swift store (CPU 8 / 19 s)',
};

/**
 * Files that assert a latency or a rate another process on the box could disturb: they run last, alone, once both
 * lanes are done (a few seconds each). Not a cure for a slow test: each says what it times.
 */
const ALONE: Record<string, string> = {
  'integration/hostile-config': 'health answers in < 50 ms while a 50 MB config is refused',
  'integration/rtmp-limits': 'a publisher records within 2 s through a 500-connection flood',
  'integration/launch-gst':
    'live test sources encoded in real time (x264, x265, vp8enc): a starved encoder shifts a track against the running time (a WebM 0.55 s longer than its fragment span, once, beside archive files)',
};

/** Unit files that must run in the serial lane (none so far). */
const SERIAL_UNIT: Record<string, string> = {};

/**
 * Time allowed to one file (node 20's `--test --test-timeout` bounds the whole file, not each test, and running a
 * file without --test ignores it). The slowest file takes ~150 s alone on 2 cores.
 */
const FILE_TIMEOUT_MS = Number(process.env.EDGEREC_TEST_FILE_TIMEOUT_S ?? 600) * 1000;
const LANES = process.env.EDGEREC_TEST_JOBS === '1' ? 1 : 2;
const ROOT = join(__dirname, '..');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

interface Outcome {
  file: string;
  /** the file's whole output */
  text: string;
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** node:test's own summary of the file: tests, pass, fail, skipped ... */
  counts: Record<string, number>;
  /** CPU seconds (user + system) of the file's process tree, when /usr/bin/time is there */
  cpuS: number | null;
}

/** `dist/tests/unit/x/y.test.js` → `unit/x/y` (the key used in BESIDE and SERIAL_UNIT). */
function keyOf(file: string): string {
  return relative(join(ROOT, 'tests'), file).replace(/\.test\.js$/, '');
}

function findTests(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const running = new Map<ChildProcess, string>();

function runFile(file: string): Promise<Outcome> {
  const t0 = Date.now();
  // detached: the file's process group can be killed whole if it outlives FILE_TIMEOUT_MS.
  const argv = [process.execPath, '--test', '--test-reporter=spec', `--test-timeout=${FILE_TIMEOUT_MS}`, file];
  const cpuDir = TIME ? mkdtempSync(join(tmpdir(), 'edgerec-run-')) : null;
  const cpuFile = cpuDir ? join(cpuDir, 'cpu') : '';
  const [cmd = '', ...args] = TIME ? [TIME, '-f', '%U %S', '-o', cpuFile, ...argv] : argv;
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.set(child, file);
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => chunks.push(b));
  child.stderr?.on('data', (b: Buffer) => chunks.push(b));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, 'SIGKILL');
  }, FILE_TIMEOUT_MS + 30_000); // a backstop: node ends the file itself at FILE_TIMEOUT_MS
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      // anything the file left running in its process group (a service whose test was cut off by the timeout
      // outlived it in an earlier run) is killed, so that it cannot disturb the files after it
      const leftovers = child.pid !== undefined && groupAlive(child.pid);
      if (leftovers) killGroup(child, 'SIGKILL');
      const text = Buffer.concat(chunks).toString('utf8');
      const counts: Record<string, number> = {};
      for (const m of text.matchAll(/^ℹ (tests|pass|fail|skipped|todo|cancelled) (\d+)$/gm)) counts[m[1] ?? ''] = (counts[m[1] ?? ''] ?? 0) + Number(m[2]);
      let cpuS: number | null = null;
      if (cpuDir) {
        try {
          const [u, sys] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
          if (Number.isFinite(u) && Number.isFinite(sys)) cpuS = (u ?? 0) + (sys ?? 0);
        } catch {
          /* killed before time wrote it */
        }
        rmSync(cpuDir, { recursive: true, force: true });
      }
      const o: Outcome = { file, text, ms: Date.now() - t0, code, signal, timedOut, counts, cpuS };
      const head = `\n===== ${keyOf(file)}: ${ok(o) ? 'passed' : 'FAILED'} in ${(o.ms / 1000).toFixed(1)} s${cpuS === null ? '' : `, CPU ${cpuS.toFixed(1)} s`}${timedOut ? ` (killed after ${FILE_TIMEOUT_MS / 1000} s)` : ''}${leftovers ? ' (processes it left running were killed)' : ''} =====\n`;
      process.stdout.write(head + text);
      resolve(o);
    });
  });
}

/** True while any process of the group `pgid` exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * A failed file in a few lines: each failing test's name and the message of its error (no stack), from the spec
 * reporter's "✖ failing tests:" section; or why the file ended when it has none (killed, crashed).
 */
function failureDigest(o: Pick<Outcome, 'file' | 'text' | 'code' | 'signal' | 'timedOut'>, maxLinesPerTest = 8): string {
  const out = [`✗ ${keyOf(o.file)}: ${o.timedOut ? `killed after ${FILE_TIMEOUT_MS / 1000} s` : `exit ${o.code ?? o.signal}`}`];
  const at = o.text.lastIndexOf('✖ failing tests:');
  if (at >= 0) {
    let kept = 0;
    for (const line of o.text.slice(at).split('\n').slice(1)) {
      if (/^test at /.test(line) || line.trim() === '' || line.trim() === '}') continue;
      if (line.startsWith('✖ ')) {
        out.push(`  ${line}`);
        kept = 0;
      } else if (!/^\s+at /.test(line) && !/^\s+(generatedMessage|code|operator):/.test(line) && kept < maxLinesPerTest) {
        out.push(`    ${line.trim().slice(0, 400)}`);
        kept += 1;
      }
    }
  } else {
    // no summary (crashed or killed): its last lines
    out.push(...o.text.trimEnd().split('\n').slice(-maxLinesPerTest).map((l) => `    ${l.slice(0, 400)}`));
  }
  return `${out.join('\n')}\n`;
}

function ok(o: Outcome): boolean {
  return o.code === 0 && !o.timedOut;
}

const BUILD_LOG = join(process.env.EDGEREC_TEST_MEDIA ?? '/tmp/edgerec-test-media', 'builds.log');

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Clips the tests built into the media cache (tests/helpers/media.ts logs each build) after byte `from` of its log. */
function clipBuilds(from: number): { count: number; ms: number } {
  try {
    const lines = readFileSync(BUILD_LOG).subarray(from).toString('utf8').split('\n').filter(Boolean);
    return { count: lines.length, ms: lines.reduce((s, l) => s + (Number(l.split(' ')[0]) || 0), 0) };
  } catch {
    return { count: 0, ms: 0 };
  }
}

/** Run `files` one after another, pushing each outcome to `out`. */
async function lane(files: readonly string[], out: Outcome[]): Promise<void> {
  for (const f of files) out.push(await runFile(f));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const files = args.length > 0 ? args.map((a) => resolvePath(a)) : [...findTests(join(ROOT, 'tests', 'unit')), ...findTests(join(ROOT, 'tests', 'integration'))];
  const beside = (f: string): boolean => {
    const k = keyOf(f);
    return k in BESIDE || (k.startsWith('unit/') && !(k in SERIAL_UNIT));
  };
  const alone = (f: string): boolean => keyOf(f) in ALONE;
  // the beside lane starts with its longest files (the integration ones), so that it ends before the serial one
  const besideFiles = files.filter((f) => beside(f) && !alone(f)).sort((a, b) => Number(keyOf(b).startsWith('integration/')) - Number(keyOf(a).startsWith('integration/')) || a.localeCompare(b));
  const serialFiles = files.filter((f) => !beside(f) && !alone(f)).sort();
  const aloneFiles = files.filter(alone).sort();
  const t0 = Date.now();
  const logFrom = sizeOf(BUILD_LOG);
  const results: Outcome[] = [];
  if (LANES === 1) await lane([...serialFiles, ...besideFiles], results);
  else await Promise.all([lane(serialFiles, results), lane(besideFiles, results)]);
  await lane(aloneFiles, results);
  const wall = Date.now() - t0;
  const builds = clipBuilds(logFrom);

  const failed = results.filter((o) => !ok(o));
  const sum = results.reduce((s, o) => s + o.ms, 0);
  const cpu = results.reduce((s, o) => s + (o.cpuS ?? 0), 0);
  const total = (k: string): number => results.reduce((s, o) => s + (o.counts[k] ?? 0), 0);
  const lines = [...results]
    .sort((a, b) => b.ms - a.ms)
    .map((o) => `${(o.ms / 1000).toFixed(1).padStart(7)} s ${o.cpuS === null ? '' : `${o.cpuS.toFixed(1).padStart(6)} s CPU`}  ${ok(o) ? '  ' : '✗ '}${keyOf(o.file)}${alone(o.file) ? ' (alone)' : LANES > 1 && beside(o.file) ? ' (beside)' : ''}`);
  process.stdout.write(
    `\n===== durations (${results.length} files: ${serialFiles.length} serial, ${besideFiles.length} beside, ${aloneFiles.length} alone${LANES === 1 ? ', all in one lane' : ''}) =====\n${lines.join('\n')}\n` +
      `tests ${total('tests')}, pass ${total('pass')}, fail ${total('fail')}, skipped ${total('skipped')}, cancelled ${total('cancelled')}\n` +
      `sum of files ${(sum / 1000).toFixed(0)} s, CPU ${cpu.toFixed(0)} s, wall ${(wall / 1000).toFixed(0)} s\n` +
      `test clips built into the media cache during the run: ${builds.count}, ${(builds.ms / 1000).toFixed(0)} s of building\n` +
      (failed.length > 0 ? `FAILED: ${failed.map((o) => keyOf(o.file)).join(', ')}\n` : `all ${results.length} files passed\n`),
  );
  // last, what failed and why in a few lines each: a CI log is often read from its end only
  for (const o of failed) process.stdout.write(failureDigest(o));
  process.exitCode = failed.length > 0 ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const child of running.keys()) killGroup(child, sig);
    process.exit(130);
  });
}

void main();
