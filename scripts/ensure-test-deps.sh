#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages when it is missing:
# PostgreSQL 15's server binaries (the tests start their own private server), nginx
# and PgBouncer (the deployment's topology test starts its own, from deploy/), and
# Chromium for the browser tests (Playwright drives Debian's build; no download).
set -euo pipefail

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: $*. Install them (as root: apt-get install $*)." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_postgres; then
  echo "Installing PostgreSQL 15 from Debian's packages..."
  apt_install postgresql-15 || apt_install postgresql
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "The postgres system user is missing; reinstalling postgresql-common..." >&2
  apt_install --reinstall postgresql-common
fi
if ! command -v nginx >/dev/null 2>&1 || ! command -v pgbouncer >/dev/null 2>&1; then
  echo "Installing nginx and PgBouncer from Debian's packages (the deployment's test)..."
  apt_install nginx-light pgbouncer
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Chromium from Debian's packages (browser tests)..."
  apt_install chromium
fi
have_postgres && echo "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
echo "Chromium: $(command -v chromium)"
echo "nginx: $(command -v nginx); PgBouncer: $(command -v pgbouncer)"
