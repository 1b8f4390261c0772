#!/usr/bin/env bash
# Runs Debian's nginx in front of several instances of the web service, as
# the reverse proxy that terminates TLS:
#   deploy/web/nginx.sh DIR LISTEN CERT KEY UPSTREAM...
# writes DIR/nginx.conf (requests spread over the UPSTREAM host:ports; one
# that does not answer is skipped for 5 s; a page (GET) is tried on the next
# instance, a form (POST) never twice, so nothing is sent twice) and runs
# nginx in the foreground (exec: stop it with SIGTERM). LISTEN is
# host:port. Sessions must be shared (CARELINE_WEB_DATABASE_URL) and
# cookies Secure (CARELINE_WEB_SECURE_COOKIES=true) on every instance.
# No access log: paths carry record ids.
set -euo pipefail
dir=${1:?usage: nginx.sh DIR LISTEN CERT KEY UPSTREAM...}
listen=${2:?listen host:port}
cert=${3:?certificate (PEM)}
key=${4:?private key (PEM)}
shift 4
[ "$#" -ge 1 ] || { echo "careline: nginx.sh needs at least one web instance (host:port)" >&2; exit 2; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "careline: nginx is missing: run 'apt-get install nginx' as root" >&2; exit 1; }
mkdir -p "$dir/tmp"
servers=""
for upstream in "$@"; do
  servers="$servers    server $upstream max_fails=1 fail_timeout=5s;
"
done
if [ "$(id -u)" = 0 ]; then
  # Workers as root's default 'nobody', who must write the temporary files.
  chown -R nobody "$dir/tmp" 2>/dev/null || true
fi
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  server_tokens off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  # The largest form the pages take is 256 KiB.
  client_max_body_size 300k;
  client_body_buffer_size 300k;
  upstream careline_web {
$servers    keepalive 32;
  }
  server {
    listen $listen ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:careline:10m;
    add_header Strict-Transport-Security "max-age=31536000" always;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto https;
    proxy_connect_timeout 2s;
    # A page is tried on the next instance when one is down; a POST is not
    # (nginx never retries one unless told to), so a message is not sent twice.
    proxy_next_upstream error timeout http_502 http_503;
    location / {
      proxy_pass http://careline_web;
    }
    # Live updates (server-sent events): streamed as they come.
    location = /live {
      proxy_pass http://careline_web;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
CONF
exec "$nginx" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
