#!/usr/bin/env bash
# Runs Careline on this machine, with a demo organisation to try it on:
#   1. makes sure NATS (JetStream) and PostgreSQL are up (ensure-services.sh),
#      and starts the demo's own NATS on 127.0.0.1:4223 with TLS (a CA of
#      its own, deploy/nats/dev-certs.sh) and a user per service
#      (deploy/nats/users.conf), unless NATS_URL is set;
#   2. builds the services;
#   3. starts the command service (gRPC on 127.0.0.1:50051), the inbox
#      service (gRPC on 127.0.0.1:50052) and the audit service (gRPC on
#      127.0.0.1:50053) and the notification service (gRPC on 127.0.0.1:50054,
#      emailing through a local mail sink that keeps every message in
#      target/careline-dev/mail/new/, unless CARELINE_SMTP_HOST is set);
#   4. seeds the demo organisation and writes tokens for everyone in it to
#      target/careline-dev/demo.env;
#   5. starts the web pages on 127.0.0.1:8080 (sessions in PostgreSQL),
#      with demo sign-in and a demo OpenID Connect provider on
#      127.0.0.1:8091 (when deploy/web-tools has its Node.js packages, which
#      ensure-services.sh installs);
#   6. prints how to sign in, and runs until Ctrl-C or SIGTERM, which stop
#      everything it started. The event log goes to target/careline-dev/events.log
#      (--follow prints it here too, after the instructions).
#
# For tests and packagers: CARELINE_BIN_DIR runs binaries already built
# there instead of building; CARELINE_DEV_DIR moves target/careline-dev;
# CARELINE_DEMO_NATS_PORT (4223), CARELINE_DEMO_SMTP_PORT (2525) and
# CARELINE_DEMO_OIDC_PORT (8091) move the demo's own servers.
#
# With --cluster the log is on a 3-node JetStream cluster on loopback
# instead (deploy/cluster/cluster.sh: a current nats-server, every write
# on disk before it is acknowledged, 3 replicas, the same users and TLS,
# routes authenticated and on mutual TLS; its stores in
# target/careline-dev/cluster, read models in database careline_cluster),
# and every service runs twice (the second instance on the ports ten above
# the first's), the web pages behind nginx terminating TLS on
# https://127.0.0.1:8443 (deploy/web/nginx.sh).
#
# A development token key pair is created once in target/careline-dev/ when
# CARELINE_TOKEN_SIGNING_KEY is not set, so demo tokens stay valid across
# runs; the command service (which signs people in) and the demo seeder
# hold its private key, every other service only its public key.
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=0
follow=0
for arg in "$@"; do
  case "$arg" in
    --cluster) cluster=1 ;;
    --follow) follow=1 ;;
    *) echo "usage: deploy/run.sh [--cluster] [--follow]" >&2; exit 2 ;;
  esac
done
if [ "$cluster" = 1 ]; then
  export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/careline_cluster}
fi

# With its own NATS (below) the demo keeps its own log, under
# target/careline-dev, and so its own read models.
if [ -z "${NATS_URL:-}" ]; then
  export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/careline_demo}
fi
deploy/ensure-services.sh
if [ -n "${CARELINE_BIN_DIR:-}" ]; then
  bin=$(realpath "$CARELINE_BIN_DIR")
else
  # The whole workspace, as deploy/test.sh builds it: the same
  # package selection unifies features the same way, so a second build of
  # either kind is a no-op.
  cargo build --locked --release --workspace
  bin=$PWD/target/release
fi
# Absolute: the demo identity provider starts in another directory.
dev=$(realpath -m "${CARELINE_DEV_DIR:-target/careline-dev}")
mkdir -p "$dev"
nats_port=${CARELINE_DEMO_NATS_PORT:-4223}
smtp_port=${CARELINE_DEMO_SMTP_PORT:-2525}

if [ -z "${CARELINE_TOKEN_SIGNING_KEY:-}" ]; then
  if [ ! -s "$dev/token-keys" ]; then
    (umask 077; "$bin/careline" keys --kid dev > "$dev/token-keys")
  fi
  # Only the command service and the demo seeder get the private key.
  . "$dev/token-keys"
  export CARELINE_TOKEN_PUBLIC_KEYS
