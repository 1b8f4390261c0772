#!/usr/bin/env bash
# Makes sure NATS with JetStream and PostgreSQL are reachable at the
# configured addresses, for running Careline or its tests on one machine.
#
#   NATS_URL      default nats://127.0.0.1:4222
#   DATABASE_URL  default postgres://postgres@127.0.0.1:5432/careline
#                 (the database is created when the server has no such one)
#
# and that python3 can run aiosmtpd, the local SMTP server the tests send
# to and the demo's mail sink, that Chromium and chromedriver are there for
# the web pages' browser tests, nginx (the TLS proxy in front of several web
# instances), the Node.js packages of deploy/web-tools (axe-core,
# oidc-provider) for the web tests, and, as root, iproute2's ip (the
# partition drill's network namespaces).
#
# For each service: use a running one; otherwise, when the address is on
# this machine, start it from the Debian package (installing the package with
# apt-get when it is missing and this script runs as root); otherwise say
# exactly what is missing and exit non-zero.
#
# Local development only: a PostgreSQL cluster this script creates trusts
# connections from 127.0.0.1, and NATS flushes to disk lazily. Production
# settings are in deploy/README.md and deploy/nats/production.conf.
set -euo pipefail

NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/careline}
STATE_DIR=${CARELINE_STATE_DIR:-/var/lib/careline}

say() { printf 'careline: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
is_local() { case "$1" in 127.0.0.1|localhost|::1|0.0.0.0) return 0 ;; *) return 1 ;; esac; }

