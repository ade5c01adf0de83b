-- tls.luasec: LuaSec programs run on lua-tls with only their require lines
-- changed. The LuaSec-style samples in spec/luasec_samples/ run twice: as
-- written on LuaSec itself (when lua-sec is installed), and with
-- require("ssl") -> require("tls.luasec"); both print the same. Then the
-- differences tls.luasec keeps on purpose (verification on unless named
-- off), and the hints tls.config gives for LuaSec's option names.

local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"

local quote = peers.quote
local luasec_installed = os.execute(proc.lua .. " -e 'require \"ssl\"' >/dev/null 2>&1") == true
  or os.execute(proc.lua .. " -e 'require \"ssl\"' >/dev/null 2>&1") == 0

local read = pki.read

local absolute = proc.absolute_paths

-- Whether something listens on 127.0.0.1:port, from /proc (no probe
-- connection: a one-client sample server would take it for its client).
local function listening(port)
  local hex = (":%04X"):format(port)
  for _, file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        local addr, state = line:match("^%s*%d+:%s+(%S+)%s+%S+%s+(%x%x)")
        if addr and addr:sub(-5) == hex and state == "0A" then f:close() return true end
      end
      f:close()
    end
  end
  return false
end

local function wait_listening(port, h)
  local deadline = os.time() + 30
  while not listening(port) do
    if os.time() > deadline or not proc.running(h.pid) then
      error("sample server did not listen on " .. port .. ":\n" .. h.output())
    end
    proc.sleep(0.05)
  end
end

local scratch
local function certs()
  if scratch then return scratch end
  pki.setup()
  local p = io.popen("mktemp -d /tmp/lua-tls-luasec.XXXXXX")
  scratch = p:read("*l")
  p:close()
  os.execute("mkdir -p " .. quote(scratch .. "/certs"))
  local function copy(from, to) pki.write(scratch .. "/certs/" .. to, read(from)) end
  local a = pki.leaf("servera.test", { san = "DNS:servera.test,IP:127.0.0.1" })
  local aa = pki.leaf("serveraa.test", { san = "DNS:serveraa.test" })
  local b = pki.leaf("serverb.test", { issuer = pki.other_ca, san = "DNS:serverb.test,IP:127.0.0.1" })
  copy(pki.ca.cert, "rootA.pem")
  copy(a.cert, "serverA.pem") copy(a.key, "serverAkey.pem")
  copy(aa.cert, "serverAA.pem") copy(aa.key, "serverAAkey.pem")
  copy(b.cert, "serverB.pem") copy(b.key, "serverBkey.pem")
  copy(pki.client.cert, "clientA.pem") copy(pki.client.key, "clientAkey.pem")
  return scratch
end

-- The sample's source for an implementation: as written ("luasec"), or
-- with its require lines pointed at tls.luasec ("tls").
local function source(text, impl)
  if impl == "luasec" then return text end
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("require", 1, true) then
      line = line:gsub('require%("ssl"%)', 'require("tls.luasec")')
        :gsub('require%("ssl%.https"%)', 'require("tls.luasec.https")')
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n")
end

local function lua_cmd(dir, script, port, exec)
  return ("cd %s && LUA_PATH=%s LUA_CPATH=%s %stimeout 60 %s %s %d"):format(quote(dir),
    quote(absolute(package.path)), quote(absolute(package.cpath)), exec and "exec " or "",
    proc.lua, script, port)
end