fi
signing_key=$CARELINE_TOKEN_SIGNING_KEY
unset CARELINE_TOKEN_SIGNING_KEY
# Email verification links: the notification service signs them, the
# command service checks them.
if [ -z "${CARELINE_EMAIL_LINK_SIGNING_KEY:-}" ]; then
  if [ ! -s "$dev/link-keys" ]; then
    (umask 077; "$bin/careline" keys --email-links --kid dev-links > "$dev/link-keys")
  fi
  . "$dev/link-keys"
  export CARELINE_EMAIL_LINK_PUBLIC_KEYS
fi
link_key=$CARELINE_EMAIL_LINK_SIGNING_KEY
unset CARELINE_EMAIL_LINK_SIGNING_KEY
# The hospital systems' credentials: the CLI issues them (the demo's
# Appointments system), the command service checks them.
if [ -z "${CARELINE_SYSTEM_TOKEN_SIGNING_KEY:-}" ]; then
  if [ ! -s "$dev/system-keys" ]; then
    (umask 077; "$bin/careline" keys --systems --kid dev-systems > "$dev/system-keys")
  fi
  . "$dev/system-keys"
  export CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS
fi
system_key=$CARELINE_SYSTEM_TOKEN_SIGNING_KEY
unset CARELINE_SYSTEM_TOKEN_SIGNING_KEY
if [ -z "${CARELINE_TOKEN_PUBLIC_KEYS:-}" ]; then
  echo "careline: set CARELINE_TOKEN_PUBLIC_KEYS to the public key of CARELINE_TOKEN_SIGNING_KEY" >&2
  exit 1
fi
# Signed events: the command service signs what it records, each read
# service the reads it records, each with a key of its own; every service
# and the CLI check every event against the four public keys.
event_public=""
for who in command inbox audit notify; do
  if [ ! -s "$dev/event-key-$who" ]; then
    writer=reads
    if [ "$who" = command ]; then writer=command; fi
    (umask 077; "$bin/careline" keys --events --writer "$writer" --kid "dev-$who" > "$dev/event-key-$who")
  fi
  line=$(grep '^CARELINE_EVENT_PUBLIC_KEYS=' "$dev/event-key-$who")
  event_public="$event_public${event_public:+,}${line#CARELINE_EVENT_PUBLIC_KEYS=}"
