#!/usr/bin/env bash
# Start what the test suite talks to, when it is not already running: PostgreSQL 15+, Redis 7, and
# Debian's Chromium for the browser tests. Installs the Debian packages on a fresh machine.
set -euo pipefail

need_root() { [ "$(id -u)" = 0 ] || { echo "services.sh: run as root to install or start $1" >&2; exit 1; }; }
apt_install() {
  need_root "$*"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -q >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  echo "services.sh: nothing listens on 127.0.0.1:$1" >&2; exit 1
}

# --- PostgreSQL ----------------------------------------------------------------------------------
if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -1)
    # Tests connect over TCP as postgres without a password, as on the CI machines.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  need_root postgresql
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_port 5432
fi

# --- Redis ---------------------------------------------------------------------------------------
if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379
fi

# --- Chromium (never `playwright install`: it downloads browsers, which fails here) ---------------
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi

# --- the Unicode font the visit-record PDF embeds ---------------------------------------------------
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_install fonts-dejavu-core

# --- ip (network namespaces for WebRTC tests) ----------------------------------------------------
command -v ip >/dev/null || apt_install iproute2
echo "services: postgresql :5432, redis :6379, chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}')"
