-- tls.over against what a user would pick instead, side by side in one run:
--   * on cqueues: bulk MiB/s of wall time through tls.over on a cqueues
--     socket vs the socket conn (tls.connect), same module server; target 0.8x;
--   * inside nginx (Debian's lua module, the LuaJIT build): handshakes/s
--     through tls.over(tls.transport.ngx(sock)) vs the cosocket's own
--     sslhandshake (target 0.8x; the same counted under callgrind, both
--     ends and the worker alone), and a 64 MiB download from openssl
--     s_server -WWW (target 0.7x); in this table the "libtls C" column holds
--     the alternative (the socket conn, the cosocket's sslhandshake);
--   * receive("*a") of 4 MB over tls.over: CPU seconds on LuaJIT vs on 5.4
--     (target: within 1.5x, i.e. ratio >= 0.67).
-- BENCH_JIT_CPATH names the LuaJIT build (default build/jit/?.so).
local socket = require "socket"

return {
  name = "over",
  title = "tls.over: cqueues, nginx, LuaJIT",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    local root = lib.root
    local peer = root .. "/bench/peer_over.lua"
    local jit_cpath = os.getenv("BENCH_JIT_CPATH") or (root .. "/build/jit/?.so")
    local have_jit = lib.exists((jit_cpath:gsub("%?", "tls/core"))) and lib.have("luajit")
    b.note("in this section the 'libtls C' column is the alternative a user would pick: "
      .. "the socket conn (cqueues rows), the cosocket's sslhandshake (nginx rows), Lua 5.4 (LuaJIT row)")

    -- cqueues bulk: tls.over vs the socket conn, against the module's server
    if lib.has_module("cqueues") then
      local mib = S.bulk_mib
      local total = mib * 1024 * 1024
      for _, case in ipairs { { "one way, 16 KiB writes", "sink" }, { "echo, 16 KiB writes", "echo" } } do
        local title, mode = case[1], case[2]
        local best = lib.best({ "over", "conn" }, function(which)
          local port = lib.free_port()
          local _, cres = lib.serve(("%s bulk-server %d %s %s tlsv1.3 1"):format(
            lib.impls.module.cmd, port, pki.ecdsa.cert, pki.ecdsa.key), function()
            if which == "over" then
              return ("%s %s bulk-client-cq 127.0.0.1 %d tlsv1.3 %s %d 16384"):format(
                lib.lua, peer, port, mode, total)
            end
            return ("%s bulk-client 127.0.0.1 %d tlsv1.3 %s %d 16384"):format(
              lib.impls.module.cmd, port, mode, total)
          end)
          if cres.bytes ~= total then error(which .. ": short transfer") end
          return total / cres.wall / 1048576
        end, "higher", S.bulk_repeats)
        b.row { case = "cqueues " .. title, unit = "MiB/s", module = best.over, c = best.conn,
          target_c = 0.8 }
      end
    else
      b.note("cqueues rows skipped: cqueues is not installed")
    end

    -- receive("*a") of 4 MB: LuaJIT vs 5.4 (CPU seconds, lower is better)
    if have_jit then
      local n = lib.smoke and 1 or 5
      local best = lib.best({ "jit", "lua54" }, function(which)
        local port = lib.free_port()
        local _, cres = lib.serve(("%s %s send-server %d %s %s 4194304 %d"):format(
          lib.lua, peer, port, pki.ecdsa.cert, pki.ecdsa.key, n), function()
          local cmd = which == "jit" and ("env LUA_CPATH='%s;;' luajit"):format(jit_cpath) or lib.lua
          return ("%s %s recv-all 127.0.0.1 %d %d"):format(cmd, peer, port, n)
        end)
        if cres.bytes ~= 4194304 * n then error(which .. ": short transfer") end
        return cres.cpu / n
      end, "lower", S.repeats)
      b.row { case = "receive(\"*a\") 4 MB over tls.over, LuaJIT vs 5.4", unit = "CPU s",
        module = best.jit, c = best.lua54, better = "lower", target_c = 1 / 1.5 }
    else
      b.note("LuaJIT row skipped: no LuaJIT build at " .. jit_cpath .. " (make LUA_VERSION=jit build)")
    end

    -- nginx: tls.over vs sslhandshake, in one worker
    local lua_mod = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
    if not (have_jit and lib.exists(lua_mod)) then
      return b.note("nginx rows skipped: needs libnginx-mod-http-lua and the LuaJIT build")
    end
    local dir = lib.tmpdir() .. "/over-nginx"
    lib.sh("mkdir -p " .. dir .. "/www && chmod 755 " .. dir)
    local mib = lib.smoke and 1 or 64
    lib.sh(("head -c %d /dev/zero > %s/www/big.bin"):format(mib * 1048576, dir))
    local up = lib.free_port()
    local srv = lib.spawn(("env -C %s/www openssl s_server -WWW -quiet -accept 127.0.0.1:%d "
      .. "-cert %s -key %s"):format(dir, up, pki.ecdsa.cert, pki.ecdsa.key))
    lib.wait_port(up, srv, "openssl s_server")
    local port = lib.free_port()
    local is_root = (lib.capture("id -u")):match("%d+") == "0"
    lib.write(dir .. "/nginx.conf", ([[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module %s;
%s
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/bench/?.lua;;";
  lua_package_cpath "%s;;";
  lua_ssl_trusted_certificate %s;
  lua_ssl_verify_depth 2;
  # TLS 1.3 as tls.over's side (the rows say so); Debian's lua module offers only TLS 1.2 without it
  lua_ssl_protocols TLSv1.2 TLSv1.3;
  lua_socket_buffer_size 64k;  # (both sides; the default 4k/8k halves tls.over's download)
  server {
    listen 127.0.0.1:%d;
    location /hs { content_by_lua_block { require("nginx_over_app").hs() } }
    location /dl { content_by_lua_block { require("nginx_over_app").dl() } }
  }
}
]]):format(lua_mod, is_root and "user root;" or "", dir, dir, dir, dir, dir, dir, dir,
      root, root, root, jit_cpath, pki.ecdsa.ca, port))
    lib.sh("chmod -R a+rX " .. dir .. " " .. pki.dir)
    local ngx_h = lib.spawn(("nginx -p %s -c %s/nginx.conf"):format(dir, dir))
    lib.wait_port(port, ngx_h, "nginx", function() return lib.read(dir .. "/error.log") or "" end)
    local function get(path, mode, n)
      local out = lib.capture(("curl -s -m %d 'http://127.0.0.1:%d/%s?mode=%s&port=%d&n=%d&ca=%s'")
        :format(S.timeout, port, path, mode, up, n, pki.ecdsa.ca))
      local r = lib.result(out)
      if not r then error("nginx " .. path .. " " .. mode .. ": " .. out
        .. (lib.read(dir .. "/error.log") or "")) end
      return r
    end
    get("hs", "over", S.warm)
    get("hs", "ngx", S.warm)
    local cpu = {}
    local hs = lib.best({ "over", "ngx" }, function(mode)
      local r = get("hs", mode, S.hs)
      local ms = r.cpu * 1000 / r.handshakes
      if not cpu[mode] or ms < cpu[mode] then cpu[mode] = ms end
      return r.handshakes / r.wall
    end, "higher", S.repeats)
    b.row { case = "nginx: handshakes (verified, TLS 1.3, P-256)", unit = "hs/s",
      module = hs.over, c = hs.ngx, target_c = 0.8 }
    -- the client side alone (the wall rate also holds s_server's work)
    b.row { case = "nginx: worker CPU per handshake (same runs)", unit = "ms", better = "lower",
      module = cpu.over, c = cpu.ngx }
    local dl = lib.best({ "over", "ngx" }, function(mode)
      local r = get("dl", mode, 0)
      if r.bytes < mib * 1048576 then error("nginx dl " .. mode .. ": short transfer") end
      return r.bytes / r.wall / 1048576
    end, "higher", S.repeats)
    b.row { case = ("nginx: %d MiB download from s_server -WWW"):format(mib), unit = "MiB/s",
      module = dl.over, c = dl.ngx, target_c = 0.7 }
    ngx_h.stop()
    srv.stop()
    if not (lib.have("valgrind") and lib.have("callgrind_control")) then
      return b.note("nginx callgrind rows skipped: valgrind is not installed")
    end

    -- The same handshakes counted under callgrind, where the wall-time rate
    -- above moves with the machine's load: the nginx worker and s_server
    -- each run under valgrind and are counted from just before to just after
    -- one request of handshakes (callgrind_control -z/-d on their pids).
    -- Both ends together is what the rate waits for; the worker alone is
    -- what tls.over changes.
    local function waited_port(p, h, what)
      local deadline = lib.now() + 60
      while true do
        local sk = socket.tcp()
        local up = sk:connect("127.0.0.1", p)
        sk:close()
        if up then return end
        if not h.alive() or lib.now() > deadline then
          local out = h.output()
          h.stop()
          error(("bench: %s under valgrind did not start on port %d:\n%s"):format(what, p, out))
        end
        lib.sleep(0.1)
      end
    end
    local function counted(out, pid)
      local n = 0
      return function(cmd)
        if cmd == "zero" then return lib.sh(("callgrind_control -z %d >/dev/null"):format(pid)) end
        lib.sh(("callgrind_control -d %d >/dev/null"):format(pid))
        n = n + 1
        local file = ("%s.%d"):format(out, n)
        local deadline = lib.now() + 30
        while not (lib.read(file) or ""):find("\ntotals:") and lib.now() < deadline do lib.sleep(0.05) end
        -- (a dump's "summary" is what was counted since the zeroing; its
        -- "totals" also holds the frames that were open then)
        local text = lib.read(file) or ""
        os.remove(file)
        return tonumber(text:match("\nsummary:%s*(%d+)")) or error("bench: no callgrind dump " .. file)
      end
    end
    -- (a machine where callgrind_control cannot reach the processes, say
    -- without ptrace, gets a note instead of the rows)
    local counted_ok, ir = pcall(function()
      local cgs, cgn = lib.tmpdir() .. "/cg-s_server", lib.tmpdir() .. "/cg-nginx"
      up = lib.free_port()
      srv = lib.spawn(lib.callgrind_prefix(cgs) .. ("openssl s_server -WWW -quiet -accept 127.0.0.1:%d "
        .. "-cert %s -key %s"):format(up, pki.ecdsa.cert, pki.ecdsa.key))
      waited_port(up, srv, "openssl s_server")
      ngx_h = lib.spawn(lib.callgrind_prefix(cgn) .. ("nginx -p %s -c %s/nginx.conf"):format(dir, dir))
      waited_port(port, ngx_h, "nginx")
      -- (valgrind starts its log with "==PID==")
      local srv_pid = tonumber(srv.output():match("==(%d+)=="))
      local ngx_pid = tonumber(ngx_h.output():match("==(%d+)=="))
      if not (srv_pid and ngx_pid) then error("bench: no pid for the processes under callgrind") end
      local cs, cn = counted(cgs, srv_pid), counted(cgn, ngx_pid)
      get("hs", "over", S.warm)
      get("hs", "ngx", S.warm)
      -- per handshake, over one request of n (what the request itself costs
      -- is spread over them). s_server finishes a connection after the
      -- client is done (under valgrind, up to a second later): counting
      -- starts once the previous one is finished and ends once its own is.
      local n = lib.smoke and 2 or 40
      local settle = lib.smoke and 0.2 or 1
      local ir = {}
      for _, mode in ipairs { "over", "ngx" } do
        lib.sleep(settle)
        cs("zero")
        cn("zero")
        get("hs", mode, n)
        lib.sleep(settle)
        local worker = cn("dump")
        ir[mode] = { worker = worker / n / 1000, both = (worker + cs("dump")) / n / 1000 }
      end
      return ir
    end)
    ngx_h.stop()
    srv.stop()
    if not counted_ok then
      return b.note("nginx callgrind rows skipped: " .. tostring(ir))
    end
    b.row { case = "nginx: handshake instructions, worker + s_server (callgrind)", unit = "kIr",
      better = "lower", module = ir.over.both, c = ir.ngx.both, target_c = 0.8 }
    b.row { case = "nginx: handshake instructions, worker alone (callgrind)", unit = "kIr",
      better = "lower", module = ir.over.worker, c = ir.ngx.worker }
  end,
}
