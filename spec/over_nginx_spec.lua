-- tls.over inside real nginx: Debian's lua module (OpenResty's LuaJIT) runs
-- handlers (spec/peers/over_nginx_app.lua) that fetch over TLS through
-- tls.over(tls.transport.ngx(cosocket)) and through tls.https.get, from
-- openssl s_server -WWW and from the module's own HTTPS server
-- (examples/https_server.lua), all on loopback.
local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"
local socket = require "socket"
local over_nginx = require "support.over_nginx"

local available, why = over_nginx.available()

local function sh_out(cmd) return (proc.run(cmd)) end

local function sha256_file(path)
  return sh_out("sha256sum " .. path):match("^(%x+)")
end

describe("tls.over inside nginx (lua module, LuaJIT)", function()
  if not available then
    pending("nginx's lua module is not usable here: " .. why)
    return
  end

  local ngx_h, www, wwws, cn_only, own, stall
  local function url(path, args)
    local q = {}
    for k, v in pairs(args) do q[#q + 1] = k .. "=" .. tostring(v) end
    table.sort(q)
    return ("http://127.0.0.1:%d%s?%s"):format(ngx_h.port, path, table.concat(q, "&"))
  end

  -- status line and body of a GET to nginx
  local function get(path, args)
    local out = sh_out("curl -s -m 60 -w '\\n%{http_code}' '" .. url(path, args) .. "'")
    local body, code = out:match("^(.*)\n(%d+)$")
    return tonumber(code), body
  end

  setup(function()
    pki.setup()
    www = pki.dir .. "/www"
    os.execute("mkdir -p " .. www .. " && printf 'hello from s_server\\n' > " .. www
      .. "/hello.txt && head -c 4194304 /dev/urandom > " .. www .. "/big.bin && chmod -R a+rX "
      .. pki.dir)
    wwws = peers.s_server_www(pki.server, www)
    cn_only = peers.s_server_www(pki.cn_only, www)
    -- the module's own concurrent HTTPS server (echoes the request line)
    local own_port = proc.free_port()
    own = proc.start(("%s examples/https_server.lua --port %d --cert %s --key %s")
      :format(peers.LUA or "lua5.4", own_port, pki.server.cert, pki.server.key), { port = own_port })
    own.port = own_port
    -- an upstream that accepts TCP and then never answers
    stall = assert(socket.bind("127.0.0.1", 0))
    ngx_h = over_nginx.start()
  end)

  teardown(function()
    -- (each one that started, even when setup failed half way)
    for _, h in pairs { ngx_h or false, wwws or false, cn_only or false, own or false } do
      if h then h.stop() end
    end
    if stall then stall:close() end
    pki.cleanup()
  end)

  describe("(a) fetches over TLS, with the default policy", function()
    it("through tls.over(tls.transport.ngx(sock)) from openssl s_server", function()
      local code, body = get("/over", { port = wwws.port, path = "/hello.txt", ca = pki.ca.cert })
      assert.equal(200, code)
      assert.equal("hello from s_server\n", body)
    end)

    it("through tls.https.get from openssl s_server, on cosockets by default", function()
      local out = sh_out("curl -s -m 60 -D - '" .. url("/https",
        { port = wwws.port, path = "/hello.txt", ca = pki.ca.cert }) .. "'")
      assert.matches("^HTTP/1.1 200", out)
      assert.matches("\r\nX%-Transport: ngx\r\n", out)
      assert.matches("\r\n\r\nhello from s_server\n$", out)
    end)

    it("through tls.https.get with a timeout past what a cosocket takes (2^31 ms)", function()
      -- (as text without "+", which a query string turns into a space)
      for _, t in ipairs { "10000000000", "1e300" } do
        local code, body = get("/https", { port = wwws.port, path = "/hello.txt", ca = pki.ca.cert,
          timeout = t })
        assert.equal(200, code, body)
        assert.equal("hello from s_server\n", body)
      end
    end)

    it("from the module's own server, both ways", function()
      local code, body = get("/over", { port = own.port, path = "/own", ca = pki.ca.cert })
      assert.equal(200, code)
      assert.equal("GET /own\n", body)
      code, body = get("/https", { port = own.port, path = "/own2", ca = pki.ca.cert })
      assert.equal(200, code)
      assert.equal("GET /own2\n", body)
    end)

    it("reports a certificate that does not verify as an error, both ways", function()
      for _, path in ipairs { "/over", "/https" } do
        local code, body = get(path, { port = wwws.port, path = "/hello.txt", ca = pki.other_ca.cert })
        assert.equal(502, code)
        assert.matches("^error: verify: ", body)
      end
      -- and a name the certificate does not carry
      local code, body = get("/over", { port = wwws.port, path = "/hello.txt", ca = pki.ca.cert,
        name = "alt.test" })
      assert.equal(502, code)
      assert.matches("^error: verify: ", body)
    end)

    it("reports a policy failure (a leaf without subjectAltName) as an error, both ways", function()
      for _, path in ipairs { "/over", "/https" } do
        local code, body = get(path, { port = cn_only.port, path = "/hello.txt", ca = pki.ca.cert })
        assert.equal(502, code)
        assert.matches("^error: policy: require_san", body)
      end
    end)
  end)

  describe("(b) one worker, 50 requests at once, one upstream stalled", function()
    it("serves the others while the stalled one waits, which then times out on its own deadline",
      function()
        local _, stall_port = stall:getsockname()
        local out = pki.dir .. "/stalled.out"
        -- the stalled request first: its upstream accepts and never answers
        local stalled = proc.start(("curl -s -m 60 -o %s '%s'"):format(out,
          url("/over", { port = stall_port, ca = pki.ca.cert, timeout = 12 })))
        stall:settimeout(30)
        local held = assert(stall:accept())  -- nginx is now waiting in that request
        -- 49 others, half through tls.over by hand, half through tls.https.get
        local cmds = {}
        for i = 1, 49 do
          local path = i % 2 == 0 and "/over" or "/https"
          cmds[#cmds + 1] = ("curl -s -m 60 -o %s/r%d.out '%s' &"):format(pki.dir, i,
            url(path, { port = own.port, path = "/req" .. i, ca = pki.ca.cert }))
        end
        os.execute(table.concat(cmds, "\n") .. "\nwait")
        -- all 49 are answered while the stalled request is still waiting
        -- (a worker blocked in it would have answered none before its 12 s)
        local still_waiting = proc.running(stalled.pid)
        for i = 1, 49 do
          local f = assert(io.open(("%s/r%d.out"):format(pki.dir, i), "rb"))
          assert.equal("GET /req" .. i .. "\n", f:read("*a"))
          f:close()
        end
        assert.is_true(still_waiting)
        -- the stalled one ends by its own 12 s deadline
        local deadline = os.time() + 40
        while proc.running(stalled.pid) and os.time() < deadline do proc.sleep(0.1) end
        local f = assert(io.open(out, "rb"))
        assert.equal("error: timeout\n", f:read("*a"))
        f:close()
        stalled.stop()
        held:close()
      end)
  end)

  describe("(c) a 4 MB body", function()
    it("arrives intact, both ways", function()
      local want = sha256_file(www .. "/big.bin")
      for _, path in ipairs { "/over", "/https" } do
        local file = pki.dir .. "/got" .. path:gsub("/", "_")
        os.execute(("curl -s -m 60 -o %s '%s'"):format(file,
          url(path, { port = wwws.port, path = "/big.bin", ca = pki.ca.cert })))
        assert.equal(want, sha256_file(file))
      end
    end)
  end)

  describe("server side", function()
    it("serves TLS with tls.over in server mode on the raw request socket (Upgrade)", function()
      local tls = require "tls"
      local sock = assert(socket.connect("127.0.0.1", ngx_h.port))
      sock:settimeout(10)
      assert(sock:send(("GET /upgrade?cert=%s&key=%s HTTP/1.1\r\nHost: localhost\r\n"
        .. "Upgrade: TLS/1.2\r\nConnection: Upgrade\r\n\r\n"):format(pki.server.cert, pki.server.key)))
      assert.equal("HTTP/1.1 101 Switching Protocols", sock:receive("*l"))
      repeat local line = assert(sock:receive("*l")) until line == ""
      local c = assert(tls.wrap(sock, { servername = "localhost", ca_file = pki.ca.cert,
        timeout = 10 }))
      assert(c:handshake())
      assert(c:send("hello nginx\n"))
      assert.equal("HELLO NGINX", c:receive("*l"))
      assert(c:send("quit\n"))
      c:close()
    end)
  end)

  it("left nothing alarming in nginx's error log", function()
    local log = ngx_h.error_log()
    assert.not_matches("C%-call boundary", log)
    assert.not_matches("%[alert%]", log)
    assert.not_matches("%[emerg%]", log)
  end)
end)
