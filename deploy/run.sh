#!/usr/bin/env bash
# Runs Careline on this machine, with a demo organisation to try it on:
#   1. makes sure NATS (JetStream) and PostgreSQL are up (ensure-services.sh);
#   2. builds the services;
#   3. starts the command service (gRPC on 127.0.0.1:50051), the inbox
#      service (gRPC on 127.0.0.1:50052) and the audit service (gRPC on
#      127.0.0.1:50053) and the notification service (gRPC on 127.0.0.1:50054,
#      emailing through a local mail sink that keeps every message in
#      target/careline-dev/mail/new/, unless CARELINE_SMTP_HOST is set);
#   4. seeds the demo organisation and writes tokens for everyone in it to
#      target/careline-dev/demo.env;
#   5. follows the event log until Ctrl-C, which stops everything it started.
#
# A development signing secret is created once in target/careline-dev/ when
# CARELINE_TOKEN_SECRET is not set, so demo tokens stay valid across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/ensure-services.sh
cargo build --locked --release -p command-service -p inbox-service -p audit-service -p notify-service -p operator
bin=target/release
dev=target/careline-dev
mkdir -p "$dev"

if [ -z "${CARELINE_TOKEN_SECRET:-}" ]; then
  [ -s "$dev/token-secret" ] || head -c 48 /dev/urandom | base64 | tr -d '\n' > "$dev/token-secret"
  CARELINE_TOKEN_SECRET=$(cat "$dev/token-secret")
  export CARELINE_TOKEN_SECRET
fi
export CARELINE_COMMAND_ADDR=${CARELINE_COMMAND_ADDR:-127.0.0.1:50051}
export CARELINE_INBOX_ADDR=${CARELINE_INBOX_ADDR:-127.0.0.1:50052}
export CARELINE_AUDIT_ADDR=${CARELINE_AUDIT_ADDR:-127.0.0.1:50053}
export CARELINE_NOTIFY_ADDR=${CARELINE_NOTIFY_ADDR:-127.0.0.1:50054}
# The demo's emails follow within seconds (the default waits two minutes to
# gather a thread's messages into one email).
export CARELINE_NOTIFY_COALESCE_SECS=${CARELINE_NOTIFY_COALESCE_SECS:-10}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/careline}

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

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

"$bin/careline-command" > "$dev/command.log" 2>&1 &
pids+=($!)
wait_for_port "the command service" "$CARELINE_COMMAND_ADDR" "$dev/command.log"
echo "careline: command service on $CARELINE_COMMAND_ADDR (log: $dev/command.log)"
"$bin/careline-inbox" > "$dev/inbox.log" 2>&1 &
pids+=($!)
wait_for_port "the inbox service" "$CARELINE_INBOX_ADDR" "$dev/inbox.log"
echo "careline: inbox service on $CARELINE_INBOX_ADDR (log: $dev/inbox.log)"
"$bin/careline-audit" > "$dev/audit.log" 2>&1 &
pids+=($!)
wait_for_port "the audit service" "$CARELINE_AUDIT_ADDR" "$dev/audit.log"
echo "careline: audit service on $CARELINE_AUDIT_ADDR (log: $dev/audit.log)"
if [ -z "${CARELINE_SMTP_HOST:-}" ]; then
  python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c aiosmtpd.handlers.Mailbox "$dev/mail" > "$dev/mail.log" 2>&1 &
  pids+=($!)
  wait_for_port "the local mail sink" 127.0.0.1:2525 "$dev/mail.log"
  export CARELINE_SMTP_HOST=127.0.0.1 CARELINE_SMTP_PORT=2525 CARELINE_SMTP_TLS=none
  echo "careline: local mail sink on 127.0.0.1:2525 (emails land in $dev/mail/new/)"
fi
"$bin/careline-notify" > "$dev/notify.log" 2>&1 &
pids+=($!)
wait_for_port "the notification service" "$CARELINE_NOTIFY_ADDR" "$dev/notify.log"
echo "careline: notification service on $CARELINE_NOTIFY_ADDR (log: $dev/notify.log)"

"$bin/careline" status
echo
CARELINE_COMMAND_URL="http://$CARELINE_COMMAND_ADDR" "$bin/careline" demo --env-file "$dev/demo.env"

cat <<EOF

Try it (in another terminal):
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
  $bin/careline status                 # checkpoints and lag of every projection
  $bin/careline rebuild inbox          # replay the log into a new inbox generation
  $bin/careline rebuild audit          # the same for the audit trail (same chain hashes)

careline: following the event log (Ctrl-C stops everything; content redacted)
EOF
"$bin/careline" tail --from 1
