-- HTTP/2 in tls.https (issue 17's targets), against one local nginx serving
-- the same files over HTTP/1.1 and, on a second port, with http2:
--   * 200 small GETs from 20 cqueues coroutines: HTTP/2 over one connection
--     against the HTTP/1.1 pool (target 1.5x) and LuaSec's sequential
--     ssl.https.request (target 10x);
--   * a 64 MiB download over HTTP/2 against HTTP/1.1 (target 0.8x);
--   * a gzip-coded download decoded on the way (nginx gzip_static) against
--     lua-zlib inflating the same bytes alone (target 0.8x).
-- In these rows the "libtls C" column holds the baseline each row names.
return {
  name = "h2",
  title = "HTTPS over HTTP/2",
  run = function(b)
    local lib, S = b.lib, b.settings
    if not lib.exists(lib.root .. "/lua/tls/h2/conn.lua") then
      return b.note("skipped: lua/tls/h2 is not there")
    end
    local nginx = lib.have("nginx") and "nginx" or (lib.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if not nginx then return b.note("skipped: nginx is not installed") end
    if not lib.has_module("cqueues") then return b.note("skipped: cqueues is not installed") end
    local pki = lib.pki()
    local dir = lib.tmpdir() .. "/nginx-h2"
    local mib = S.bulk_mib
    lib.sh("mkdir -p " .. dir .. "/html " .. dir .. "/tmp")
    lib.write(dir .. "/html/hello.txt", ("hello from nginx\n"):rep(4))
    lib.sh(("head -c %d /dev/urandom > %s/html/big.bin"):format(mib * 1048576, dir))
    -- text that compresses about 4:1, stored gzipped (gzip_static)
    lib.sh(("head -c %d /dev/urandom | od -An -tx1 | head -c %d > %s/html/text.txt && gzip -6 -k %s/html/text.txt")
      :format(mib * 1048576, mib * 1048576, dir, dir))
    local p1, p2 = lib.free_port(), lib.free_port()
    local tls = ("ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3; root %s/html; gzip_static on;")
      :format(pki.ecdsa.cert, pki.ecdsa.key, dir)
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
  http2_max_requests 100000;
  server { listen 127.0.0.1:%d ssl; %s }
  server { listen 127.0.0.1:%d ssl http2; %s }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, p1, tls, p2, tls))
    local srv = lib.spawn(("%s -p %s -c %s/nginx.conf"):format(nginx, dir, dir))
    lib.wait_port(p2, srv, "nginx", function() return lib.read(dir .. "/error.log") or "" end)
    local peer = lib.lua .. " " .. lib.root .. "/bench/peer_h2.lua"
    local trust = "file:" .. pki.ecdsa.ca
    local function url(port, path) return ("https://localhost:%d/%s"):format(port, path) end
    local n, conc = S.gets, math.min(20, S.gets)
    local function run(cmd)
      local res, out = lib.run(cmd)
      if not res then error(cmd .. ": " .. out) end
      return res
    end
    local ok, err = pcall(function()
      local impls = { "h2", "h1" }
      if lib.luasec_available() then impls[#impls + 1] = "luasec" end
      local gets = lib.best(impls, function(impl)
        if impl == "luasec" then
          local r = run(("%s https-get %s %d %s"):format(lib.impls.luasec.cmd, url(p1, "hello.txt"), n, trust))
          return r.gets / r.wall
        end
        local r = run(("%s gets-cq %s %d %d %s %s"):format(peer, url(impl == "h2" and p2 or p1, "hello.txt"),
          n, conc, impl == "h2" and "2" or "1.1", trust))
        if impl == "h2" and r.opened ~= 1 then error("HTTP/2 GETs opened " .. r.opened .. " connections") end
        return r.gets / r.wall
      end)
      b.row { case = ("%d GETs, %d cqueues coroutines: HTTP/2 vs the HTTP/1.1 pool"):format(n, conc),
        unit = "GETs/s", module = gets.h2, c = gets.h1, luasec = gets.luasec,
        target_c = 1.5, target_luasec = 10 }
      local dl = lib.best({ "h2", "h1" }, function(impl)
        local r = run(("%s download %s %s %s"):format(peer, url(impl == "h2" and p2 or p1, "big.bin"),
          impl == "h2" and "2" or "1.1", trust))
        if r.bytes ~= mib * 1048576 then error("short download: " .. r.bytes) end
        return r.bytes / 1048576 / r.wall
      end, nil, S.bulk_repeats)
      b.row { case = ("%d MiB download: HTTP/2 vs HTTP/1.1"):format(mib), unit = "MiB/s",
        module = dl.h2, c = dl.h1, target_c = 0.8 }
      if lib.has_module("zlib") then
        local gz = lib.best({ "decoded", "zlib" }, function(impl)
          local r
          if impl == "zlib" then
            r = run(("%s gunzip %s/html/text.txt.gz"):format(peer, dir))
          else
            r = run(("%s download %s 2 %s"):format(peer, url(p2, "text.txt"), trust))
            if r.decoded ~= 1 then error("the text was not gzip-coded") end
          end
          if r.bytes ~= mib * 1048576 then error("short gzip body: " .. r.bytes) end
          return r.bytes / 1048576 / r.wall
        end, nil, S.bulk_repeats)
        b.row { case = ("%d MiB gzip-coded, decoded (HTTP/2) vs lua-zlib alone"):format(mib),
          unit = "MiB/s", module = gz.decoded, c = gz.zlib, target_c = 0.8 }
      else
        b.note("gzip row skipped: lua-zlib is not installed")
      end
    end)
    srv.stop()
    if not ok then error(err, 0) end
  end,
}
