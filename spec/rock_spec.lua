-- `luarocks install` from a rocks server works: `make rock` packs the
-- release rockspec and `git archive` of the tree into build/rocks/, and
-- LuaRocks installs lua-tls from there into a scratch tree, offline, as a
-- user would from luarocks.org. A fresh lua5.4 that sees only that tree then
-- requires tls and makes a real handshake.

local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"

local VERSION = "0.1.0-1"
-- the suite's Lua as luarocks names it (LuaJIT is 5.1, with its own headers)
local LUA_VERSION = _VERSION:match("%d+%.%d+")
local RELEASE = "rockspec/lua-tls-" .. VERSION .. ".rockspec"
local quote = peers.quote

local function rockspec(path)
  local env = {}
  local chunk = assert(loadfile(path, "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env
end

-- Deep equality of plain tables, with the path of the first difference.
local function same(a, b, path)
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then return true end
    return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  for k, v in pairs(a) do
    local ok, where = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing" end
  end
  return true
end

describe("the release rockspec", function()
  local release = rockspec(RELEASE)

  it("builds exactly what the scm rockspec builds", function()
    local ok, where = same(release.build, rockspec("rockspec/lua-tls-scm-1.rockspec").build, "build")
    assert(ok, RELEASE .. " and the scm rockspec differ at " .. tostring(where)
      .. ": run `make release-rockspec` (it copies the scm rockspec's build table into " .. RELEASE .. ")")
  end)

  it("names a tarball of its tag, the supported Lua versions and platforms", function()
    assert.equal(VERSION, release.version)
    assert.matches("/v0%.1%.0%.tar%.gz$", release.source.url)
    assert.equal("lua-tls-0.1.0", release.source.dir)
    assert.same({ "lua >= 5.1, < 5.5" }, release.dependencies)
    assert.is_table(release.external_dependencies.LIBTLS)
    assert.is_table(release.supported_platforms)
    assert.is_string(release.description.license)
    assert.is_string(release.description.homepage)
  end)
end)

describe("luarocks install from make rock's local rocks server", function()
  local tree, server

  setup(function()
    pki.setup()
    local p = io.popen("mktemp -d /tmp/lua-tls-rocktree.XXXXXX")
    tree = p:read("*l")
    p:close()
  end)

  teardown(function()
    if server then server.stop() end
    if tree then os.execute("rm -rf " .. quote(tree)) end
  end)

  it("installs lua-tls offline into a scratch tree that can handshake", function()
    -- a rocks server of this Lua version's own: make test-versions runs two suites at once
    local flavour = rawget(_G, "jit") and "jit" or LUA_VERSION
    -- absolute, as a user may give them (the rock was zipped to ../../ROCK_SERVER)
    local rocks = os.getenv("PWD") .. "/build/rocks-" .. flavour
    local work = os.getenv("PWD") .. "/build/rock-src-" .. flavour
    local out, status = proc.run(("make -s rock ROCK_SERVER=%s ROCK_WORK=%s 2>&1"):format(rocks, work))
    assert.equal(0, status, out)
    assert.truthy(io.open(rocks .. "/lua-tls-" .. VERSION .. ".src.rock"), "no source rock")
    assert.truthy(io.open(rocks .. "/manifest"), "no manifest")

    -- only this server: the spec must not wait on the network
    out, status = proc.run(("luarocks --lua-version %s --tree %s install "
      .. "--only-server=%s lua-tls%s 2>&1"):format(LUA_VERSION, quote(tree), rocks,
      rawget(_G, "jit") and " LUA_INCDIR=/usr/include/luajit-2.1" or ""))
    assert.equal(0, status, out)
    assert.matches("lua%-tls 0%.1%.0%-1 is now installed", out)

    server = peers.echo(pki.server)
    local code = ([[
      local tls = require "tls"
      -- the tls.core that require finds (package.searchpath is missing on 5.1)
      local f = package.cpath:match("[^;]+"):gsub("?", "tls/core")
      assert(io.open(f) and f:find(%q, 1, true))
      local conn = assert(tls.connect("localhost", %d, { ca_file = %q, timeout = 10 }))
      assert(conn:send("hello from the installed rock\n"))
      print(conn:receive("*l"), conn:info().version)
      conn:close()
    ]]):format(tree, server.port, pki.ca.cert)
    local file = os.tmpname()
    pki.write(file, code)
    out, status = proc.run(("cd / && env LUA_PATH=%s LUA_CPATH=%s %s %s 2>&1"):format(
      quote(tree .. "/share/lua/" .. LUA_VERSION .. "/?.lua;" .. tree .. "/share/lua/" .. LUA_VERSION
        .. "/?/init.lua"),
      quote(tree .. "/lib/lua/" .. LUA_VERSION .. "/?.so"), proc.lua, quote(file)))
    os.remove(file)
    assert.equal(0, status, out)
    assert.matches("^hello from the installed rock%s+TLSv1%.3", out)
  end)
end)
