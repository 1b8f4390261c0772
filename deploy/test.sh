#!/usr/bin/env bash
# Runs every check and test of Careline against the real NATS and
# PostgreSQL (started by ensure-services.sh when they are not running).
# Each test makes its own stream and database and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/ensure-services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
