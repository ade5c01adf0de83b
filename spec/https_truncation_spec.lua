-- tls.https and the end of the TLS connection, against a Python ssl server
-- (spec/peers/tls_end_server.py) that ends each response with
-- close_notify or with a bare TCP close: a body delimited by the close is
-- complete only after close_notify; a body framed by Content-Length or
-- chunked encoding is complete by its framing, whatever follows.

local pki = require "support.pki"
local peers = require "support.peers"
local https = require "tls.https"

describe("tls.https and the end of the connection", function()
  local srv, base
  local BODY = ("hello, world\n"):rep(4)

  peers.fixture(function(p) return peers.tls_end(p.server) end, function(s)
    srv, base = s, "https://127.0.0.1:" .. s.port
  end)

  local function get(path)
    return https.get(base .. path, { ca_file = pki.ca.cert, timeout = 5, total_timeout = 20 })
  end

  it("returns a body delimited by the close that ends with close_notify", function()
    local res = assert(get("/close/notify"))
    assert.equal(200, res.status)
    assert.equal(BODY, res.body)
  end)

  it("fails a body delimited by the close that ends without close_notify", function()
    local res, err = get("/close/cut")
    assert.is_nil(res)
    assert.equal("truncated response: the connection was cut off (closed without TLS close_notify) "
      .. "after " .. #BODY .. " body bytes, in a body delimited by the close", err)
    -- the LuaSocket form fails the same way
    local body, rerr = https.request { url = base .. "/close/cut", ca_file = pki.ca.cert, timeout = 5 }
    assert.is_nil(body)
    assert.matches("^truncated response: the connection was cut off", rerr)
  end)

  for _, framing in ipairs { "length", "chunked" } do
    it("returns a " .. framing .. "-framed body whatever the end of the connection", function()
      assert.equal(BODY, assert(get("/" .. framing .. "/notify")).body)
      assert.equal(BODY, assert(get("/" .. framing .. "/cut")).body)
    end)
  end
end)
