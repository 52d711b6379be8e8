#!/usr/bin/env bash
# Recording engine: edgerec (service, one media host) vs gst-launch-1.0 running THE SAME launch line that
# src/pipeline/launch.ts describePipeline() produces (rtsp, H264+AAC, fragmented MP4, rotation 10 s), remux only,
# through the shared rig (/work/shared/bench: 1080p25 H.264 ~4 Mbit/s + AAC from its RTSP simulator).
#   bench/engine-bench.sh [N ...]     default N = 1 8 16; env WINDOW (30), RIG (/work/shared/bench),
#                                     RTSP_PORT (18654), SKIP_ONE=1 skips the one-process reference,
#                                     TABLE_ONLY=<work dir> reprints an earlier run's table
# Per N, one pass each of:
#   edgerec   service:node dist/src/main.js (media_host_count=1, record_rotation=10); a side sampler (outside the
#             measured tree) splits its CPU into the Node main process, the media host, and the remux
#             gst-launch-1.0 children (reaped children = the main process's cutime+cstime over the window: the
#             rig counts utime+stime of live processes only, so short remuxes are mostly missed by its figure)
#   gst-pp    N x `gst-launch-1.0 -e <describePipeline line>` (custom: mode), outputs kept, then every fragment
#             remuxed offline with describeRemux()'s line (as edgerec's finalizer does) to price the remux
#   gst-1p    one `gst-launch-1.0 -e` holding the N lines (elements renamed srcK/muxK), like our one media host
# Needs a built tree (npx tsc -p tsconfig.json). Prints the rig's RESULT lines and a side-by-side table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIG=${RIG:-/work/shared/bench}
export WINDOW=${WINDOW:-30} RTSP_PORT=${RTSP_PORT:-18654}
export RESULTS_DIR=${RESULTS_DIR:-/tmp/rig/results-engine-bench}
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(1 8 16)
TMP=$(mktemp -d /dev/shm/engine-bench.XXXXXX)
SAMPLER_PID=
cleanup() { [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
WORK=$RESULTS_DIR/engine-$(date +%Y%m%d-%H%M%S)   # rows, side samples and the table stay here
mkdir -p "$WORK"
[ -f "$ROOT/dist/src/pipeline/launch.js" ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 2; }

# gst-launch command lines from describePipeline(): per camera ({url} {out} for the rig) and N in one process
node - "$ROOT" "$TMP" "${NS[@]}" <<'JS'
const [root, tmp, ...ns] = process.argv.slice(2);
const fs = require('fs');
const l = require(`${root}/dist/src/pipeline/launch.js`);
const sq = (t) => `'${t.replace(/'/g, `'\\''`)}'`;
const line = (url, loc) => l.describePipeline({
  source: { kind: 'rtsp', url, transport: 'tcp' }, codecs: { video: 'H264', audio: 'AAC' },
  output: { container: 'mp4', location: loc, maxSizeTimeNs: 10e9, maxSizeBytes: 0,
    aac: { sampleRate: 44100, channels: 2, bitrateMode: 5 }, webm: { clusterMs: 100000, clusterBytes: 131072 } } });
const one = line('{url}', '{out}/seg-%05d.mp4');
fs.writeFileSync(`${tmp}/line.txt`, one + '\n');
fs.writeFileSync(`${tmp}/per-process.cmd`, 'exec gst-launch-1.0 -e ' + l.gstLaunchArgv(one).map(sq).join(' '));
for (const n of ns) {
  const toks = [];
  for (let k = 1; k <= Number(n); k++) {
    const d = line(`rtsp://127.0.0.1:{port}/cam${k}`, `{outdir}/cam${k}-seg-%05d.mp4`);
    toks.push(...l.gstLaunchArgv(d).map((t) => t.replace(/^name=(src|mux)$/, `name=$1${k}`)
      .replace(/^(src|mux)\.(.*)$/, `$1${k}.$2`)));
  }
  fs.writeFileSync(`${tmp}/one-process-${n}.cmd`, 'exec gst-launch-1.0 -e ' + toks.map(sq).join(' '));
}
const remux = l.describeRemux('{src}', '{dst}', 'mp4', { video: 'H264', audio: 'AAC' }, { moovFirst: true });
fs.writeFileSync(`${tmp}/remux.json`, JSON.stringify(l.gstLaunchArgv(remux)));
JS
echo "describePipeline line: $(cat "$TMP/line.txt")"

# side sampler: every 0.5 s, the edgerec service main process (utime+stime, cutime+cstime) and its live children
cat >"$TMP/sampler.py" <<'PY'
import json, os, sys, time
marker, out = sys.argv[1], sys.argv[2]
def stat(pid):
    try:
        s = open('/proc/%d/stat' % pid, 'rb').read().decode('ascii', 'replace')
    except OSError:
        return None
    f = s[s.rfind(')') + 2:].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]), int(f[19]), s[s.find('(') + 1:s.rfind(')')]
