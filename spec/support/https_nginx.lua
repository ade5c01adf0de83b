-- nginx from Debian for the HTTPS client specs: a generated config in a
-- temporary directory, run in the foreground (daemon off) as a background
-- process on free loopback ports, over the test PKI. Serves:
--   https  port: static files (keep-alive), /chunked/* (SSI: streamed
--                chunked), redirects /r301 /r302 /r303 /r307 /r308 to
--                /method, /loop, /to-http, /method (echoes method and
--                Content-Length), /upload/* (WebDAV PUT), /nocontent (204),
--                /auth (echoes Authorization), /to-auth, /to-http-auth
--   http   port: the same files in plain HTTP (redirect-to-http target)
--   mtls   port: requires a client certificate from the test CA
--   h2     port: the https site again, with http2 offered through ALPN
-- access.log has one "CONNECTION-SERIAL REQUEST-LINE" line per request (HTTP/2.0 at its end on h2).

local proc = require "support.proc"

local nginx = {}

-- not pki.sh: that one sends output to /dev/null, which would override
-- the redirections into files below
local function sh(cmd)
  local ok = os.execute(cmd)
  if not ok then error("https_nginx: command failed: " .. cmd) end
end

local function sha256sum(path)
  local p = io.popen("sha256sum " .. path)
  local h = p:read("*a"):match("^(%x+)")
  p:close()
  return h
end
nginx.sha256sum = sha256sum

-- nginx drops to "nobody" when started as root; the temp dir is root's
local function is_root()
  local p = io.popen("id -u")
  local uid = p:read("*l")
  p:close()
  return uid == "0"
end
nginx.is_root = is_root

-- nginx.start(pki) -> handle { dir, port, http_port, mtls_port, www, stop() }
-- (pki: spec/support/pki.lua after pki.setup())
function nginx.start(pki)
  local write = pki.write
  local p = io.popen("mktemp -d /tmp/lua-tls-nginx.XXXXXX")
  local dir = p:read("*l")
  p:close()
  sh("chmod 755 " .. dir)
  local www = dir .. "/www"
  sh(("mkdir -p %s/chunked %s/upload %s/tmp"):format(www, www, dir))
  write(www .. "/hello.txt", "hello from nginx\n")
  write(www .. "/data.json", '{"name":"lua-tls","list":[1,2,3],"ok":true}\n')
  -- 20 MiB of random bytes, and random text streamed chunked through SSI
  sh(("head -c 20971520 /dev/urandom > %s/big.bin"):format(www))
  sh(("head -c 3000000 /dev/urandom | base64 > %s/chunked/big.txt"):format(www))
  -- gzip on the fly (location /gz/)
  sh(("mkdir -p %s/gz && cp %s/chunked/big.txt %s/gz/big.txt"):format(www, www, www))
  write(www .. "/chunked/small.txt", "a small chunked body\n")
  sh(("chmod -R a+rwX %s"):format(dir))
  local port, http_port, mtls_port = proc.free_port(), proc.free_port(), proc.free_port()
  local h2_port = proc.free_port()
  local ssl = ([[
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
]]):format(pki.server.cert, pki.server.key)
  local redirects = {}
  for _, code in ipairs { 301, 302, 303, 307, 308 } do
    redirects[#redirects + 1] = ("    location = /r%d { return %d /method; }"):format(code, code)
  end
  -- the main site, served on port (HTTP/1.1) and on h2_port (http2 offered by ALPN)
  local site = ([[
%s
    root %s;
    location /chunked/ { ssi on; ssi_types *; }
    location /upload/ { dav_methods PUT DELETE; client_max_body_size 100m; create_full_put_path on; }
    location = /method { return 200 "$request_method $http_content_length\n"; }
    location = /loop { return 302 /loop; }
    location = /to-http { return 302 http://127.0.0.1:%d/hello.txt; }
    location = /nocontent { return 204; }
    location = /auth { return 200 "auth=$http_authorization\n"; }
    location = /to-auth { return 302 /auth; }
    location = /to-http-auth { return 302 http://127.0.0.1:%d/auth; }
    location = /echo-headers { return 200 "$http_x_big\n"; }
    location /gz/ { gzip on; gzip_types *; gzip_min_length 0; gzip_comp_level 6; }
    location = /args { return 200 "$args\n"; }
    location = /setcookie { add_header Set-Cookie "a=1; Path=/"; add_header Set-Cookie "s=2; Path=/; Secure; HttpOnly"; add_header Set-Cookie "tld=x; Domain=1"; return 200 "set\n"; }
    location = /delcookie { add_header Set-Cookie "a=; Path=/; Max-Age=0"; return 200 "deleted\n"; }
    location = /cookie-redirect { add_header Set-Cookie "r=3; Path=/"; return 302 /cookie; }
    location = /cookie { return 200 "cookie=$http_cookie\n"; }
    location = /ctype { return 200 "$request_method $content_type $http_content_length\n"; }
%s
]]):format(ssl, www, http_port, http_port, table.concat(redirects, "\n"))
  write(dir .. "/nginx.conf", ([[
%s
worker_processes 1;
error_log %s/error.log warn;
pid %s/nginx.pid;
events { worker_connections 256; }
http {
  log_format conn '$connection $request';
  access_log %s/access.log conn;
  client_body_temp_path %s/tmp/body;
  proxy_temp_path %s/tmp/proxy;
  fastcgi_temp_path %s/tmp/fastcgi;
  uwsgi_temp_path %s/tmp/uwsgi;
  scgi_temp_path %s/tmp/scgi;
  default_type application/octet-stream;
  keepalive_requests 10000;
  keepalive_timeout 60s;
  http2_max_requests 10000;
  large_client_header_buffers 4 64k;
  server {
    listen 127.0.0.1:%d ssl;
%s
  }
  server {
    listen 127.0.0.1:%d ssl http2;
%s
  }
  server {
    listen 127.0.0.1:%d;
    root %s;
    location = /auth { return 200 "auth=$http_authorization\n"; }
  }
  server {
    listen 127.0.0.1:%d ssl;
%s
    ssl_verify_client on;
    ssl_client_certificate %s;
    location / { return 200 "client $ssl_client_s_dn\n"; }
  }
}
]]):format(is_root() and "user root;" or "",
    dir, dir, dir, dir, dir, dir, dir, dir, port, site, h2_port, site,
    http_port, www, mtls_port, ssl, pki.ca.cert))
  local h = proc.start(("nginx -p %s -c %s/nginx.conf -g 'daemon off;'"):format(dir, dir),
    { port = port })
  local stop = h.stop
  h.stop = function()
    stop()
    os.execute("rm -rf " .. dir)
  end
  -- no wait for the other two ports: nginx binds every listener before it serves
  h.dir, h.www, h.port, h.http_port, h.mtls_port = dir, www, port, http_port, mtls_port
  h.h2_port = h2_port
  return h
end

-- nginx.options(defaults) -> opts(extra): tls.https request options for
-- the test servers, trusting the test root, with `defaults`, then `extra`,
-- added or replaced.
function nginx.options(defaults)
  local pki = require "support.pki"
  return function(extra)
    local o = { ca_file = pki.ca.cert }
    for k, v in pairs(defaults or {}) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
end

-- nginx writes a request's log line after it has sent the response, so a
-- spec that reads the log waits for the lines it expects (a bound, not a
-- timing assertion). nginx.logged(srv, pattern) -> true | false, the log's end
function nginx.logged(srv, pattern)
  local pki = require "support.pki"
  local deadline = os.time() + 20
  while true do
    local log = pki.read(srv.dir .. "/access.log")
    if log:find(pattern) then return true end
    if os.time() > deadline then return false, log:sub(-300) end
    os.execute("sleep 0.05")
  end
end

-- nginx.serials_after(srv, from, n) -> the connection serials of the GET
-- lines logged after byte `from`, and their count, once there are n of them
-- (or the bound passed)
function nginx.serials_after(srv, from, n)
  local pki = require "support.pki"
  local deadline = os.time() + 20
  while true do
    local ids, count = {}, 0
    for id in pki.read(srv.dir .. "/access.log"):sub(from + 1):gmatch("(%d+) GET ") do
      count = count + 1
      ids[id] = true
    end
    if count >= n or os.time() > deadline then
      local list = {}
      for id in pairs(ids) do list[#list + 1] = id end
      return list, count
    end
    os.execute("sleep 0.05")
  end
end

-- For a describe block: nginx on the test PKI (peers.fixture).
function nginx.fixture(started)
  require("support.peers").fixture(nginx.start, started)
end

return nginx
