-- The examples run from a checkout without an install, from any directory
-- (they find lua/ and build/ next to themselves), and examples/https_get.lua
-- talks to examples/https_server.lua: with -k to its throwaway certificate,
-- with --cacert to one from a CA; -i prints the headers before the body.
-- And `make demo` installs only what the demo needs.

local pki = require "support.pki"
local proc = require "support.proc"
local peers = require "support.peers"

local quote = peers.quote
local root = os.getenv("PWD")

-- Run a command from / with no LUA_PATH/LUA_CPATH: only what the example
-- sets itself (and the system's default paths) can be found.
local function bare(cmd)
  return proc.run("cd / && env -u LUA_PATH -u LUA_CPATH " .. cmd)
end

local function start_server(args)
  local port = proc.free_port()
  local cmd = ("cd / && exec env -u LUA_PATH -u LUA_CPATH " .. proc.lua .. " %s/examples/https_server.lua "
    .. "--port %d %s"):format(quote(root), port, args or "")
  local h = proc.start("sh -c " .. quote(cmd), { port = port, wait = 30 })
  h.port = port
  return h
end

local get = proc.lua .. " " .. quote(root .. "/examples/https_get.lua")

describe("examples", function()
  local server
  after_each(function()
    if server then server.stop() server = nil end
  end)

  it("https_get refuses https_server's throwaway certificate, and -k takes it", function()
    server = start_server()
    local url = ("https://127.0.0.1:%d/hello"):format(server.port)
    local out, status = bare(get .. " " .. url)
    assert.equal(1, status, out)
    assert.matches("https_get: verify:", out)
    out, status = bare(get .. " -k " .. url)
    assert.equal(0, status, out)
    assert.equal("GET /hello\n", out)
  end)

  it("https_get --cacert trusts a CA, and -i prints the headers before the body", function()
    pki.setup()
    server = start_server(("--cert %s --key %s"):format(quote(pki.server.cert), quote(pki.server.key)))
    -- stdout only (stderr says which TLS version was used)
    local out, status = bare(("%s -i --cacert %s https://localhost:%d/with-headers 2>/dev/null"):format(
      get, quote(pki.ca.cert), server.port))
    assert.equal(0, status, out)
    local head, body = out:match("^(HTTP/1%.1 200 OK\r\n.-\r\n\r\n)(.*)$")
    assert(head, "no status line and headers first:\n" .. out)
    assert.matches("\r\nContent%-Length: 18\r\n", head)
    assert.equal("GET /with-headers\n", body:match("^GET /with%-headers\n"))
  end)

  -- make LUA_VERSION=5.1 demo runs lua5.1: the demo and its server must
  -- load the module built for that Lua, not build/'s 5.4 one
  it("the demo runs on the suite's Lua from any directory, its server too", function()
    local out, status = bare(proc.lua .. " " .. quote(root .. "/examples/demo.lua") .. " 2>&1")
    assert.equal(0, status, out)
    assert.matches("status    200 OK", out, 1, true)
    assert.matches("protocol  TLSv1.3", out, 1, true)
  end)

  it("make demo installs only the build, Lua and openssl, not the test toolchain", function()
    local out, status = proc.run("make -n demo")
    assert.equal(0, status, out)
    -- (make's "Entering directory '...'" lines name the checkout, which may hold any word)
    out = out:gsub("make%[%d+%]: [^\n]*", "")
    for _, tool in ipairs({ "lua-busted", "nginx", "gnutls-bin", "lua-cqueues" }) do
      assert.is_nil(out:find(tool, 1, true), "make demo would install " .. tool .. ":\n" .. out)
    end
    assert.truthy(out:find("openssl", 1, true), out)
  end)
end)
