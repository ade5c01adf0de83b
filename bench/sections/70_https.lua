-- HTTPS: BENCH_GETS sequential GETs of a small file from a local nginx,
-- tls.https (keep-alive, pooled) against LuaSec's ssl.https.request (a new
-- connection and SSL context per request), both verifying against the
-- system-sized trust directory. GETs per second of wall time.
return {
  name = "https",
  title = "HTTPS: sequential GETs to one local host",
  run = function(b)
    local lib, S = b.lib, b.settings
    if not lib.exists(lib.root .. "/lua/tls/https/init.lua") then
      return b.note("skipped: lua/tls/https/init.lua (tls.https) is not there yet")
    end
    local nginx = lib.have("nginx") and "nginx" or (lib.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if not nginx then return b.note("skipped: nginx is not installed") end
    local pki = lib.pki()
    local dir = lib.tmpdir() .. "/nginx"
    lib.sh("mkdir -p " .. dir .. "/html")
    lib.write(dir .. "/html/hello.txt", ("hello from nginx\n"):rep(4))
    local port = lib.free_port()
    lib.write(dir .. "/nginx.conf", ([[
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    root %s/html;
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, port, pki.ecdsa.cert, pki.ecdsa.key, dir))
    local srv = lib.spawn(("%s -p %s -c %s/nginx.conf"):format(nginx, dir, dir))
    lib.wait_port(port, srv, "nginx", function() return lib.read(dir .. "/error.log") or "" end)
    local url = ("https://localhost:%d/hello.txt"):format(port)
    local impls = { "module" }
    if lib.luasec_available() then impls[#impls + 1] = "luasec" end
    local ok, best = pcall(lib.best, impls, function(impl)
      local res, out = lib.run(("%s https-get %s %d path:%s"):format(lib.impls[impl].cmd, url,
        S.gets, pki.trust_dir))
      if not res or res.gets ~= S.gets then error(impl .. " https-get failed: " .. out) end
      return res.gets / res.wall
    end)
    srv.stop()
    if not ok then error(best, 0) end
    b.row { case = ("%d sequential GETs (pooled vs per request)"):format(S.gets), unit = "GETs/s",
      module = best.module, c = "n/a", luasec = best.luasec, target_luasec = 5 }
  end,
}
