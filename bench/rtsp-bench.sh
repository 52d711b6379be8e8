#!/usr/bin/env bash
# RTSP camera recording, edgerec vs ffmpeg -c copy -f segment, side by side through the shared rig
# (/work/shared/bench, 1080p25 H.264 ~4 Mbit/s + AAC from its RTSP simulator).
#   bench/rtsp-bench.sh [N ...]          default N = 1 8 16; env WINDOW (30), HOSTS (media_host_count, 1),
#                                        RIG (/work/shared/bench), SKIP_FFMPEG=1 to measure edgerec only,
#                                        CLIENTS="edgerec gstreamer" (rtsp_client values measured, in this order)
# Needs a built tree (npx tsc -p tsconfig.json). Prints the rig's RESULT lines and a summary table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIG=${RIG:-/work/shared/bench}
export WINDOW=${WINDOW:-30}
HOSTS=${HOSTS:-1}
read -r -a CLIENTS <<< "${CLIENTS:-edgerec}"
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(1 8 16)
TMP=$(mktemp -d /dev/shm/edgerec-bench-tmp.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "box: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for n in "${NS[@]}"; do
  [ "${SKIP_FFMPEG:-0}" = 1 ] || "$RIG/record-cpu.sh" ffmpeg "$n" || echo "ffmpeg N=$n: some cameras not OK"
  for client in "${CLIENTS[@]}"; do
    # the service's own tmp dir per run; finished files land in {outdir} named camK-<start>_<i>.mp4
    TAG="edgerec-$client-h$HOSTS" "$RIG/record-cpu.sh" "service:node $ROOT/dist/src/main.js --conf {config}" "$n" \
      --props-extra "rtsp_client=$client" \
      --props-extra 'record_dir={outdir}' --props-extra "record_tmp_dir=$TMP/n$n-$client" \
      --props-extra "db_path=$TMP/n$n-$client.db" --props-extra 'rest_port=0' --props-extra 'rtmp_port=0' \
      --props-extra 'rest_bind=127.0.0.1' --props-extra 'record_rotation={seg}' \
      --props-extra 'stream_record_policy_template={streamName}-{startTimeMillis}' \
      --props-extra 'on_record_hook_script=' --props-extra "media_host_count=$HOSTS" \
      || echo "edgerec ($client) N=$n: some cameras not OK"
  done
done
echo "box load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$RIG/summarize.py" 2>/dev/null | tail -20 || true
