#!/usr/bin/env bash
# Starts (or stops) the servers the remote-scene tests use, on 127.0.0.1:
#   - nginx serving DIR/www with range requests (and DIR/www again under
#     /slow/, throttled to 32 KB/s per connection, for tests that stop the
#     server mid-run), access log in DIR/access.log
#     ("METHOD URI STATUS BYTES RANGE" per request);
#   - `rustac serve`, a STAC API over the items in DIR/stac/*.json (item
#     collections or items), when that folder exists.
#
#   scripts/test_servers.sh start DIR [NGINX_PORT [STAC_PORT]]
#   scripts/test_servers.sh stop DIR
#
# Ports default to free ones; the ones used are written to DIR/nginx.port
# and DIR/stac.port. `start` returns once both servers answer. `stop` is safe
# to run twice. Needs nginx (Debian package) and rustac (PyPI), see
# scripts/setup-tests.sh.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR [NGINX_PORT [STAC_PORT]]" >&2
  exit 2
fi

free_port() {
  # Binds port 0 and prints the port the kernel chose.
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() {
  # Polls URL until it answers (any HTTP status), 20 s at most.
  local url=$1
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  echo "test_servers.sh: $url does not answer" >&2
  return 1
}

stop_pid_file() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

find_rustac() {
  if command -v rustac >/dev/null 2>&1; then command -v rustac; return; fi
  for p in /usr/local/bin/rustac "$HOME/.local/bin/rustac"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

case "$cmd" in
start)
  mkdir -p "$dir/www" "$dir/nginx-tmp"
  dir=$(cd "$dir" && pwd)
  nport=${3:-$(free_port)}
  echo "$nport" > "$dir/nginx.port"
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  user_line=""
  # Workers would otherwise run as nobody, who cannot read a private temp dir.
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat > "$dir/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 256; }
http {
  types { image/tiff tif tiff; application/json json; application/geo+json geojson; }
  default_type application/octet-stream;
  log_format ranges '\$request_method \$uri \$status \$body_bytes_sent "\$http_range"';
  access_log $dir/access.log ranges;
  client_body_temp_path $dir/nginx-tmp/body;
  proxy_temp_path $dir/nginx-tmp/proxy;
  fastcgi_temp_path $dir/nginx-tmp/fastcgi;
  uwsgi_temp_path $dir/nginx-tmp/uwsgi;
  scgi_temp_path $dir/nginx-tmp/scgi;
  sendfile on;
  server {
    listen 127.0.0.1:$nport;
    root $dir/www;
    location /slow/ {
      alias $dir/www/;
      limit_rate 32k;
    }
  }
}
EOF
  "$nginx_bin" -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx-error.log"
  wait_for "http://127.0.0.1:$nport/"
  if [ -d "$dir/stac" ]; then
    sport=${4:-$(free_port)}
    echo "$sport" > "$dir/stac.port"
    rustac_bin=$(find_rustac) || { echo "test_servers.sh: rustac not found (pip install rustac)" >&2; exit 1; }
    shopt -s nullglob
    hrefs=("$dir"/stac/*.json)
    "$rustac_bin" serve --addr "127.0.0.1:$sport" --create-collections "${hrefs[@]}" \
      > "$dir/rustac.log" 2>&1 &
    echo $! > "$dir/rustac.pid"
    wait_for "http://127.0.0.1:$sport/"
  fi
  echo "test_servers.sh: nginx on 127.0.0.1:$nport${sport:+, rustac on 127.0.0.1:$sport}"
  ;;
stop)
  stop_pid_file "$dir/rustac.pid"
  stop_pid_file "$dir/nginx.pid"
  ;;
*)
  echo "usage: $0 start|stop DIR [NGINX_PORT [STAC_PORT]]" >&2
  exit 2
  ;;
esac
