#!/usr/bin/env bash
# Install what the tests need (Debian packages for the peers, the package with its test
# extras in .venv), then lint, type-check and run the whole suite against real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="victoria-metrics influxdb libmodbus-dev gcc pkg-config socat nut-server nut-client snmp libnss3-tools mosquitto libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk chromium"
missing=$(for p in $APT_PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [[ -n $missing ]]; then
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
  echo "installing Debian packages: $missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
bash .ci/venv test
.venv/bin/ruff check monitor drivers tests bench
.venv/bin/mypy
# pytest exits 5 when it collected no test: that fails this script like any other failure
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
