#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback, for the event log that must
# outlive a lost machine: every node fsyncs before it acknowledges
# (sync_interval: always) and the stream keeps 3 replicas.
#
#   cluster.sh start DIR [BASE]   start nodes 1-3 with their stores in DIR
#                                 (client ports BASE..BASE+2, default 4231;
#                                 routes BASE+10.., monitoring BASE+20..),
#                                 wait until each is healthy, print NATS_URL
#   cluster.sh kill DIR N         SIGKILL node N (a lost machine)
#   cluster.sh restart DIR N      start node N again on its store
#   cluster.sh stop DIR           stop every node (SIGTERM)
#   cluster.sh urls DIR           print NATS_URL (the three client URLs)
#   cluster.sh outsider DIR [cert]  start a fourth server that knows the
#                                 routes but not the password (and, unless
#                                 cert, has no certificate of the cluster's
#                                 CA): a drill, it must not join; stopped
#                                 with the rest
#
# The routes between nodes are authenticated (user route, a password made
# once in DIR/route-password, or CARELINE_CLUSTER_ROUTE_PASSWORD) and on
# mutual TLS (a CA of the cluster's own in DIR/tls: deploy/nats/dev-certs.sh;
# in production, the organisation's CA). Nothing secret is in the repository.
# With DIR/users.conf present the nodes include it (each service its own
# user; their passwords in the environment of start and restart) and serve
# clients on TLS only, NATS_CA=DIR/tls/ca.pem.
# The services connect with all three URLs and CARELINE_STREAM_REPLICAS=3.
# The nats-server is deploy/cluster/nats-server.sh's (2.12 or later).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

say() { printf 'careline: %s\n' "$*" >&2; }
usage() { sed -n '6,18p' "$0" >&2; exit 2; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

base() { cat "$dir/base" 2>/dev/null || echo 4231; }
urls() {
  local b; b=$(base)
  echo "nats://127.0.0.1:$b,nats://127.0.0.1:$((b + 1)),nats://127.0.0.1:$((b + 2))"
}

healthy() { # node: whether its monitoring port says JetStream is healthy
  local port=$(($(base) + 20 + $1 - 1))
  curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '"ok"'
}

route_password() {
  if [ -n "${CARELINE_CLUSTER_ROUTE_PASSWORD:-}" ]; then
    echo "$CARELINE_CLUSTER_ROUTE_PASSWORD"
    return
  fi
  if [ ! -s "$dir/route-password" ]; then
    (umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > "$dir/route-password")
  fi
  cat "$dir/route-password"
}

# With DIR/users.conf (deploy/nats/users.conf, its passwords in the
# environment) clients sign in as their users, over TLS.
clients() {
  if [ -f "$dir/users.conf" ]; then
    echo "include users.conf"
    echo "tls { cert_file: \"$dir/tls/server.pem\", key_file: \"$dir/tls/server.key\", timeout: 2 }"
  fi
}

write_config() { # node
  local n=$1 b pw; b=$(base); pw=$(route_password)
  mkdir -p "$dir/n$n"
  (umask 077; cat > "$dir/n$n.conf") <<CONF
server_name: careline-n$n
listen: 127.0.0.1:$((b + n - 1))
http: 127.0.0.1:$((b + 20 + n - 1))
jetstream {
  store_dir: "$dir/n$n"
  # Acknowledge only what is on disk (the default flushes every 2 minutes).
  sync_interval: always
}
$(clients)
cluster {
  name: careline
  listen: 127.0.0.1:$((b + 10 + n - 1))
  authorization { user: route, password: "$pw", timeout: 2 }
  tls {
    cert_file: "$dir/tls/server.pem"
    key_file: "$dir/tls/server.key"
    ca_file: "$dir/tls/ca.pem"
    verify: true
    timeout: 2
  }
  routes: [
    nats-route://route:$pw@127.0.0.1:$((b + 10))
    nats-route://route:$pw@127.0.0.1:$((b + 11))
    nats-route://route:$pw@127.0.0.1:$((b + 12))
  ]
}
CONF
}

# A server on client port BASE+3 that points at the routes without the
# password, and with the cluster's certificate only when asked (a copied
# certificate must not be enough either).
write_outsider() {
  local b tls=""; b=$(base)
  if [ "${1:-}" = cert ]; then
    tls="tls { cert_file: \"$dir/tls/server.pem\", key_file: \"$dir/tls/server.key\", ca_file: \"$dir/tls/ca.pem\", timeout: 2 }"
  fi
  mkdir -p "$dir/n4"
  cat > "$dir/n4.conf" <<CONF
server_name: careline-outsider
listen: 127.0.0.1:$((b + 3))
http: 127.0.0.1:$((b + 23))
jetstream { store_dir: "$dir/n4" }
cluster {
  name: careline
  listen: 127.0.0.1:$((b + 13))
  $tls
  routes: [
    nats-route://route:guess@127.0.0.1:$((b + 10))
    nats-route://127.0.0.1:$((b + 11))
  ]
}
CONF
}

start_node() { # node
  local n=$1 bin
  bin=$(cat "$dir/nats-server-path")
  [ -f "$dir/n$n.conf" ] || write_config "$n"
  "$bin" -c "$dir/n$n.conf" >> "$dir/n$n.log" 2>&1 &
  echo $! > "$dir/n$n.pid"
}

wait_healthy() { # nodes...
  local n
  for _ in $(seq 1 300); do
    local all=1
    for n in "$@"; do healthy "$n" || all=0; done
    [ "$all" = 1 ] && return 0
    sleep 0.1
  done
  for n in "$@"; do
    healthy "$n" || { say "node $n is not healthy after 30 s; its log:"; tail -n 15 "$dir/n$n.log" >&2; }
  done
  exit 1
}

case "$cmd" in
  start)
    echo "${3:-4231}" > "$dir/base"
    "$here/nats-server.sh" > "$dir/nats-server-path"
    "$here/../nats/dev-certs.sh" "$dir/tls"
    for n in 1 2 3; do write_config "$n"; start_node "$n"; done
    wait_healthy 1 2 3
    say "3-node JetStream cluster up in $dir ($("$(cat "$dir/nats-server-path")" --version))"
    echo "NATS_URL=$(urls)"
    ;;
  kill)
    n=${3:?node}
    kill -9 "$(cat "$dir/n$n.pid")" 2>/dev/null || true
    ;;
  restart)
    n=${3:?node}
    start_node "$n"
    wait_healthy "$n"
    ;;
  stop)
    for n in 1 2 3 4; do
      [ -f "$dir/n$n.pid" ] && kill "$(cat "$dir/n$n.pid")" 2>/dev/null || true
    done
    for n in 1 2 3 4; do
      if [ -f "$dir/n$n.pid" ]; then
        pid=$(cat "$dir/n$n.pid")
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/n$n.pid"
      fi
    done
    ;;
  urls) echo "NATS_URL=$(urls)" ;;
  outsider)
    write_outsider "${3:-}"
    start_node 4
    ;;
  *) usage ;;
esac