-- Run one sample pair with one implementation: client output, server output.
local function run_sample(name, impl)
  local dir = ("%s/%s/%s"):format(certs(), impl, name)
  os.execute("mkdir -p " .. quote(dir))
  os.execute(("ln -sfn %s %s"):format(quote(scratch .. "/certs"), quote(scratch .. "/" .. impl .. "/certs")))
  local src = "spec/luasec_samples/" .. name .. "/"
  local has_server = io.open(src .. "server.lua") ~= nil
  pki.write(dir .. "/client.lua", source(read(src .. "client.lua"), impl))
  local port = proc.free_port()
  local server
  if has_server then
    pki.write(dir .. "/server.lua", source(read(src .. "server.lua"), impl))
    server = proc.start("sh -c " .. quote(lua_cmd(dir, "server.lua", port, true)))
    wait_listening(port, server)
  else  -- the https sample talks to the module's HTTPS test server
    server = proc.start((proc.lua .. " spec/peers/https_server.lua %d %s %s"):format(port,
      quote(scratch .. "/certs/serverA.pem"), quote(scratch .. "/certs/serverAkey.pem")),
      { port = port })
  end
  local out, status = proc.run(lua_cmd(dir, "client.lua", port))
  local server_out = ""
  if has_server then
    server_out = server.wait(30)
  end
  server.stop()
  assert(status == 0, ("%s client on %s failed (exit %s):\n%s\nserver:\n%s"):format(name, impl,
    tostring(status), out, server_out))
  return out, server_out
end

-- What each sample's client prints at least (receive gives three values,
-- as on LuaSec: the line, nil, nil).
local samples = {
  oneshot = "oneshot test\tnil\tnil\nTLSv1.2\n",
  verify = "hello, client.test\tnil\tnil\nverified\ttrue\n",
  sni = "commonName\tserveraa.test\none line",
  alpn = "alpn\tfoo\nalpn test\t",
  digest = "key\tEC\t256\nsame as loaded\ttrue\nchain\t1\ndigest test\t",
  nonblocking = "handshake done\ttrue\npong\t",
  noverify = "verified\tfalse\nunverified\t",
  https = "1\t200\tHTTP/1.1 200 OK\n",
}

