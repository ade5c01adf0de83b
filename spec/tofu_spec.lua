-- tls.tofu against the module's own echo server on loopback: first contact
-- records the leaf's pin, later contacts must show it, a changed key fails.

local tls = require "tls"
local E = require "support.engines"
local pki = require "support.pki"
local peers = require "support.peers"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function listdir(dir)
  local p = io.popen("ls -A " .. dir)
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

local serve = peers.echo   -- (keypair, nil, port)

-- Self-signed servers, as TOFU is meant for: chain verification is off and
-- the pin file is the trust.
local function connect(port, servername, policy)
  return tls.connect("127.0.0.1", port, { insecure_noverifycert = true, servername = servername,
    policy = policy, timeout = 10 })
end

local function works(port, servername, policy)
  local conn, err = connect(port, servername, policy)
  if not conn then return nil, err end
  assert(conn:send("hello\n"))
  local line = conn:receive("*l")
  conn:close()
  return line == "hello" or nil
end

local dir, other

setup(function()
  pki.setup()
  other = pki.selfsigned("tofu-other")
  local p = io.popen("mktemp -d /tmp/lua-tls-tofu.XXXXXX")
  dir = p:read("*l")
  p:close()
end)

teardown(function()
  os.execute("rm -rf " .. dir)
  pki.cleanup()
end)

