#!/usr/bin/env bash
# Install edgerec as a systemd service in /opt/edgerec (run as root from a built checkout: `make setup` first).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${EDGEREC_PREFIX:-/opt/edgerec}
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -f "$src/dist/src/main.js" ] || { echo "install.sh: not built; run 'make setup' first" >&2; exit 1; }

id edgerec >/dev/null 2>&1 || useradd --system --home-dir "$dest" --shell /usr/sbin/nologin edgerec
for g in video render; do getent group $g >/dev/null || groupadd --system $g; done

mkdir -p "$dest" "$dest/records" /var/lib/edgerec/tmp
cp -a "$src/dist" "$src/node_modules" "$src/package.json" "$src/scripts" "$src/README.md" "$dest/"
mkdir -p "$dest/src/api" && cp -a "$src/src/api/page" "$dest/src/api/"
mkdir -p "$dest/conf"
if [ ! -f "$dest/conf/edgerec.properties" ]; then
  cp "$src/conf/edgerec.properties" "$dest/conf/edgerec.properties"
  # Recordings in progress go to the tmpfs mounted by var-lib-edgerec-tmp.mount.
  printf '\nrecord_tmp_dir=/var/lib/edgerec/tmp\n' >> "$dest/conf/edgerec.properties"
fi
chown -R edgerec:edgerec "$dest/records" "$dest/conf" /var/lib/edgerec
install -m 0644 "$src/systemd/edgerec.service" "$src/systemd/var-lib-edgerec-tmp.mount" /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now var-lib-edgerec-tmp.mount edgerec.service
echo "edgerec installed in $dest; status: systemctl status edgerec; logs: journalctl -u edgerec -f"
