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
#   cluster.sh partition DIR N    cut node N off the network (netns only)
#   cluster.sh heal DIR N         join it again
#
# With CARELINE_CLUSTER_NETNS=1 at start (root, and iproute2's ip), each
# node runs in a network namespace of its own, as a machine of its own:
# addresses 10.X.Y.2-4, joined by a bridge (in a namespace of the
# cluster's) to this host, which is 10.X.Y.1 (X.Y from BASE, so clusters
# on other bases do not meet). A partition takes the node's link down:
# nothing is refused or reset, packets are lost, as when a machine's
# network fails; its peers and its clients must notice by themselves.
# Stopping the cluster removes the namespaces.
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
usage() { sed -n '6,30p' "$0" >&2; exit 2; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

base() { cat "$dir/base" 2>/dev/null || echo 4231; }
netns() { [ -f "$dir/netns" ]; }
subnet() { local t=$(($(base) / 10)); echo "10.$((200 + t / 256 % 50)).$((t % 256))"; }
host() { # node: its address
  if netns; then echo "$(subnet).$(($1 + 1))"; else echo 127.0.0.1; fi
}
ns() { echo "cl$(base)-$1"; } # a namespace of the cluster's: hub, n1, n2, n3
urls() {
  local b; b=$(base)
  echo "nats://$(host 1):$b,nats://$(host 2):$((b + 1)),nats://$(host 3):$((b + 2))"
}

healthy() { # node: whether its monitoring port says JetStream is healthy
  local port=$(($(base) + 20 + $1 - 1))
  curl -fsS --max-time 2 "http://$(host "$1"):$port/healthz" 2>/dev/null | grep -q '"ok"'
}

# The namespaces, the bridge and the links (CARELINE_CLUSTER_NETNS=1).
net_up() {
  [ "$(id -u)" = 0 ] || { say "network namespaces need root"; exit 1; }
  command -v ip >/dev/null || { say "network namespaces need iproute2's ip"; exit 1; }
  local s hub n; s=$(subnet); hub=$(ns hub)
  touch "$dir/netns"
  ip netns add "$hub"
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  ip link add "cl$(base)" type veth peer name p0 netns "$hub"
  ip addr add "$s.1/24" dev "cl$(base)"
  ip link set "cl$(base)" up
  ip -n "$hub" link set p0 master br0 up
  for n in 1 2 3; do
    ip netns add "$(ns "n$n")"
    ip -n "$hub" link add "p$n" type veth peer name eth0 netns "$(ns "n$n")"
    ip -n "$hub" link set "p$n" master br0 up
    ip -n "$(ns "n$n")" addr add "$s.$((n + 1))/24" dev eth0
    ip -n "$(ns "n$n")" link set eth0 up
    ip -n "$(ns "n$n")" link set lo up
  done
}

net_down() {
  local n
  netns || return 0
  for n in 1 2 3; do ip netns del "$(ns "n$n")" 2>/dev/null || true; done
  ip netns del "$(ns hub)" 2>/dev/null || true
  ip link del "cl$(base)" 2>/dev/null || true
  rm -f "$dir/netns"
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
listen: $(host "$n"):$((b + n - 1))
http: $(host "$n"):$((b + 20 + n - 1))
jetstream {
  store_dir: "$dir/n$n"
  # Acknowledge only what is on disk (the default flushes every 2 minutes).
  sync_interval: always
}
$(clients)
cluster {
  name: careline
  listen: $(host "$n"):$((b + 10 + n - 1))
  authorization { user: route, password: "$pw", timeout: 2 }
  # A peer that answers no ping for 3 s is dropped with what it served
  # (its queue subscriptions among them): requests stop going to a node
  # that is cut off, rather than for the default's minutes.
  ping_interval: "1s"
  ping_max: 3
  tls {
    cert_file: "$dir/tls/server.pem"
    key_file: "$dir/tls/server.key"
    ca_file: "$dir/tls/ca.pem"
    verify: true
    timeout: 2
  }
  routes: [
    nats-route://route:$pw@$(host 1):$((b + 10))
    nats-route://route:$pw@$(host 2):$((b + 11))
    nats-route://route:$pw@$(host 3):$((b + 12))
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
  if netns && [ "$n" -le 3 ]; then
    ip netns exec "$(ns "n$n")" "$bin" -c "$dir/n$n.conf" >> "$dir/n$n.log" 2>&1 &
  else
    "$bin" -c "$dir/n$n.conf" >> "$dir/n$n.log" 2>&1 &
  fi
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
    if [ "${CARELINE_CLUSTER_NETNS:-}" = 1 ]; then
      net_up
      CARELINE_CERT_IPS="$(host 1) $(host 2) $(host 3)" "$here/../nats/dev-certs.sh" "$dir/tls"
    else
      "$here/../nats/dev-certs.sh" "$dir/tls"
    fi
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
    net_down
    ;;
  partition|heal)
    n=${3:?node}
    netns || { say "$cmd needs a cluster started with CARELINE_CLUSTER_NETNS=1"; exit 1; }
    if [ "$cmd" = partition ]; then state=down; else state=up; fi
    ip -n "$(ns hub)" link set "p$n" "$state"
    ;;
  urls) echo "NATS_URL=$(urls)" ;;
  outsider)
    write_outsider "${3:-}"
    start_node 4
    ;;
  *) usage ;;
esac
