#!/usr/bin/env bash
# Make sure the servers the test suite talks to are up on loopback:
#   PostgreSQL 127.0.0.1:5432 (trust auth), Redis 127.0.0.1:6379 — started if installed but down,
#   installed from Debian packages first when missing and we are root;
#   SecantusDB (a MongoDB-wire test server, test-only) on 127.0.0.1:37017 — started from the venv.
# Prints the environment lines the tests need (eval "$(tests/servers.sh up)").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
log() { echo "servers: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

need_apt() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if [ -z "${_apt_updated:-}" ]; then apt-get update -qq >&2 || true; _apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    log "cannot install $* (not root or no apt-get)"; return 1
  fi
}

postgres_up() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then need_apt postgresql; fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
  # trust auth on loopback for the test user
  local hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -q "jts-tests" "$hba" 2>/dev/null; then
    sed -i '1i host all all 127.0.0.1/32 trust # jts-tests\nhost all all ::1/128 trust # jts-tests' "$hba" || true
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
  wait_port 5432 || { log "PostgreSQL did not start"; return 1; }
}

redis_up() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || need_apt redis-server
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp >&2
  wait_port 6379 || { log "Redis did not start"; return 1; }
}

mongo_up() {
  local port=${JTS_TEST_MONGODB_PORT:-37017}
  if ! port_open "$port"; then
    "$py" -m pip show SecantusDB >/dev/null 2>&1 || "$py" -m pip install -q "SecantusDB==0.7.0b3" >&2
    local bin; bin=$(dirname "$py")/secantusd-py
    local dir; dir=$(mktemp -d /tmp/jts-secantus.XXXXXX)
    nohup "$bin" --host 127.0.0.1 --port "$port" --storage-path "$dir" >"$dir/server.log" 2>&1 &
    wait_port "$port" || { log "SecantusDB did not start (see $dir/server.log)"; return 1; }
  fi
  echo "export JTS_TEST_MONGODB_URL=mongodb://127.0.0.1:$port"
}

case "${1:-up}" in
  up)
    postgres_up && log "PostgreSQL ready on 127.0.0.1:5432"
    redis_up && log "Redis ready on 127.0.0.1:6379"
    if mongo_up; then log "MongoDB-wire test server ready"; else log "no MongoDB test server"; fi
    ;;
  *) echo "usage: $0 up" >&2; exit 2 ;;
esac
