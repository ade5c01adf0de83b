#!/bin/sh
# make testssl: scan the module's default server with testssl.sh and check
# the report (hardening/testssl-check.lua). The server is examples/https_server.lua
# with no TLS options, on a free loopback port, with a throwaway RSA
# certificate (RSA, so static-RSA key exchange would be possible if the
# defaults allowed it). Everything lives in build/testssl and the server is
# stopped on every exit path.
set -u
LUA=${LUA:-lua5.4}
dir=build/testssl
rm -rf "$dir" && mkdir -p "$dir" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1 \
  || { echo "testssl: cannot make a certificate" >&2; exit 1; }
port=$($LUA -e 'print((require "support.proc").free_port())') || exit 1
$LUA examples/https_server.lua --host 127.0.0.1 --port "$port" \
  --cert "$dir/cert.pem" --key "$dir/key.pem" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT INT TERM
i=0
until grep -q "listening on" "$dir/server.log" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
    echo "testssl: the server did not start:" >&2; cat "$dir/server.log" >&2; exit 1
  fi
  sleep 0.1
done
echo "testssl: scanning the module's default server on 127.0.0.1:$port (about a minute)"
# -p protocols, -E every suite per protocol, -U vulnerabilities
timeout 600 testssl --quiet --color 0 --warnings batch --ip 127.0.0.1 \
  -p -E -U --jsonfile "$dir/scan.json" "localhost:$port" >"$dir/scan.txt" 2>&1
rc=$?
if [ ! -s "$dir/scan.json" ]; then
  echo "testssl: no report (testssl exited $rc); its output:" >&2
  cat "$dir/scan.txt" >&2
  exit 1
fi
$LUA hardening/testssl-check.lua "$dir/scan.json"
