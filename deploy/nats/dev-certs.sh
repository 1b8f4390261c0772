#!/usr/bin/env bash
# Makes a private CA and a certificate for NATS on this machine (127.0.0.1
# and localhost), for the demo and the tests: deploy/nats/dev-certs.sh DIR
# writes DIR/ca.pem, DIR/server.pem and DIR/server.key (kept when present);
# the certificate also serves as a client's, for the routes between nodes.
# In production, use your organisation's CA instead.
set -euo pipefail
dir=${1:?usage: dev-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -s ca.pem ] && [ -s server.pem ] && [ -s server.key ] && exit 0
command -v openssl >/dev/null || { echo "careline: openssl is needed to make TLS certificates" >&2; exit 1; }
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=Careline development CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
# CARELINE_CERT_IPS: more addresses the certificate is for (space-separated).
sans="IP:127.0.0.1,DNS:localhost"
for ip in ${CARELINE_CERT_IPS:-}; do sans="$sans,IP:$ip"; done
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