# host and port out of a URL like scheme://[user[:pw]@]host[:port][/db][?...]
url_host() { local rest=${1#*://}; rest=${rest##*@}; rest=${rest%%/*}; rest=${rest%%\?*}; echo "${rest%%:*}"; }
url_port() {
  local rest=${1#*://}; rest=${rest##*@}; rest=${rest%%/*}; rest=${rest%%\?*}
  case "$rest" in *:*) echo "${rest##*:}" ;; *) echo "$2" ;; esac
}

# The database name of a PostgreSQL URL, and the URL with another database.
url_database() { local rest=${1#*://}; rest=${rest#*/}; [ "$rest" = "${1#*://}" ] && return 0; echo "${rest%%\?*}"; }
with_database() {
  local url=$1 db=$2 base query=""
  case "$url" in *\?*) base=${url%%\?*}; query="?${url#*\?}" ;; *) base=$url ;; esac
  local rest=${base#*://} scheme=${base%%://*}
  echo "$scheme://${rest%%/*}/$db$query"
}

# The first line a NATS server sends is its INFO, which says whether
# JetStream is enabled. Prints it, or nothing when nothing answers.
nats_info() {
  timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n 1 <&3" 2>/dev/null || true
}

apt_install() {
  is_root || return 1
  command -v apt-get >/dev/null || return 1
  say "installing Debian package(s): $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

ensure_nats() {
  local host port info bin
  host=$(url_host "$NATS_URL"); port=$(url_port "$NATS_URL" 4222)
  info=$(nats_info "$host" "$port")
  if [ -n "$info" ]; then
    case "$info" in
      *'"jetstream":true'*) say "NATS with JetStream is up at $host:$port"; return 0 ;;
      *) fail "NATS at $host:$port runs without JetStream: restart it with -js (or 'jetstream {}' in its config)" ;;
    esac
  fi
  is_local "$host" || fail "NATS is not reachable at $host:$port and is not on this machine: start it there, or set NATS_URL"

  bin=$(command -v nats-server || true)
  [ -z "$bin" ] && [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server
  if [ -z "$bin" ]; then
    apt_install nats-server ||
      fail "nats-server is not installed: run 'apt-get install nats-server' as root (Debian package nats-server), then run this again"
    bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  fi
  local store="$STATE_DIR/nats" log="$STATE_DIR/nats-server.log"
  mkdir -p "$store" 2>/dev/null || { store="${TMPDIR:-/tmp}/careline/nats"; log="${TMPDIR:-/tmp}/careline/nats-server.log"; mkdir -p "$store"; }
  say "starting $bin on $host:$port with JetStream (store $store, log $log)"
  nohup "$bin" -a "$host" -p "$port" -js -sd "$store" -l "$log" >/dev/null 2>&1 &
  for _ in $(seq 1 50); do
    info=$(nats_info "$host" "$port")
    case "$info" in *'"jetstream":true'*) say "NATS with JetStream is up at $host:$port"; return 0 ;; esac
    sleep 0.2
  done
  fail "nats-server did not come up on $host:$port: see $log"
}

pg_ready() { pg_isready -q -h "$1" -p "$2" -t 3 >/dev/null 2>&1; }

ensure_postgres() {
  local host port
  host=$(url_host "$DATABASE_URL"); port=$(url_port "$DATABASE_URL" 5432)
  if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
    apt_install postgresql-client ||
      fail "the PostgreSQL client tools (psql, pg_isready) are missing: run 'apt-get install postgresql-client' as root"
  fi
  if ! pg_ready "$host" "$port"; then
    is_local "$host" || fail "PostgreSQL is not reachable at $host:$port and is not on this machine: start it there, or set DATABASE_URL"
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql ||
        fail "PostgreSQL is not installed: run 'apt-get install postgresql' as root, then run this again"
      configure_new_cluster
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "starting PostgreSQL $version cluster 'main'"
    if is_root; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        fail "could not start PostgreSQL $version: see /var/log/postgresql/"
    else
      pg_ctlcluster "$version" main start ||
        fail "could not start PostgreSQL $version as $(id -un): run this script as root or start it with 'pg_ctlcluster $version main start'"
    fi
    for _ in $(seq 1 50); do pg_ready "$host" "$port" && break; sleep 0.2; done
    pg_ready "$host" "$port" || fail "PostgreSQL did not come up on $host:$port"
  fi
  if ! psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then
    local database admin
    database=$(url_database "$DATABASE_URL")
    admin=$(with_database "$DATABASE_URL" postgres)
    if [ -n "$database" ] && psql "$admin" -Atqc 'select 1' >/dev/null 2>&1; then
      if [ -z "$(psql "$admin" -Atqc "select 1 from pg_database where datname = '$database'")" ]; then
        say "creating database $database"
        psql "$admin" -qc "CREATE DATABASE \"$database\"" >/dev/null ||
          fail "could not create database $database: the user in DATABASE_URL needs CREATEDB, or create it yourself"
      fi
    fi
    psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1 ||
      fail "PostgreSQL answers at $host:$port but '$DATABASE_URL' cannot log in: check the user, password and pg_hba.conf"
  fi
  say "PostgreSQL is up at $host:$port (database $(url_database "$DATABASE_URL"))"
}

# A cluster created by the package install above: let local tools and the
# services connect as postgres over 127.0.0.1 without a password.
configure_new_cluster() {
  local version hba
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  [ -f "$hba" ] || return 0
  say "new PostgreSQL cluster: trusting local connections (development only) in $hba"
  sed -i -E 's/^(local|host)(\s+all\s+all\s+.*)\s(peer|md5|scram-sha-256)\s*$/\1\2 trust/' "$hba"
  sed -i -E 's/^(local\s+all\s+postgres\s+)peer\s*$/\1trust/' "$hba"
}

# aiosmtpd: the local SMTP server the notification tests send to, and the
# demo's mail sink (run.sh). Debian package python3-aiosmtpd, or from PyPI.
ensure_mail_sink() {
  command -v python3 >/dev/null 2>&1 ||
    { apt_install python3 || fail "python3 is missing: run 'apt-get install python3' as root"; }
  python3 -c 'import aiosmtpd' >/dev/null 2>&1 && return 0
  apt_install python3-aiosmtpd && python3 -c 'import aiosmtpd' >/dev/null 2>&1 && return 0
  say "installing aiosmtpd from PyPI"
  python3 -m pip install -q aiosmtpd >/dev/null 2>&1 ||
    python3 -m pip install -q --user aiosmtpd >/dev/null 2>&1 ||
    python3 -m pip install -q --break-system-packages aiosmtpd >/dev/null 2>&1 ||
    fail "aiosmtpd (a local SMTP server for tests and the demo) is missing: run 'apt-get install python3-aiosmtpd' as root, or 'pip install aiosmtpd'"
  python3 -c 'import aiosmtpd' >/dev/null 2>&1 ||
    fail "aiosmtpd was installed but python3 cannot import it; install python3-aiosmtpd"
  say "aiosmtpd is available (local SMTP server)"
}

# openssl: makes the private CA and certificates of TLS to NATS in the
# demo and the tests (deploy/nats/dev-certs.sh).
ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  apt_install openssl && command -v openssl >/dev/null 2>&1 && return 0
  fail "openssl (to make TLS certificates for NATS) is missing: run 'apt-get install openssl' as root"
}