with open(out, 'a') as o:
    while True:
        main = None
        for d in os.listdir('/proc'):
            if d.isdigit():
                try:
                    c = open('/proc/%s/cmdline' % d, 'rb').read()
                except OSError:
                    continue
                if b'dist/src/main.js' in c and marker.encode() in c:
                    main = int(d)
        if main:
            m = stat(main)
            kids = {}
            if m:
                for d in os.listdir('/proc'):
                    if d.isdigit():
                        st = stat(int(d))
                        if st and st[0] == main:
                            kids['%s:%d' % (d, st[3])] = [st[4], st[1]]
                o.write(json.dumps({'t': time.time(), 'self': m[1], 'children': m[2], 'kids': kids}) + '\n')
                o.flush()
        time.sleep(0.5)
PY

# remux every fragment of a kept run with describeRemux()'s line; prints remux CPU s and media s
cat >"$TMP/remux.py" <<'PY'
import json, os, resource, subprocess, sys
run_json, argv_json, tmp = sys.argv[1:4]
run = json.load(open(run_json)); tmpl = json.load(open(argv_json))
cpu = media = 0.0; fails = 0
for f in run.get('per_file', []):
    src = os.path.join(run['out_dir'], f['file']); dst = os.path.join(tmp, 'remux-out.mp4')
    argv = ['gst-launch-1.0', '-q', '-e'] + [t.replace('{src}', src).replace('{dst}', dst) for t in tmpl]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, capture_output=True, env={**os.environ, 'GST_DEBUG': '0'})
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    media += f.get('duration') or 0.0
    if p.returncode or b'ERROR' in p.stdout + p.stderr or not os.path.getsize(dst):
        fails += 1
    os.remove(dst)
print(json.dumps({'remux_cpu_s': round(cpu, 3), 'media_s': round(media, 2), 'files': len(run.get('per_file', [])), 'fails': fails}))
PY

# side-by-side table: CPU s per media-minute per stream, RSS per stream, ratios edgerec / reference
cat >"$TMP/table.py" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def near(samples, t):
    return min(samples, key=lambda s: abs(s['t'] - t)) if samples else None
def split(r, run):
    f = run['figures']; t1 = run['t_stop']; t0 = t1 - f['window_wall_s']
    try:
        ss = [json.loads(l) for l in open(r['samples']) if l.strip()]
    except OSError:
        ss = []
    a, b = near(ss, t0), near(ss, t1)
    if not a or not b or abs(a['t'] - t0) > 1 or abs(b['t'] - t1) > 1:
        return None
    ck = 100.0
    g = lambda s, comm: sum(v for c, v in s['kids'].values() if c == comm)
    main = (b['self'] - a['self']) / ck
    host = sum(v - a['kids'].get(k, [None, 0])[1] for k, (c, v) in b['kids'].items() if c == 'node') / ck
    remux = (b['children'] - a['children'] + g(b, 'gst-launch-1.0') - g(a, 'gst-launch-1.0')) / ck
    return main, host, remux
def per_min(cpu, n, wall):
    return cpu / (n * wall / 60.0)
out = ['| N | recorder | CPU s / media-min / stream | RSS MiB / stream (PSS) | files OK | other_cpu_s | box busy % | edgerec ÷ this |',
       '|---|---|---:|---:|---|---:|---:|---:|']
notes = []
for n in sorted({r['n'] for r in rows}):
    by = {r['who']: r for r in rows if r['n'] == n}
    runs = {}
    for w, r in by.items():
        try:
            runs[w] = json.load(open(r['run']))
        except (OSError, ValueError):
            pass
    if 'edgerec' not in runs or 'figures' not in runs['edgerec']:
        out.append('| %d | edgerec | run failed | | | | | |' % n); continue
    e = runs['edgerec']; ef = e['figures']; ew = ef['window_wall_s']
    sp = split(by['edgerec'], e)
    if sp:
        main, host, remux = sp; etot = main + host + remux
    else:
        main = host = remux = None; etot = ef['recorder_cpu_s']
    epm = per_min(etot, n, ew)
    def line(name, run, cpu_pm, ratio_base=None, extra=''):
        f = run['figures']; v = run.get('validation', {})
        ok = '%s/%s files, %s/%d cams' % (v.get('files_playable'), v.get('files'), v.get('cams_ok'), n)
        ratio = ('CPU %.2f× · RSS %.2f×' % (epm / cpu_pm, ef['recorder_rss_per_stream_mib'] / f['recorder_rss_per_stream_mib'])
                 if ratio_base is None and cpu_pm else (ratio_base or ''))
        out.append('| %d | %s | %.3f%s | %.1f (%.1f) | %s | %.1f | %.1f | %s |' % (
            n, name, cpu_pm, extra, f['recorder_rss_per_stream_mib'], f['recorder_pss_per_stream_mib'], ok,
            f['other_cpu_s'], f['system_busy_pct_of_box'], ratio))
    parts = ' (main %.3f + host %.3f + remux %.3f)' % tuple(per_min(x, n, ew) for x in (main, host, remux)) if sp else ' (rig figure: no split)'
    line('edgerec total', e, epm, '—', parts)
    if sp:
        out.append('| %d | edgerec, rig figure (remux mostly unsampled) | %.3f | | | | | |' % (n, per_min(ef['recorder_cpu_s'], n, ew)))
    if 'gst-pp' in runs and 'figures' in runs['gst-pp']:
        g = runs['gst-pp']; gf = g['figures']; gpm = per_min(gf['recorder_cpu_s'], n, gf['window_wall_s'])
        line('gst-launch -e, same line, 1 process / camera', g, gpm)
        rx = by['gst-pp'].get('remux') or {}
        if rx.get('media_s'):
            rpm = rx['remux_cpu_s'] / rx['media_s'] * 60
            out.append('| %d | … + describeRemux of every fragment (offline, %d files, %d failed) | %.3f (+%.3f) | | | | | %.2f× |' % (
                n, rx['files'], rx['fails'], gpm + rpm, rpm, epm / (gpm + rpm)))
            if sp:
                out.append('| %d | edgerec without remux vs gst-launch without remux | %.3f vs %.3f | | | | | %.2f× |' % (
                    n, per_min(main + host, n, ew), gpm, per_min(main + host, n, ew) / gpm))
    if 'gst-1p' in runs and 'figures' in runs['gst-1p']:
        g = runs['gst-1p']; gf = g['figures']; gpm = per_min(gf['recorder_cpu_s'], n, gf['window_wall_s'])
        line('gst-launch -e, the N lines in 1 process', g, gpm)
        rx = (by.get('gst-pp') or {}).get('remux') or {}
        if rx.get('media_s'):
            rpm = rx['remux_cpu_s'] / rx['media_s'] * 60
            out.append('| %d | … + the remux cost measured above | %.3f (+%.3f) | | | | | %.2f× |' % (n, gpm + rpm, rpm, epm / (gpm + rpm)))
        if sp:
            out.append('| %d | edgerec media host alone vs that one process | %.3f vs %.3f | | | | | %.2f× |' % (
                n, per_min(host, n, ew), gpm, per_min(host, n, ew) / gpm))
