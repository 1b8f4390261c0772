#!/usr/bin/env bash
# Runs every check and test of Careline against the real NATS and
# PostgreSQL (started by ensure-services.sh when they are not running).
# Each test makes its own stream and database and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/ensure-services.sh
# The fault drills (tests/drills.rs) run a 3-node cluster of a current
# nats-server (2.12 or later; installed from PyPI when the one found is older).
deploy/cluster/nats-server.sh > /dev/null
# The Kubernetes manifests, against the API's schemas.
deploy/kubernetes/validate.sh > /dev/null
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
