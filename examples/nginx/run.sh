#!/bin/sh
# nginx fetching over TLS with lua-tls, on loopback, in one command:
#   sh examples/nginx/run.sh [PORT]        (from the source tree; default 8080)
# Builds the LuaJIT module, starts the module's own HTTPS server
# (examples/https_server.lua, with a throwaway certificate) as the upstream
# on port 8443, and nginx in the foreground; Ctrl-C stops both. Then:
#   curl 'http://127.0.0.1:8080/fetch?url=https://127.0.0.1:8443/hello'
#   curl 'http://127.0.0.1:8080/over?port=8443&path=/hello'
set -e
PORT=${1:-8080}
ROOT=$(pwd)
[ -f examples/nginx/nginx.conf ] || { echo "run from the lua-tls source tree" >&2; exit 1; }
sh tools/ensure-packages.sh nginx libnginx-mod-http-lua openssl lua5.4 lua-cqueues
make -s LUA_VERSION=jit build
make -s build
DIR=$(mktemp -d /tmp/lua-tls-nginx-example.XXXXXX)
chmod 755 "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$DIR/up.key" -out "$DIR/up.crt" 2>/dev/null
chmod 644 "$DIR/up.key"
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
sed -e "s|@ROOT@|$ROOT|g" -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$PORT|g" \
    -e "s|@CA@|$DIR/up.crt|g" -e "s|@USER@|$USER_LINE|" examples/nginx/nginx.conf > "$DIR/nginx.conf"
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/?.so;;" \
  lua5.4 examples/https_server.lua --port 8443 --cert "$DIR/up.crt" --key "$DIR/up.key" &
UP=$!
NG=""
trap 'kill $UP $NG 2>/dev/null || true; wait; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM
echo "nginx on http://127.0.0.1:$PORT/ (upstream https://127.0.0.1:8443/; nginx resolves no names without a resolver directive); try:"
echo "  curl 'http://127.0.0.1:$PORT/fetch?url=https://127.0.0.1:8443/hello'"
echo "  curl 'http://127.0.0.1:$PORT/over?port=8443&path=/hello'"
nginx -p "$DIR" -c "$DIR/nginx.conf" -g 'daemon off;' &
NG=$!
wait $NG