# Chromium and its WebDriver: the web pages' browser tests drive a real,
# headless Chromium (Debian packages chromium and chromium-driver).
ensure_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  say "installing Debian packages chromium and chromium-driver (the web pages' browser tests)"
  apt_install chromium chromium-driver &&
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  fail "Chromium is missing for the browser tests: run 'apt-get install chromium chromium-driver' as root"
}

# nginx: the reverse proxy terminating TLS in front of several web
# instances (deploy/web/nginx.sh; run.sh --cluster and the tests).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] && return 0
  say "installing Debian's nginx (the TLS reverse proxy in front of the web instances)"
  apt_install nginx-light || apt_install nginx
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] && return 0
  fail "nginx is missing: run 'apt-get install nginx' as root"
}

# The Node.js packages in `dir`, as its package-lock.json pins them, for
# `what` (said when they are missing).
npm_ci() {
  local dir="$1" what="$2"
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm ||
      fail "Node.js and npm are missing for $what: run 'apt-get install nodejs npm' as root"
  fi
  say "installing $what into $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    fail "could not install $dir's packages from the npm registry: run 'npm ci' there"
}

# The Node.js packages the web pages' tests use (deploy/web-tools, pinned by
# its package-lock.json): axe-core, run inside the browser on every page, and
# oidc-provider, the OpenID Connect provider the sign-in tests sign in at.
ensure_web_tools() {
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/web-tools"
  [ -f "$dir/node_modules/axe-core/axe.min.js" ] && [ -d "$dir/node_modules/oidc-provider" ] && return 0
  npm_ci "$dir" "the web tests' Node.js packages (axe-core, oidc-provider)"
}

# The web pages' design system (services/web/design, pinned by its
# package-lock.json): nhsuk-frontend and the sass that compiles it with
# Careline's own parts into services/web/static/careline.css. The web serves
# that file from its binary; the tests check it is this build's.
ensure_web_design() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/services/web/design"
  [ -d "$dir/node_modules/nhsuk-frontend" ] && [ -x "$dir/node_modules/.bin/sass" ] && return 0
  npm_ci "$dir" "the web's design system (nhsuk-frontend, sass)"
}

# iproute2's ip: the partition drill runs each NATS node in a network
# namespace of its own (deploy/cluster/cluster.sh, CARELINE_CLUSTER_NETNS=1),
# which needs root; without root the drill is skipped outside CI.
ensure_ip() {
  [ "$(id -u)" = 0 ] || return 0
  command -v ip >/dev/null 2>&1 && return 0
  apt_install iproute2 && command -v ip >/dev/null 2>&1 && return 0
  fail "iproute2's ip (network namespaces for the partition drill) is missing: run 'apt-get install iproute2' as root"
}

ensure_nats
ensure_postgres
ensure_mail_sink
ensure_openssl
ensure_browser
ensure_nginx
ensure_web_tools
ensure_web_design
ensure_ip
