#!/bin/sh
# HAProxy 2.6 fetching over TLS with lua-tls, on loopback, in one command:
#   sh examples/haproxy/run.sh [PORT]      (from the source tree; default 8081)
# Builds the Lua 5.3 module (HAProxy links Lua 5.3), starts the module's own
# HTTPS server (examples/https_server.lua, throwaway certificate) as the
# upstream on port 8443, and HAProxy in the foreground; Ctrl-C stops both. Then:
#   curl 'http://127.0.0.1:8081/over?port=8443&path=/hello'
#   curl 'http://127.0.0.1:8081/https?port=8443&path=/hello'
set -e
PORT=${1:-8081}
ROOT=$(pwd)
[ -f examples/haproxy/haproxy.cfg ] || { echo "run from the lua-tls source tree" >&2; exit 1; }
sh tools/ensure-packages.sh haproxy openssl lua5.4 lua-cqueues liblua5.3-dev
make -s LUA_VERSION=5.3 build
make -s build
DIR=$(mktemp -d /tmp/lua-tls-haproxy-example.XXXXXX)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$DIR/up.key" -out "$DIR/up.crt" 2>/dev/null
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/?.so;;" \
  lua5.4 examples/https_server.lua --port 8443 --cert "$DIR/up.crt" --key "$DIR/up.key" &
UP=$!
HP=""
trap 'kill $UP $HP 2>/dev/null || true; wait; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM
echo "HAProxy on http://127.0.0.1:$PORT/ (upstream https://127.0.0.1:8443/); try:"
echo "  curl 'http://127.0.0.1:$PORT/over?port=8443&path=/hello'"
echo "  curl 'http://127.0.0.1:$PORT/https?port=8443&path=/hello'"
LUA_TLS_ROOT="$ROOT" LUA_TLS_CPATH="$ROOT/build/5.3/?.so" LUA_TLS_CA="$DIR/up.crt" \
  LISTEN_PORT="$PORT" haproxy -db -f examples/haproxy/haproxy.cfg &
HP=$!
wait $HP
