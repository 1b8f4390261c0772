#!/usr/bin/env bash
# Validates the manifests here against the Kubernetes API schemas
# (kubernetes-validate from PyPI, installed once into a virtual environment
# under the state folder; its schemas are in the package, nothing is
# fetched at run time).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${CARELINE_STATE_DIR:-/var/lib/careline}
mkdir -p "$state" 2>/dev/null && [ -w "$state" ] || state="$here/../../target/careline-dev"
venv="$state/k8s-venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate \
    || { echo "careline: cannot install kubernetes-validate from PyPI" >&2; exit 1; }
fi
cd "$here"
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.30.0 \
  namespace.yaml nats.yaml command.yaml inbox.yaml audit.yaml notify.yaml web.yaml
