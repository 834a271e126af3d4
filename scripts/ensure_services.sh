#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ when they are down, and install Chromium (the dashboard's
# end-to-end tests drive it) when it is missing; fail loudly when one cannot be provided.
set -uo pipefail

wait_for() {  # name, probe command, seconds
  local name=$1 probe=$2 secs=$3
  for _ in $(seq 1 "$secs"); do
    if eval "$probe" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "ensure_services: $name did not come up within ${secs}s" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "ensure_services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for PostgreSQL "pg_isready -q -h 127.0.0.1 -p 5432" 30 || exit 1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "ensure_services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG" 20 || exit 1
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "ensure_services: starting RabbitMQ" >&2
  rabbitmq-server -detached || true
  wait_for RabbitMQ "(exec 3<>/dev/tcp/127.0.0.1/5672)" 90 || exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "ensure_services: installing chromium (apt-get) for the dashboard e2e tests" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y chromium >&2 \
    || { $SUDO apt-get update >&2 && $SUDO apt-get install -y chromium >&2; }
  if [ ! -x /usr/bin/chromium ]; then
    echo "ensure_services: chromium could not be installed (/usr/bin/chromium missing)" >&2
    exit 1
  fi
fi
if ! command -v promtool >/dev/null 2>&1; then
  # promtool checks the alert rules, scrape config and dashboards (tests/deploy). It comes in
  # Debian's prometheus package; only the binary is taken, so no Prometheus service is set up.
  echo "ensure_services: installing promtool (from Debian's prometheus package)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  work=$(mktemp -d)
  (cd "$work" && { apt-get download prometheus >&2 \
      || { $SUDO apt-get update >&2 && apt-get download prometheus >&2; }; } \
    && dpkg-deb -x prometheus_*.deb root && $SUDO install -m 755 root/usr/bin/promtool /usr/local/bin/promtool)
  rm -rf "$work"
  if ! command -v promtool >/dev/null 2>&1; then
    echo "ensure_services: promtool could not be installed" >&2
    exit 1
  fi
fi
exit 0
