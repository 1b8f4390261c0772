#!/usr/bin/env bash
# The demo's OpenID Connect provider (oidc-provider.mjs, its development
# sign-in page: any username, any password), as deploy/run.sh starts it.
#
#   deploy/web-tools/demo-provider.sh <secret-file> <port> <client_id> <redirect_uri>
#
# The client secret is read from <secret-file> (relative to where this is
# run), made there once when it is missing. Prints "ready <issuer>" once
# the provider listens; runs until killed.
set -euo pipefail
if [ "$#" != 4 ]; then
  echo "usage: deploy/web-tools/demo-provider.sh <secret-file> <port> <client_id> <redirect_uri>" >&2
  exit 2
fi
secret_file=$(realpath -m "$1")
if [ ! -s "$secret_file" ]; then
  mkdir -p "$(dirname "$secret_file")"
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$secret_file")
fi
secret=$(cat "$secret_file")
cd "$(dirname "$0")"
if [ ! -d node_modules/oidc-provider ]; then
  echo "demo-provider: deploy/web-tools has no node_modules: run deploy/ensure-services.sh" >&2
  exit 1
fi
exec node oidc-provider.mjs "$2" "$3" "$secret" "$4"