done
export CARELINE_EVENT_PUBLIC_KEYS=$event_public
event_key() { # NAME: that service's private event key
  grep '^CARELINE_EVENT_SIGNING_KEY=' "$dev/event-key-$1" | cut -d= -f2-
}
export CARELINE_COMMAND_ADDR=${CARELINE_COMMAND_ADDR:-127.0.0.1:50051}
export CARELINE_INBOX_ADDR=${CARELINE_INBOX_ADDR:-127.0.0.1:50052}
export CARELINE_AUDIT_ADDR=${CARELINE_AUDIT_ADDR:-127.0.0.1:50053}
export CARELINE_NOTIFY_ADDR=${CARELINE_NOTIFY_ADDR:-127.0.0.1:50054}
# Each service's /metrics, /livez and /readyz, on an address of its own.
export CARELINE_COMMAND_METRICS_ADDR=${CARELINE_COMMAND_METRICS_ADDR:-127.0.0.1:9151}
export CARELINE_INBOX_METRICS_ADDR=${CARELINE_INBOX_METRICS_ADDR:-127.0.0.1:9152}
export CARELINE_AUDIT_METRICS_ADDR=${CARELINE_AUDIT_METRICS_ADDR:-127.0.0.1:9153}
export CARELINE_NOTIFY_METRICS_ADDR=${CARELINE_NOTIFY_METRICS_ADDR:-127.0.0.1:9154}
export CARELINE_WEB_METRICS_ADDR=${CARELINE_WEB_METRICS_ADDR:-127.0.0.1:9155}
# The demo's emails follow within seconds (the default waits two minutes to
# gather a thread's messages into one email).
export CARELINE_NOTIFY_COALESCE_SECS=${CARELINE_NOTIFY_COALESCE_SECS:-10}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/careline}

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$cluster" = 1 ]; then deploy/cluster/cluster.sh stop "$dev/cluster"; fi
  echo "careline: stopped"
}
# Ctrl-C and SIGTERM stop everything this started, at once: nothing runs
# in the foreground (a foreground child would hold the signal until it
# ended), and `wait` below returns on a signal.
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for_port() { # name host:port log
  local host=${2%:*} port=${2##*:}
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "careline: $1 did not start on $2; its log:" >&2
  tail -n 20 "$3" >&2
  exit 1
}

# The demo's own NATS (or, with --cluster, its own cluster), with one user
# per service (deploy/nats/users.conf), unless NATS_URL names another: only
# the command service may write domain events, and nobody but admin may
# edit the log. Every connection is TLS. Passwords are made once.
own_nats=0
if [ "$cluster" = 1 ] || [ -z "${NATS_URL:-}" ]; then own_nats=1; fi
if [ "$own_nats" = 1 ]; then
  users=(admin command inbox audit notify reader)
  # nats-server reads a variable's value as configuration: one that starts
  # with a digit is taken for a number and refused, so each starts with a
  # letter (files made before this are made again).
  if [ ! -s "$dev/nats-passwords" ] || grep -qE '_PASSWORD=[0-9]' "$dev/nats-passwords"; then
    for u in "${users[@]}"; do
      echo "CARELINE_NATS_${u^^}_PASSWORD=p$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
    done > "$dev/nats-passwords"
    chmod 600 "$dev/nats-passwords"
  fi
  set -a; . "$dev/nats-passwords"; set +a
fi
if [ "$cluster" = 1 ]; then
  # The cluster's nodes include the users (and then serve clients on TLS,
  # with the cluster's own CA); its routes are authenticated and on mutual
  # TLS (deploy/cluster/cluster.sh).
  mkdir -p "$dev/cluster"
  cp deploy/nats/users.conf "$dev/cluster/users.conf"
  cluster_url=$(deploy/cluster/cluster.sh start "$dev/cluster" | sed -n 's/^NATS_URL=//p')
  export NATS_URL=$cluster_url CARELINE_STREAM_REPLICAS=3 NATS_CA="$dev/cluster/tls/ca.pem"
  echo "careline: the log is on a 3-node JetStream cluster, TLS and a user per service: $NATS_URL (logs: $dev/cluster/n*.log)"
elif [ -z "${NATS_URL:-}" ]; then
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p "$dev/nats"
  cp deploy/nats/users.conf "$dev/nats/users.conf"
  # A CA of the demo's own (made once).
  deploy/nats/dev-certs.sh "$dev/tls"
  printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s" }\ninclude users.conf\ntls { cert_file: "%s/server.pem", key_file: "%s/server.key", timeout: 2 }\n' \
    "$nats_port" "$dev/nats/store" "$dev/tls" "$dev/tls" > "$dev/nats/nats.conf"
  export NATS_CA="$dev/tls/ca.pem"
  "$nats_bin" -c "$dev/nats/nats.conf" > "$dev/nats.log" 2>&1 &
  pids+=($!)
  wait_for_port "NATS" "127.0.0.1:$nats_port" "$dev/nats.log"
  export NATS_URL=nats://127.0.0.1:$nats_port
  echo "careline: NATS with TLS and a user per service on $NATS_URL (log: $dev/nats.log)"
fi
if [ "$own_nats" = 1 ]; then
  printf 'export NATS_URL=%s NATS_CA=%s NATS_USER=reader NATS_PASSWORD=%s DATABASE_URL=%s\n' \
    "$NATS_URL" "$NATS_CA" "$CARELINE_NATS_READER_PASSWORD" "$DATABASE_URL" > "$dev/nats-reader.env"
  chmod 600 "$dev/nats-reader.env"
  as() { # user: the environment that connects as that NATS user
    local var="CARELINE_NATS_${1^^}_PASSWORD"
    echo "NATS_USER=$1 NATS_PASSWORD=${!var}"
  }
else
  as() { :; }
fi
# The deployment's admin creates the stream, the command-id bucket and the
# bucket of files
# (on a cluster just started, once its streams have elected leaders).
for _ in $(seq 1 30); do
  env $(as admin) "$bin/careline" status --log > /dev/null 2>&1 && break
  sleep 1
done
env $(as admin) "$bin/careline" status --log > /dev/null
# A demo log recorded before events were signed keeps its older events
# readable: signatures are checked from the position after its head when
# this version first ran.
if [ ! -s "$dev/event-signed-from-$cluster" ]; then
  head=$(env $(as admin) "$bin/careline" status --log | sed -n 's/.*(head position \([0-9]*\)).*/\1/p')
  echo $(( ${head:-0} + 1 )) > "$dev/event-signed-from-$cluster"
fi
export CARELINE_EVENT_SIGNED_FROM
CARELINE_EVENT_SIGNED_FROM=$(cat "$dev/event-signed-from-$cluster")

# One instance of each service; with --cluster two, the second on the
# ports ten above the first's (gRPC and metrics), and the callers (the web
# service, the CLI) spread their calls over both.
instances=1
if [ "$cluster" = 1 ]; then instances=2; fi
instance_addr() { # host:port N: instance N's address
  if [ "$2" = 1 ]; then echo "$1"; else echo "${1%:*}:$(( ${1##*:} + 10 ))"; fi
}
urls() { # NAME: the comma-separated URLs of every instance of service NAME
  local var="CARELINE_${1^^}_ADDR" list="" n
  for n in $(seq 1 "$instances"); do list="$list${list:+,}http://$(instance_addr "${!var}" "$n")"; done
  echo "$list"
}
start_service() { # NAME USER BINARY [VAR=VALUE...]: every instance of a service
  local name=$1 user=$2 binary=$3 n addr metrics log
  shift 3
  local addr_var="CARELINE_${name^^}_ADDR" metrics_var="CARELINE_${name^^}_METRICS_ADDR"
  for n in $(seq 1 "$instances"); do
    addr=$(instance_addr "${!addr_var}" "$n")
    metrics=$(instance_addr "${!metrics_var}" "$n")
    log="$dev/$name.log"
    if [ "$n" != 1 ]; then log="$dev/$name-$n.log"; fi
    env $(as "$user") "$addr_var=$addr" "$metrics_var=$metrics" "$@" "$bin/$binary" > "$log" 2>&1 &
    pids+=($!)
    wait_for_port "the $name service" "$addr" "$log"
    echo "careline: $name service on $addr (metrics on $metrics; log: $log)"
  done
}
# The command service signs people in: it holds the token key (the web
# holds none), accepts the demo's people by their id (CARELINE_DEMO_SIGN_IN,
# a demo only), and checks the demo identity provider's ID tokens.
have_oidc=0
oidc_port=${CARELINE_DEMO_OIDC_PORT:-8091}
sign_in_env=(CARELINE_TOKEN_SIGNING_KEY="$signing_key" CARELINE_DEMO_SIGN_IN=on)
if command -v node >/dev/null 2>&1 && [ -d deploy/web-tools/node_modules/oidc-provider ]; then
  have_oidc=1
  sign_in_env+=(CARELINE_OIDC_ISSUER="http://127.0.0.1:$oidc_port" CARELINE_OIDC_CLIENT_ID=careline-web)
fi
start_service command command careline-command CARELINE_EVENT_SIGNING_KEY="$(event_key command)" \
  "${sign_in_env[@]}"
start_service inbox inbox careline-inbox CARELINE_EVENT_SIGNING_KEY="$(event_key inbox)"
start_service audit audit careline-audit CARELINE_EVENT_SIGNING_KEY="$(event_key audit)"
if [ -z "${CARELINE_SMTP_HOST:-}" ]; then
  python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$dev/mail" > "$dev/mail.log" 2>&1 &
  pids+=($!)
  wait_for_port "the local mail sink" "127.0.0.1:$smtp_port" "$dev/mail.log"
  export CARELINE_SMTP_HOST=127.0.0.1 CARELINE_SMTP_PORT=$smtp_port CARELINE_SMTP_TLS=none
  echo "careline: local mail sink on 127.0.0.1:$smtp_port (emails land in $dev/mail/new/)"
fi
# Where people reach the web pages: the emails' links, and the web
# service's own (the same host name, or the session cookie is not sent).
export CARELINE_WEB_ADDR=${CARELINE_WEB_ADDR:-127.0.0.1:8080}
web_url="http://$CARELINE_WEB_ADDR"
if [ "$cluster" = 1 ]; then web_url="https://127.0.0.1:8443"; fi
export CARELINE_BASE_URL=${CARELINE_BASE_URL:-$web_url}
web_url=$CARELINE_BASE_URL
start_service notify notify careline-notify CARELINE_EMAIL_LINK_SIGNING_KEY="$link_key" \
  CARELINE_EVENT_SIGNING_KEY="$(event_key notify)"

# Once every projection has a service running it (status says what is
# wrong until then).
for _ in $(seq 1 50); do
  env $(as reader) "$bin/careline" status > /dev/null 2>&1 && break
  sleep 0.2
done
env $(as reader) "$bin/careline" status || true
echo
# The demo's admin is the log's first admin: the same id on every run.
[ -s "$dev/admin-id" ] || cat /proc/sys/kernel/random/uuid > "$dev/admin-id"
CARELINE_DEMO_ADMIN=$(cat "$dev/admin-id") \
CARELINE_TOKEN_SIGNING_KEY=$signing_key CARELINE_EMAIL_LINK_SIGNING_KEY=$link_key \
CARELINE_SYSTEM_TOKEN_SIGNING_KEY=$system_key \
CARELINE_COMMAND_URL="$(urls command)" "$bin/careline" demo --env-file "$dev/demo.env" \
  --people-file "$dev/demo-people.tsv"

# The web pages, with demo sign-in (every page says it is on); sessions in
# PostgreSQL, so a restarted web service keeps them. With --cluster, two
# instances (127.0.0.1:8081 and :8082) behind nginx terminating TLS on
# 127.0.0.1:8443 (deploy/web/nginx.sh; the certificate of the cluster's CA).
web_addrs=("$CARELINE_WEB_ADDR")
web_env=(CARELINE_WEB_DATABASE_URL="$DATABASE_URL")
if [ "$cluster" = 1 ]; then
  web_addrs=(127.0.0.1:8081 127.0.0.1:8082)
  web_env+=(CARELINE_WEB_SECURE_COOKIES=true)
fi
# And a demo identity provider (deploy/web-tools/oidc-provider.mjs: its
# development sign-in takes any username and password), to try the real
# sign-in: sign up with the renal join code, or link by a registration email.
oidc_env=()
oidc_note=""
if [ "$have_oidc" = 1 ]; then
  callback="$web_url/sign-in/callback"
  deploy/web-tools/demo-provider.sh "$dev/oidc-secret" "$oidc_port" careline-web "$callback" \
    > "$dev/oidc.log" 2>&1 &
  pids+=($!)
  wait_for_port "the demo identity provider" "127.0.0.1:$oidc_port" "$dev/oidc.log"
  oidc_env=(CARELINE_WEB_OIDC_ISSUER="http://127.0.0.1:$oidc_port" CARELINE_WEB_OIDC_CLIENT_ID=careline-web
    CARELINE_WEB_OIDC_CLIENT_SECRET="$(cat "$dev/oidc-secret")" CARELINE_WEB_OIDC_REDIRECT_URI="$callback"
    CARELINE_WEB_OIDC_LABEL="Sign in with the demo identity provider")
  oidc_note="
Or \"Sign in with the demo identity provider\" (any username, any password): a new
username is not linked to anyone; enter the renal join code printed above to sign up."
  echo "careline: demo identity provider on http://127.0.0.1:$oidc_port (log: $dev/oidc.log)"
fi
n=0
for addr in "${web_addrs[@]}"; do
  n=$((n + 1))
  log="$dev/web.log"
  if [ "$n" != 1 ]; then log="$dev/web-$n.log"; fi
  env "${oidc_env[@]}" "${web_env[@]}" CARELINE_WEB_ADDR="$addr" \
    CARELINE_WEB_METRICS_ADDR="$(instance_addr "$CARELINE_WEB_METRICS_ADDR" "$n")" \
    CARELINE_WEB_DEMO_PEOPLE="$dev/demo-people.tsv" \
    CARELINE_COMMAND_URL="$(urls command)" CARELINE_INBOX_URL="$(urls inbox)" \
    CARELINE_AUDIT_URL="$(urls audit)" CARELINE_NOTIFY_URL="$(urls notify)" "$bin/careline-web" > "$log" 2>&1 &
  pids+=($!)
  wait_for_port "the web service" "$addr" "$log"
  echo "careline: web pages on http://$addr (demo sign-in; log: $log)"
done
ca_note=""
if [ "$cluster" = 1 ]; then
  deploy/web/nginx.sh "$dev/nginx" 127.0.0.1:8443 "$dev/cluster/tls/server.pem" \
    "$dev/cluster/tls/server.key" "${web_addrs[@]}" > "$dev/nginx.log" 2>&1 &
  pids+=($!)
  wait_for_port "nginx" 127.0.0.1:8443 "$dev/nginx.log"
  echo "careline: nginx terminating TLS on 127.0.0.1:8443 in front of both (log: $dev/nginx/error.log)"
  ca_note="
Its certificate is from the demo cluster's own CA: trust $dev/cluster/tls/ca.pem,
or accept the browser's warning."
fi

instructions() {
cat <<EOF

Open $web_url in a browser and sign in as Pat Jones (a patient).$ca_note$oidc_note

Or try the API (in another terminal):
  source $dev/demo.env
  grpcurl -plaintext $CARELINE_COMMAND_ADDR list
  grpcurl -plaintext -H "authorization: Bearer \$NINA_PATEL_TOKEN" \\
    -d "{\"command_id\":\"\$(cat /proc/sys/kernel/random/uuid)\",\"thread_id\":\"\$THREAD\",\"body\":\"One litre on Sunday, please.\"}" \\
    $CARELINE_COMMAND_ADDR careline.command.v1.CommandService/PostMessage
  grpcurl -plaintext -H "authorization: Bearer \$NINA_PATEL_TOKEN" -d '{}' \\
    $CARELINE_INBOX_ADDR careline.inbox.v1.InboxService/MyInbox
  grpcurl -plaintext -H "authorization: Bearer \$AUDITOR_TOKEN" \\
    -d "{\"patient_id\":\"\$PAT_JONES_ID\"}" $CARELINE_AUDIT_ADDR careline.audit.v1.AuditService/RecordTrail
  grpcurl -plaintext -H "authorization: Bearer \$NINA_PATEL_TOKEN" -d "{\"thread_id\":\"\$THREAD\"}" \\
    $CARELINE_NOTIFY_ADDR careline.notify.v1.NotificationService/ThreadNotifications
  ls $dev/mail/new/                    # the emails sent (no clinical content in them)
  source $dev/nats-reader.env          # the CLI reads the log as NATS user reader
  $bin/careline status                 # checkpoints and lag of every projection
  $bin/careline rebuild inbox          # replay the log into a new inbox generation
  $bin/careline rebuild audit          # the same for the audit trail (same chain hashes)

EOF
}
# The event log, content redacted, to a file (and here with --follow).
env $(as reader) "$bin/careline" tail --from 1 > "$dev/events.log" 2>&1 &
pids+=($!)
if [ "$follow" = 1 ]; then
  tail -n +1 -f "$dev/events.log" &
  pids+=($!)
fi
instructions
if [ "$follow" = 1 ]; then
  echo "careline: the event log follows (content redacted); Ctrl-C stops everything"
else
  echo "careline: running; the event log is in $dev/events.log (--follow prints it here). Ctrl-C stops everything."
fi
wait
