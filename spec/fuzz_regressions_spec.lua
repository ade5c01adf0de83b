-- Fuzz regressions: every input under fuzz/regressions/<harness>/ and every
-- seed under fuzz/corpus/<harness>/ goes through a Lua equivalent of that
-- harness (fuzz/engine_server_fuzz.c, fuzz/engine_client_fuzz.c,
-- fuzz/config_fuzz.c, fuzz/x509_fuzz.lua), so `make test` replays them
-- without clang or libFuzzer. Each must come back as success or nil plus a
-- message: never a raised error, never a crash.
--
-- To turn a fuzz crash into a regression spec: drop the crashing input
-- (build/fuzz/crashes/<harness>-crash-...) into fuzz/regressions/<harness>/
-- once the bug is fixed. This file picks it up; nothing to edit here.

local tls = require "tls"
local x509 = require "tls.x509"
local pki = require "support.pki"

local core = tls.core

-- Every file of a directory but README and .gitkeep, sorted.
local function inputs(dir)
  local list = {}
  local p = assert(io.popen("ls -A " .. dir .. " 2>/dev/null"))
  for name in p:lines() do
    if name ~= "README" and name ~= ".gitkeep" then
      list[#list + 1] = { name = dir .. "/" .. name, data = pki.read(dir .. "/" .. name) }
    end
  end
  p:close()
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

local function all_inputs(harness)
  local list = inputs("fuzz/regressions/" .. harness)
  for _, i in ipairs(inputs("fuzz/corpus/" .. harness)) do list[#list + 1] = i end
  return list
end

local function want(err) return err == "wantread" or err == "wantwrite" end

local function check_err(err, what)
  if type(err) ~= "string" or #err == 0 then
    error(what .. ": failure without a message: " .. tostring(err), 0)
  end
end

-- FUZZ_LUA_PUMP of fuzz/harness.h: feed the input in chunks, pump the
-- handshake, read and answer any data, then end the input and close.
local function pump(e, data)
  local chunk = 1 + (#data * 31) % 2048
  local pos, dead = 1, false
  while pos <= #data and not dead do
    local ok, err = e:feed(data:sub(pos, pos + chunk - 1))
    if not ok then check_err(err, "feed") end
    pos = pos + chunk
    local hs, herr = e:handshake()
    if not hs then check_err(herr, "handshake"); dead = not want(herr) end
    e:drain()
    if hs then
      local s, rerr = e:receive(64)
      if not s then check_err(rerr, "receive"); dead = not want(rerr) end
      local n, serr = e:send("pong")
      if not n then check_err(serr, "send") end
      e:drain()
    end
  end
  e:feed_eof()
  local hs, herr = e:handshake()
  if not hs then check_err(herr, "handshake at eof") end
  local s, rerr = e:receive("*a")
  if not s then check_err(rerr, "receive at eof") end
  e:drain()
  assert(e:close() == true)
  assert(e:close() == true)
  local s2, cerr = e:receive()
  assert(s2 == nil and cerr == "closed", "receive after close: " .. tostring(cerr))
end

-- Runs fn(data) for every input of a harness; fails naming the input.
local function replay(harness, fn)
  local list = all_inputs(harness)
  assert.is_true(#list > 0, "no inputs for " .. harness)
  for _, input in ipairs(list) do
    local ok, err = pcall(fn, input.data)
    assert(ok, input.name .. ": " .. tostring(err))
    collectgarbage()
  end
end

describe("fuzz regressions and seeds", function()
  local server_pem, key_pem, ca_pem
  lazy_setup(function()
    pki.setup()
    server_pem, key_pem = pki.read(pki.server.cert), pki.read(pki.server.key)
    ca_pem = pki.read(pki.ca.cert)
  end)
  lazy_teardown(function() pki.cleanup() end)

  it("engine_server: a server engine fed a client's bytes fails cleanly or succeeds", function()
    local cfg = assert(core.config{ cert = server_pem, key = key_pem, alpn = { "h2", "http/1.1" } })
    local srv = assert(core.server(cfg))
    replay("engine_server", function(data)
      local e = assert(srv:engine())
      e:settimeout(0)
      pump(e, data)
    end)
  end)

  it("engine_client: a client engine fed a server's bytes fails cleanly or succeeds", function()
    local verifying = assert(core.config{ ca = ca_pem, alpn = { "h2", "http/1.1" } })
    local insecure = assert(core.config{ insecure_noverifycert = true, insecure_noverifyname = true })
    replay("engine_client", function(data)
      -- both clients for every input (the harness picks one by length)
      for _, cfg in ipairs { verifying, insecure } do
        local e = assert(core.client(cfg, "localhost", true))
        e:settimeout(0)
        local ok, err = e:handshake()
        assert(not ok and err == "wantread", "client did not wait for the server")
        assert(#e:drain() > 0, "no ClientHello")
        pump(e, data)
      end
    end)
  end)

  it("config: NUL-separated PEM and option text gives a config or nil and a message", function()
    local names = { "cert", "key", "ca", "crl", "ocsp_staple", "ciphers", "ecdhecurves", "protocols" }
    local loaded = 0
    replay("config", function(data)
      local opts, i = {}, 1
      for part in (data .. "\0"):gmatch("([^%z]*)%z") do
        if names[i] and #part > 0 then opts[names[i]] = part end
        i = i + 1
      end
      local cfg, err = core.config(opts)
      if not cfg then check_err(err, "config") return end
      loaded = loaded + 1
      if cfg:has_keypair() then
        local srv, serr = core.server(cfg)
        if not srv then check_err(serr, "server") return end
        local e = assert(srv:engine())
        e:settimeout(0)
        local ok, herr = e:handshake()
        assert(not ok and herr == "wantread", "server engine: " .. tostring(herr))
        e:close()
      end
      if opts.cert and opts.key then
        local kp, kerr = core.config{ keypairs = { { cert = opts.cert, key = opts.key } } }
        if not kp then check_err(kerr, "keypairs") end
      end
      local c, cerr = core.client(cfg, "localhost", true)
      if not c then check_err(cerr, "client") return end
      c:settimeout(0)
      local ok, herr = c:handshake()
      if not ok then check_err(herr, "client handshake") end
      c:close()
    end)
    -- the seeds include good pairs: the spec reaches the server path
    assert.is_true(loaded > 0)
  end)

  it("x509: tls.x509.parse returns a certificate table or nil and a message", function()
    replay("x509", function(data)
      local cert, err = x509.parse(data)
      if cert == nil then
        check_err(err, "x509.parse")
        assert(not err:find("internal error", 1, true), err)
      else
        assert(type(cert) == "table" and type(cert.der) == "string", "not a certificate table")
      end
    end)
  end)
end)