describe("tls.tofu", function()
  local h, path
  before_each(function()
    path = dir .. "/known_pins"
    os.remove(path)
    h = serve(pki.self)
  end)
  after_each(function() h.stop() end)

  it("records host:port and the leaf's pin on first contact, atomically", function()
    local recorded = {}
    local t = tls.tofu(path, { on_new = function(key, pin) recorded[#recorded + 1] = key .. " " .. pin end })
    assert.is_nil(read(path))
    assert.is_true(works(h.port, "localhost-self", t))
    local pin = pki.pin(pki.self.cert)
    local key = "127.0.0.1:" .. h.port
    assert.matches("\n" .. key:gsub("%.", "%%.") .. " sha256//" .. pin:gsub("[%+%-]", "%%%0") .. "\n$",
      read(path))
    assert.same({ key .. " " .. pin }, recorded)
    assert.equal("sha256//" .. pin, t:lookup(key))
    -- written through a temporary file renamed into place: nothing else left behind
    assert.same({ "known_pins" }, listdir(dir))
  end)

  it("accepts the same key afterwards without rewriting the file", function()
    local t = tls.tofu(path)
    assert.is_true(works(h.port, "localhost-self", t))
    local before = read(path)
    local called = false
    local t2 = tls.tofu(path, { on_new = function() called = true end })
    assert.is_true(works(h.port, "localhost-self", t2))
    assert.equal(before, read(path))
    assert.is_false(called)
  end)

  it("rejects a changed key with both pins, the file and how to reset it", function()
    local t = tls.tofu(path)
    assert.is_true(works(h.port, "localhost-self", t))
    local port = h.port
    h.stop()
    h = serve(other, nil, port) -- another key on the same host:port
    local conn, err = connect(port, "tofu-other", t)
    assert.is_nil(conn)
    local key = "127.0.0.1:" .. port
    assert.matches("^policy: tofu: the public key of " .. key:gsub("%.", "%%.") .. " has changed", err)
    assert.truthy(err:find("sha256//" .. pki.pin(pki.self.cert), 1, true))
    assert.truthy(err:find("sha256//" .. pki.pin(other.cert), 1, true))
    assert.truthy(err:find(path, 1, true))
    assert.truthy(err:find('tofu:forget("' .. key .. '")', 1, true))
    -- the reset it describes works
    assert.is_true(t:forget(key))
    assert.is_true(works(port, "tofu-other", t))
    assert.equal("sha256//" .. pki.pin(other.cert), t:lookup(key))
  end)

  it("keeps one line per host:port", function()
    local h2 = serve(other)
    local t = tls.tofu(path)
    assert.is_true(works(h.port, "localhost-self", t))
    assert.is_true(works(h2.port, "tofu-other", t))
    h2.stop()
    local text = read(path)
    assert.truthy(text:find("127.0.0.1:" .. h.port .. " sha256//" .. pki.pin(pki.self.cert), 1, true))
    assert.truthy(text:find("127.0.0.1:" .. h2.port .. " sha256//" .. pki.pin(other.cert), 1, true))
  end)

  it("runs tls.policy.default first unless told otherwise", function()
    local h2 = serve(pki.cn_only)
    local conn, err = connect(h2.port, "localhost", tls.tofu(path))
    assert.is_nil(conn)
    assert.matches("^policy: require_san:", err)
    assert.is_nil(read(path)) -- nothing recorded for a rejected server
    assert.is_true(works(h2.port, "localhost", tls.tofu(path, { policy = false })))
    h2.stop()
  end)

  it("fails closed on a malformed pin file, naming the line", function()
    pki.write(path, "# comment\n127.0.0.1:1 not-a-pin\n")
    local conn, err = connect(h.port, "localhost-self", tls.tofu(path))
    assert.is_nil(conn)
    assert.equal("policy: tofu: " .. path .. " line 2 is not '<host>:<port> sha256//<pin>': "
      .. '"127.0.0.1:1 not-a-pin"', err)
  end)

  it("fails closed when the pin cannot be recorded", function()
    -- a directory nobody can create files in, not even root
    local t = tls.tofu("/proc/lua-tls-tofu-pins")
    local conn, err = connect(h.port, "localhost-self", t)
    assert.is_nil(conn)
    assert.matches("^policy: tofu: cannot record the pin of 127%.0%.0%.1:%d+: cannot create a file "
      .. "next to /proc/lua%-tls%-tofu%-pins: ", err)
  end)

  local function mode_of(p)
    local f = io.popen("stat -c %a " .. p)
    local m = f:read("*l")
    f:close()
    return m
  end

  it("creates missing directories (mode 0700) and the file (mode 0600), as on a fresh home", function()
    local home = dir .. "/home"
    local t = tls.tofu(home .. "/.config/myapp/known_pins")
    assert.is_true(works(h.port, "localhost-self", t))
    assert.equal("700", mode_of(home))
    assert.equal("700", mode_of(home .. "/.config"))
    assert.equal("700", mode_of(home .. "/.config/myapp"))
    assert.equal("600", mode_of(home .. "/.config/myapp/known_pins"))
    assert.same({ "known_pins" }, listdir(home .. "/.config/myapp"))
    os.execute("rm -rf " .. home)
  end)

  it("writes the file with mode 0600 even over a readable one, leaving nothing behind", function()
    pki.write(path, "# old\n")
    os.execute("chmod 644 " .. path)
    assert.is_true(works(h.port, "localhost-self", tls.tofu(path)))
    assert.equal("600", mode_of(path))
    assert.same({ "known_pins" }, listdir(dir))
  end)

  it("keys engines by their server name", function()
    local t = tls.tofu(path)
    local cli = assert(tls.engine { insecure_noverifycert = true, servername = "localhost-self", policy = t })
    local srv = assert(tls.engine { mode = "server", cert_file = pki.self.cert, key_file = pki.self.key })
    assert(E.handshake(cli, srv))
    assert.equal("sha256//" .. pki.pin(pki.self.cert), t:lookup("localhost-self"))
  end)

  it("refuses to run on a server, where the name is the client's choice (SNI)", function()
    local t = tls.tofu(path, { policy = false })
    local srv = assert(tls.engine { mode = "server", cert_file = pki.server.cert,
      key_file = pki.server.key, verify_client = "optional", insecure_noverifycert = true,
      policy = t })
    local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "any-name.test",
      cert = pki.read(pki.self.cert), key = pki.read(pki.self.key) })
    local serr
    for _ = 1, 50 do
      cli:handshake()
      srv:feed(cli:drain())
      local ok, e = srv:handshake()
      if ok or (e ~= "wantread" and e ~= "wantwrite") then serr = ok or e; break end
      cli:feed(srv:drain())
    end
    assert.matches("^policy: tofu: pins the keys of servers a client connects to; on a server", serr)
    assert.is_nil(read(path))  -- nothing recorded under the client's name
  end)

  it("raises on a bad path or unknown options", function()
    assert.error_matches(function() tls.tofu() end, "tls.tofu: path must be a file name")
    assert.error_matches(function() tls.tofu(path, { polcy = false }) end, "unknown option 'polcy'")
    assert.error_matches(function() tls.tofu(path, { policy = {} }) end,
      "option 'policy' must be a tls.policy or false")
  end)
end)

describe("tls.tofu's keys", function()
  -- A stand-in conn: a policy only asks it for peer() and info().
  local function fake_conn(servername)
    local pem = pki.read(pki.self.cert)
    return {
      peer = function() return { chain_pem = pem } end,
      info = function() return { servername = servername } end,
    }
  end

  it("are host:port as tls.connect was given them, lower-cased, IPv6 in brackets", function()
    local path = dir .. "/keys"
    local t = tls.tofu(path, { policy = false })
    local pin = "sha256//" .. pki.pin(pki.self.cert)
    assert.is_true(t(fake_conn(), { host = "Device.LAN", port = 8443 }))
    assert.is_true(t(fake_conn(), { host = "::1", port = "8443" }))
    assert.equal(pin, t:lookup("device.lan:8443"))
    assert.equal(pin, t:lookup("[::1]:8443"))
  end)

  it("are the server name without a host (tls.wrap, engines, a direct call)", function()
    local path = dir .. "/keys-sni"
    local t = tls.tofu(path, { policy = false })
    assert.is_true(t(fake_conn(), { servername = "by-ctx.test" }))
    assert.is_true(t(fake_conn("by-info.test")))
    assert.is_string(t:lookup("by-ctx.test"))
    assert.is_string(t:lookup("by-info.test"))
    local ok, err = t(fake_conn())
    assert.is_nil(ok)
    assert.matches("^policy: tofu: no host name to record the pin under", err)
  end)

  it("refuse a name that would corrupt the file, which keeps working for other hosts", function()
    local path = dir .. "/keys-evil"
    local t = tls.tofu(path, { policy = false })
    assert.is_true(t(fake_conn(), { host = "good.test", port = 1 }))
    local before = read(path)
    for _, ctx in ipairs {
      { servername = "evil.test\nother.test:1 sha256//AAAA" },
      { host = "evil.test other.test", port = 1 },
      { host = "evil.test", port = "1\n" },
    } do
      local ok, err = t(fake_conn(), ctx)
      assert.is_nil(ok)
      assert.matches("^policy: tofu: refusing to record a pin under the ", err)
    end
    local ok, err = t(fake_conn("evil\r.test"))
    assert.is_nil(ok)
    assert.matches('^policy: tofu: refusing to record a pin under the host name "evil\\x0d%.test"', err)
    assert.equal(before, read(path))
    assert.is_true(t(fake_conn(), { host = "good.test", port = 1 }))
    assert.is_true(t(fake_conn(), { host = "next.test", port = 2 }))
    assert.is_string(t:lookup("next.test:2"))
  end)
end)

describe("tls.core's private files (tls.tofu writes through them)", function()
  local core = require "tls.core"

  it("replace_file writes a new file of mode 0600 over the old one, nothing left behind", function()
    local d = dir .. "/core-files"
    assert.is_true(core.mkdir(d))
    assert.is_true(core.mkdir(d))   -- an existing directory is fine
    pki.write(d .. "/f", "old")
    assert.is_true(core.replace_file(d .. "/f", "new\0data"))
    assert.equal("new\0data", read(d .. "/f"))
    assert.same({ "f" }, listdir(d))
    os.execute("rm -rf " .. d)
  end)

  it("replace_file and mkdir fail with a message and errno", function()
    local ok, err, code = core.replace_file(dir .. "/missing/f", "x")
    assert.is_nil(ok)
    assert.equal("cannot create a file next to " .. dir .. "/missing/f: No such file or directory", err)
    assert.equal(2, code)
    pki.write(dir .. "/plain", "")
    ok, err = core.mkdir(dir .. "/plain")
    assert.is_nil(ok)
    assert.equal("cannot create the directory " .. dir .. "/plain: File exists", err)
    os.remove(dir .. "/plain")
  end)
end)
