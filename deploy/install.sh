#!/usr/bin/env bash
# Install SIGMA from this checkout onto an Ubuntu 24.04 host: user, directories, virtualenv in
# /opt/sigma, environment file, systemd units. Idempotent; run as root from the repository:
#   sudo deploy/install.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/sigma

id -u sigma >/dev/null 2>&1 || useradd --system --home /var/lib/sigma --shell /usr/sbin/nologin sigma
install -d -o sigma -g sigma -m 0750 /var/lib/sigma /var/log/sigma
install -d -o root -g sigma -m 0750 /etc/sigma

rsync -a --delete --exclude .venv --exclude var --exclude node_modules "$repo/" "$prefix/"
# pyproject pins Python 3.11; Ubuntu 24.04 ships 3.12, so 3.11 comes from the deadsnakes PPA
# (apt install python3.11 python3.11-venv).
python3.11 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install --quiet --upgrade pip
"$prefix/.venv/bin/pip" install --quiet "$prefix"

if [ ! -e /etc/sigma/sigma.env ]; then
  install -o root -g sigma -m 0640 "$repo/deploy/env/sigma.env.example" /etc/sigma/sigma.env
  echo "edit /etc/sigma/sigma.env (passwords, symbols, strategies), then run this again" >&2
  exit 0
fi

install -m 0644 "$repo"/deploy/systemd/*.service "$repo"/deploy/systemd/sigma.target /etc/systemd/system/
systemctl daemon-reload
# Migrate once up front so the processes do not race to create the schema.
systemd-run --wait --pipe --quiet --uid=sigma --gid=sigma \
  -p EnvironmentFile=/etc/sigma/sigma.env -p WorkingDirectory=/var/lib/sigma \
  -E SIGMA_VAR_DIR=/var/lib/sigma "$prefix/.venv/bin/sigma" migrate
systemctl enable sigma.target
echo "installed; start with: systemctl start sigma.target" >&2
