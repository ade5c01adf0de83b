-- Session resumption, as far as libtls allows (doc/server.md, "Session
-- resumption"). On both libraries a client with session_file resumes TLS 1.2
-- sessions and no TLS 1.3 ones. The module's own server resumes TLS 1.2
-- sessions on LibreSSL (session_lifetime, with or without ticket_keys) and
-- nothing on LibreTLS (its ticket callback; these specs flip if LibreTLS
-- fixes it); TLS 1.3 resumption by the server works on neither.

local tls = require "tls"
local libtls = require "support.libtls"
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

  it("the module's server resumes a TLS 1.2 session for the module's client on LibreSSL only (limit)",
      function()
    local srv = peers.echo(P.server, '{ session_lifetime = 300, protocols = "tlsv1.2" }')
    finally(srv.stop)
    local first, second = connect_twice(srv.port, nil, "abc")
    assert.equal("TLSv1.2", first.version)
    assert.is_false(first.resumed)
    assert.equal(libtls.libressl, second.resumed)
    -- what a client sees: a session ticket on LibreSSL, an empty one on
    -- LibreTLS, so nothing to resume there
    local file = os.tmpname()
    local out = kit.proc.run(("openssl s_client -connect 127.0.0.1:%d -tls1_2 -sess_out %s")
      :format(srv.port, file))
    os.remove(file)
    assert.matches("New, TLSv1.2", out, 1, true)
    if libtls.libressl then
      assert.matches("TLS session ticket:", out, 1, true)
    else
      assert.not_matches("TLS session ticket:", out, 1, true)
    end
  end)

  -- On LibreTLS the module's server never resumes (libtls limit,
  -- doc/server.md "Session resumption"): its ticket callback returns 0,
  -- which OpenSSL 1.1.1+ reads as "send an empty ticket". On LibreSSL it
  -- resumes TLS 1.2 sessions, and TLS 1.3 ones on neither. The client here
  -- is openssl s_client with -sess_out, which stores any resumable session,
  -- TLS 1.2 or 1.3 (it reads TLS 1.3 tickets after the handshake, here
  -- before the server's "ok"), so a limit is the server's: the file stays
  -- empty and the second connection is new. Where the server resumes, the
  -- second connection offers the stored session (-sess_in) and is resumed.
  for _, proto in ipairs({ "tlsv1.2", "tlsv1.3" }) do
    for _, keys in ipairs({ false, true }) do
      local what = keys and "with ticket_keys" or "without ticket_keys"
      local resumes = libtls.libressl and proto == "tlsv1.2"
      it(("the module's server %s %s sessions on %s, session_lifetime %s (limit)")
        :format(resumes and "resumes" or "does not resume", proto, libtls.name, what), function()
        local port = kit.proc.free_port()
        local opts = { cert_file = P.server.cert, key_file = P.server.key,
          session_lifetime = 300, protocols = proto }
        if keys then opts.ticket_keys = { ("\42"):rep(48) } end
        local listener = assert(tls.listen("127.0.0.1", port, opts))
        finally(function() listener:close() end)
        local file = os.tmpname()
        finally(function() os.remove(file) end)
        local flag = proto == "tlsv1.2" and "-tls1_2" or "-tls1_3"
        local version = proto == "tlsv1.2" and "TLSv1.2" or "TLSv1.3"
        local outs, resumed = {}, {}
        for i = 1, 2 do
          local sess = "-sess_out " .. file
          if i == 2 then
            -- s_client stores a session only when it gets a resumable one:
            -- with no session ID and an empty ticket there is none
            local f = assert(io.open(file, "rb"))
            local stored = f:read("*a")
            f:close()
            if resumes then
              assert.matches("BEGIN SSL SESSION PARAMETERS", stored, 1, true)
              sess = "-sess_in " .. file
            else
              assert.equal(0, #stored)
              sess = ""
            end
          end
          outs[i], resumed[i] = kit.serve(listener,
            ("openssl s_client -connect 127.0.0.1:%d -servername localhost -ign_eof %s %s")
              :format(port, flag, sess),
            function(conn)
              conn:settimeout(5)
              assert.equal("hi", conn:receive("*l"))
              assert.equal(version, conn:info().version)
              assert(conn:send("ok\n"))
              return conn:info().resumed
            end, "hi\n")
          assert.matches("\nok\n", outs[i])
        end
        assert.is_false(resumed[1])
        assert.equal(resumes, resumed[2])
        if resumes then
          assert.matches("Reused, TLSv1.2", outs[2], 1, true)
        else
          assert.matches("New, TLSv1.", outs[2], 1, true)
          assert.not_matches("Reused, TLSv1.", outs[2], 1, true)
        end
      end)
    end
  end

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