describe("LuaSec-style programs on tls.luasec", function()
  teardown(function()
    if scratch then os.execute("rm -rf " .. quote(scratch)) end
    scratch = nil
    pki.cleanup()
  end)

  it("differ from the LuaSec originals only in their require lines", function()
    for name in pairs(samples) do
      for _, file in ipairs({ "client.lua", "server.lua" }) do
        local f = io.open("spec/luasec_samples/" .. name .. "/" .. file)
        if f then
          local text = f:read("*a")
          f:close()
          local a, b = {}, {}
          for l in (text .. "\n"):gmatch("([^\n]*)\n") do a[#a + 1] = l end
          for l in (source(text, "tls") .. "\n"):gmatch("([^\n]*)\n") do b[#b + 1] = l end
          assert.equal(#a, #b)
          local changed = 0
          for i = 1, #a do
            if a[i] ~= b[i] then
              changed = changed + 1
              assert.truthy(a[i]:find("require", 1, true), name .. "/" .. file .. ": " .. a[i])
            end
          end
          assert.is_true(changed >= 1, name .. "/" .. file .. " requires no ssl module")
        end
      end
    end
  end)

  local names = {}
  for name in pairs(samples) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it(name .. " runs and prints what it prints on LuaSec", function()
      local out, server_out = run_sample(name, "tls")
      assert.truthy(out:find(samples[name], 1, true), name .. " printed:\n" .. out)
      if not luasec_installed then
        pending("lua-sec is not installed: only tls.luasec's run is checked")
        return
      end
      local ref_out, ref_server_out = run_sample(name, "luasec")
      assert.equal(ref_out, out)
      assert.equal(ref_server_out, server_out)
    end)
  end
end)

describe("tls.luasec keeps lua-tls's checks", function()
  local ssl = require "tls.luasec"
  local socket = require "socket"
  local server

  setup(function() certs() end)
  teardown(function()
    if scratch then os.execute("rm -rf " .. quote(scratch)) end
    scratch = nil
  end)
  after_each(function()
    if server then server.stop() server = nil end
  end)

  local function client(params, name)
    local sock = assert(socket.connect("127.0.0.1", server.port))
    local conn = assert(ssl.wrap(sock, params))
    if name then conn:sni(name) end
    local ok, err = conn:dohandshake()
    conn:close()
    return ok, err
  end

  it("verifies by default: LuaSec would accept an untrusted server without verify", function()
    server = peers.echo({ cert = scratch .. "/certs/serverB.pem", key = scratch .. "/certs/serverBkey.pem" })
    local ok, err = client({ mode = "client", protocol = "any" })
    assert.is_nil(ok)
    assert.matches("^verify:", err)
    -- named, as LuaSec spells it, the checks are off
    assert.is_true(client({ mode = "client", protocol = "any", verify = "none" }))
  end)

  it("checks the host name given to conn:sni (LuaSec checks only the chain)", function()
    server = peers.echo({ cert = scratch .. "/certs/serverA.pem", key = scratch .. "/certs/serverAkey.pem" })
    local params = { mode = "client", cafile = scratch .. "/certs/rootA.pem", verify = "peer" }
    assert.is_true(client(params, "servera.test"))
    local ok, err = client(params, "other.test")
    assert.is_nil(ok)
    assert.matches("^verify:.*other%.test", err)
  end)

  it("https.request verifies the server, where LuaSec's default is verify = \"none\"", function()
    local https = require "tls.luasec.https"
    local port = proc.free_port()
    server = proc.start((proc.lua .. " spec/peers/https_server.lua %d %s %s"):format(port,
      quote(scratch .. "/certs/serverA.pem"), quote(scratch .. "/certs/serverAkey.pem")), { port = port })
    local url = ("https://127.0.0.1:%d/x"):format(port)
    local body, err = https.request(url)   -- the system trust store has no rootA
    assert.is_nil(body)
    assert.matches("verify:", err)
    local t = {}
    local one, code = https.request({ url = url, verify = "none", sink = require("ltn12").sink.table(t) })
    assert.equal(1, one)
    assert.equal(200, code)
    assert.matches("path=/x", table.concat(t))
  end)

  it("says what a non-blocking handshake waits for (conn:want)", function()
    -- a peer that accepts the TCP connection (backlog) and never answers
    local silent = assert(socket.bind("127.0.0.1", 0))
    local _, port = silent:getsockname()
    local sock = assert(socket.connect("127.0.0.1", port))
    local conn = assert(ssl.wrap(sock, { mode = "client", cafile = scratch .. "/certs/rootA.pem" }))
    assert.equal("nothing", conn:want())
    conn:settimeout(0)
    local ok, err = conn:dohandshake()
    assert.is_nil(ok)
    assert.equal("wantread", err)
    assert.equal("read", conn:want())
    conn:close()
    silent:close()
  end)

  it("with strict SNI, fails the handshake of a client that named an unknown host", function()
    local port = proc.free_port()
    local code = ([[
      local socket, ssl = require "socket", require "tls.luasec"
      local dir = %q
      local function ctx(name)
        return assert(ssl.newcontext({ mode = "server", key = dir .. name .. "key.pem",
          certificate = dir .. name .. ".pem" }))
      end
      local a, aa = ctx("serverA"), ctx("serverAA")
      local server = assert(socket.bind("127.0.0.1", %d))
      for _ = 1, 2 do
        local conn = assert(ssl.wrap(server:accept(), a))
        conn:sni({ ["servera.test"] = a, ["serveraa.test"] = aa }, true)
        print(conn:dohandshake())
        conn:close()
      end
    ]]):format(scratch .. "/certs/", port)
    local file = os.tmpname()
    pki.write(file, code)
    server = proc.start(proc.lua .. " " .. file)
    server.port = port
    wait_listening(port, server)   -- no probe: the server takes two clients only
    local params = { mode = "client", cafile = scratch .. "/certs/rootA.pem" }
    -- a name in the map: served (serverAA's certificate)
    assert.is_true(client(params, "serveraa.test"))
    -- a name not in the map: the server refuses it; the client sees the close
    client({ mode = "client", verify = "none" }, "unknown.test")
    local out = server.wait(20)
    os.remove(file)
    assert.matches("true\nnil\tsni: no context for server name 'unknown.test' %(strict%)\n$", out)
  end)

  it("refuses TLS 1.0/1.1 protocols with a message, and unknown parameters", function()
    local ctx, err = ssl.newcontext({ mode = "client", protocol = "tlsv1" })
    assert.is_nil(ctx)
    assert.matches("protocol 'tlsv1' is not offered: lua%-tls speaks TLS 1%.2 and 1%.3 only", err)
    assert.error_matches(function() ssl.newcontext({ mode = "client", cafiel = "x" }) end,
      "unknown parameter 'cafiel'")
  end)

  it("refuses a NaN or non-number timeout in conn:settimeout (NaN would block for ever)", function()
    local conn = ssl.wrap(socket.tcp(), assert(ssl.newcontext({ mode = "client" })))
    assert.error_matches(function() conn:settimeout(0 / 0) end,
      "tls.luasec: conn:settimeout: timeout must be a number of seconds, got NaN")
    assert.error_matches(function() conn:settimeout("5") end,
      "tls.luasec: conn:settimeout: timeout must be a number of seconds, got string")
    assert.equal(1, conn:settimeout(-1))
    assert.is_nil(conn.timeout)
    assert.equal(1, conn:settimeout(2.5))
    assert.equal(2.5, conn.timeout)
    conn:close()
  end)

  it("raises on a LuaSec method it does not have, naming it", function()
    local ctx = assert(ssl.newcontext({ mode = "client" }))
    local conn = ssl.wrap(socket.tcp(), ctx)
    assert.error_matches(function() conn:getfinished() end,
      "conn:getfinished is not available %(see doc/migrating%-from%-luasec%.md%)")
    conn:close()
  end)
end)

describe("tls.config's errors for LuaSec's option names", function()
  local tls = require "tls"
  local function message(opts)
    local ok, err = pcall(tls.config, opts)
    assert.is_false(ok)
    return err
  end

  it("name the lua-tls option", function()
    assert.matches("unknown option 'cafile' %(lua%-tls calls it ca_file%)", message({ cafile = "x" }))
    assert.matches("unknown option 'capath' %(lua%-tls calls it ca_path%)", message({ capath = "x" }))
    assert.matches("unknown option 'certificate' %(lua%-tls calls it cert_file%)",
      message({ certificate = "x" }))
    assert.matches("unknown option 'protocol' %(lua%-tls calls it protocols%)", message({ protocol = "x" }))
    assert.matches("unknown option 'depth' %(lua%-tls calls it verify_depth%)", message({ depth = 2 }))
    assert.matches("unknown option 'verify' %(lua%-tls calls it verify_client on a server",
      message({ verify = "peer" }))
  end)

  it("say a key that looks like a file name belongs in key_file", function()
    pki.setup()
    local cfg, err = tls.config({ cert_file = pki.server.cert, key = "server.key" })
    assert.is_nil(cfg)
    assert.matches("key is not PEM text %(no %-%-%-%-%-BEGIN line%); for a file name use key_file", err)
  end)

  it("give any other unknown option the closest known name, when one is close", function()
    assert.matches("unknown option 'ca_fiel' %(the closest known option is 'ca_file'%)",
      message({ ca_fiel = "x" }))
    assert.matches("unknown option 'verify_dept' %(the closest known option is 'verify_depth'%)",
      message({ verify_dept = 1 }))
    assert.matches("unknown option 'alpm' %(the closest known option is 'alpn'%)", message({ alpm = {} }))
    -- options of the connection count as known names too
    local ok, err = pcall(tls.connect, "localhost", 1, { timout = 5 })
    assert.is_false(ok)
    assert.matches("tls.connect: unknown option 'timout' %(the closest known option is 'timeout'%)", err)
    -- and a name close to nothing says so instead of naming a stranger
    assert.matches("unknown option 'bogus' %(no known option is close: see doc/config%.md%)",
      message({ bogus = 1 }))
  end)
end)