print('\n'.join(out))
PY

# TABLE_ONLY=<work dir of an earlier run>: print its table again and stop
if [ -n "${TABLE_ONLY:-}" ]; then rmdir "$WORK"; python3 "$TMP/table.py" "$TABLE_ONLY/rows.jsonl"; exit; fi

last_run() { ls -td "$RESULTS_DIR"/"$1"-n"$2"-* 2>/dev/null | head -1; }
echo "box: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
: >"$WORK/rows.jsonl"
for n in "${NS[@]}"; do
  # (a) edgerec service, split by the side sampler
  python3 "$TMP/sampler.py" "$RESULTS_DIR" "$WORK/samples-$n.jsonl" & SAMPLER_PID=$!
  TAG=engine-edgerec "$RIG/record-cpu.sh" "service:exec node $ROOT/dist/src/main.js --conf {config}" "$n" \
    --props-extra 'record_dir={outdir}' --props-extra "record_tmp_dir=$TMP/n$n" \
    --props-extra "db_path=$TMP/n$n.db" --props-extra 'rest_port=0' --props-extra 'rtmp_port=0' \
    --props-extra 'rest_bind=127.0.0.1' --props-extra 'record_rotation={seg}' \
    --props-extra 'stream_record_policy_template={streamName}-{startTimeMillis}' \
    --props-extra 'on_record_hook_script=' --props-extra 'media_host_count=1' \
    || echo "edgerec N=$n: some cameras not OK"
  kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
  echo "{\"n\":$n,\"who\":\"edgerec\",\"run\":\"$(last_run service-engine-edgerec "$n")/run.json\",\"samples\":\"$WORK/samples-$n.jsonl\"}" >>"$WORK/rows.jsonl"
  # (b) the same line, one gst-launch-1.0 per camera; outputs kept for the offline remux
  KEEP_OUTPUT=1 STOP_SIGNAL=INT TAG=engine-gstpp "$RIG/record-cpu.sh" "custom:$(cat "$TMP/per-process.cmd")" "$n" \
    || echo "gst-launch per process N=$n: some cameras not OK"
  run=$(last_run custom-engine-gstpp "$n")
  remux=$(python3 "$TMP/remux.py" "$run/run.json" "$TMP/remux.json" "$TMP")
  out=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["out_dir"])' "$run/run.json")
  case "$out" in /dev/shm/rig-out/custom-engine-gstpp-*) rm -rf "$out" ;; esac
  echo "{\"n\":$n,\"who\":\"gst-pp\",\"run\":\"$run/run.json\",\"remux\":$remux}" >>"$WORK/rows.jsonl"
  # (c) the N lines in one gst-launch-1.0
  if [ "${SKIP_ONE:-0}" != 1 ]; then
    STOP_SIGNAL=INT TAG=engine-gst1p "$RIG/record-cpu.sh" "service:$(cat "$TMP/one-process-$n.cmd")" "$n" \
      || echo "gst-launch one process N=$n: some cameras not OK"
    echo "{\"n\":$n,\"who\":\"gst-1p\",\"run\":\"$(last_run service-engine-gst1p "$n")/run.json\"}" >>"$WORK/rows.jsonl"
  fi
done
echo "box load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$TMP/table.py" "$WORK/rows.jsonl" | tee "$WORK/table.md"
