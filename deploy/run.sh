#!/usr/bin/env bash
# Runs Careline on this machine: makes sure NATS and PostgreSQL are up,
# builds, creates (or checks) the event stream, shows its status, and then
# follows the event log until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/ensure-services.sh
cargo build --locked --release -p operator
bin=target/release/careline

"$bin" status
echo
echo "careline: following the event log (Ctrl-C to stop; content redacted)"
exec "$bin" tail --from 1
