-- Session resumption, as far as libtls allows. What works: a client with
-- session_file resumes TLS 1.2 sessions. What does not (libtls limits,
-- documented in the README, "Session resumption"): TLS 1.3 client resumption, and any
-- resumption by the module's own server.

local tls = require "tls"
local kit = require "support.server_kit"
local peers = require "support.peers"

local P

-- s_server -rev answers lines reversed, the module's echo server as sent.
local function connect_twice(port, opts, answer)
  local file = os.tmpname()
  local seen = {}
  for i = 1, 2 do
    local o = { ca_file = P.ca, session_file = file, timeout = 5 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local conn = assert(tls.connect("localhost", port, o))
    assert.equal(4, conn:send("abc\n"))
    assert.equal(answer or "cba", conn:receive("*l"))
    seen[i] = conn:info()
    conn:close()
  end
  os.remove(file)
  return seen[1], seen[2]
end

describe("session resumption", function()
  lazy_setup(function() P = kit.setup() end)
  lazy_teardown(function() kit.teardown() end)

  it("a client with session_file resumes a TLS 1.2 session with openssl s_server", function()
    local srv = peers.s_server(P.server, "-tls1_2")
    finally(srv.stop)
    local first, second = connect_twice(srv.port)
    assert.equal("TLSv1.2", first.version)
    assert.is_false(first.resumed)
    assert.is_true(second.resumed)
  end)

  it("without session_file nothing is resumed", function()
    local srv = peers.s_server(P.server, "-tls1_2")
    finally(srv.stop)
    for _ = 1, 2 do
      local conn = assert(tls.connect("localhost", srv.port, { ca_file = P.ca, timeout = 5 }))
      assert.is_false(conn:info().resumed)
      conn:close()
    end
  end)

  it("TLS 1.3 sessions are not resumed by the libtls client (limit)", function()
    local srv = peers.s_server(P.server, "-tls1_3")
    finally(srv.stop)
    local first, second = connect_twice(srv.port)
    assert.equal("TLSv1.3", first.version)
    assert.is_false(second.resumed)
  end)

  it("the module's server does not resume, even with session_lifetime (limit)", function()
    local srv = peers.echo(P.server, '{ session_lifetime = 300, protocols = "tlsv1.2" }')
    finally(srv.stop)
    local first, second = connect_twice(srv.port, nil, "abc")
    assert.equal("TLSv1.2", first.version)
    assert.is_false(second.resumed)
    -- what a client sees: an empty session ticket, so nothing to resume
    local file = os.tmpname()
    local out = kit.proc.run(("openssl s_client -connect 127.0.0.1:%d -tls1_2 -sess_out %s")
      :format(srv.port, file))
    os.remove(file)
    assert.matches("New, TLSv1.2", out, 1, true)
    assert.not_matches("TLS session ticket:", out, 1, true)
  end)

  describe("options", function()
    it("ticket_keys must be 48-byte strings", function()
      assert.has_error(function() tls.config({ session_lifetime = 300, ticket_keys = { "short" } }) end,
        "tls.config: ticket_keys[1] must be a string of 48 random bytes")
      assert.truthy(tls.config({ session_lifetime = 300, ticket_keys = { ("k"):rep(48) } }))
    end)

    it("session_lifetime is bounded", function()
      local cfg, err = tls.config({ session_lifetime = -1 })
      assert.is_nil(cfg)
      assert.equal("session_lifetime: must be 0 to 604800 seconds", err)
    end)

    it("session_id is 1 to 32 bytes", function()
      assert.truthy(tls.config({ session_id = "web-frontend" }))
      local cfg, err = tls.config({ session_id = ("x"):rep(33) })
      assert.is_nil(cfg)
      assert.equal("session_id: must be 1 to 32 bytes", err)
      cfg, err = tls.config({ session_id = "" })
      assert.is_nil(cfg)
      assert.equal("session_id: must be 1 to 32 bytes", err)
    end)

    it("session_file must be writable", function()
      local cfg, err = tls.config({ session_file = "/nonexistent/dir/session" })
      assert.is_nil(cfg)
      assert.matches("^session_file: cannot open '/nonexistent/dir/session'", err)
    end)
  end)
end)
