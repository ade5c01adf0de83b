-- tls.config(opts): options, and the messages for bad options and bad files.
local tls = require "tls"
local pki = require "support.pki"
local E = require "support.engines"

describe("tls.config", function()
  setup(function() pki.setup() end)
  teardown(function() pki.cleanup() end)

  describe("with good options", function()
    it("builds a reusable config from no options (system trust store)", function()
      local cfg = assert(tls.config{})
      assert.matches("^tls%.config", tostring(cfg))
    end)

    it("builds a server config from files and from PEM text", function()
      assert.truthy(assert(tls.config{ cert_file = pki.server.cert, key_file = pki.server.key }):has_keypair())
      assert.truthy(assert(tls.config{ cert = pki.read(pki.server.cert), key = pki.read(pki.server.key) }):has_keypair())
    end)

    it("keeps every name of a long ALPN list (over 2 KiB joined)", function()
      -- The list is joined in a luaL_Buffer. Names of 204 bytes fill its
      -- first 1 KiB exactly after five names and a comma each between them:
      -- the buffer grows just as the sixth comma goes in, which is when a
      -- name pushed above the buffer used to be dropped in its place.
      for _, len in ipairs({ 204, 200, 255, 145, 127 }) do
        local names = {}
        for i = 1, 12 do names[i] = ("%02d"):format(i) .. ("p"):rep(len - 2) end
        local cfg = assert(tls.config{ alpn = names, cert_file = pki.server.cert, key_file = pki.server.key })
        for _, want in ipairs({ 6, 7, 12 }) do
          -- a client offering only that name gets it from a server given all twelve
          local s = assert(tls.engine{ mode = "server", config = cfg })
          local c = assert(tls.engine{ alpn = { names[want] }, ca_file = pki.ca.cert, servername = "localhost" })
          assert(E.handshake(c, s))
          assert.equal(names[want], c:info().alpn, "names of " .. len .. " bytes, name " .. want)
        end
      end
    end)

    it("accepts verify_depth 0 to 100 (0: no intermediate CA)", function()
      assert.truthy(tls.config{ verify_depth = 0 })
      assert.truthy(tls.config{ verify_depth = 100 })
      local cfg, err = tls.config{ verify_depth = -1 }
      assert.is_nil(cfg)
      assert.equal("verify_depth: must be between 0 and 100", err)
    end)

    it("accepts protocols limited to TLS 1.3 or 1.2", function()
      assert.truthy(tls.config{ protocols = "tlsv1.3" })
      assert.truthy(tls.config{ protocols = "tlsv1.2,tlsv1.3" })
    end)
  end)

  describe("misuse raises an error naming the option", function()
    it("for an unknown option", function()
      assert.has_error(function() tls.config{ ca_fiel = "x" } end)
      local ok, err = pcall(tls.config, { ca_fiel = "x" })
      assert.is_false(ok)
      assert.matches("unknown option 'ca_fiel'", err)
    end)

    it("for an unknown option given to tls.connect", function()
      local ok, err = pcall(tls.connect, "localhost", 1, { verify_hostname = false })
      assert.is_false(ok)
      assert.matches("tls.connect: unknown option 'verify_hostname'", err, 1, true)
    end)

    it("for a value of the wrong type", function()
      local ok, err = pcall(tls.config, { verify_depth = "3" })
      assert.is_false(ok)
      assert.matches("option 'verify_depth' must be an integer, got string", err, 1, true)
      ok, err = pcall(tls.config, { insecure_noverifycert = 1 })
      assert.is_false(ok)
      assert.matches("option 'insecure_noverifycert' must be a boolean", err, 1, true)
      ok, err = pcall(tls.config, { verify_client = "yes" })
      assert.is_false(ok)
      assert.matches("option 'verify_client' must be true, false or \"optional\"", err, 1, true)
    end)

    it("points at the caller, not at the module", function()
      local ok, err = pcall(function() return tls.config{ nope = true } end)
      assert.is_false(ok)
      assert.not_matches("lua/tls/init%.lua", err)
    end)

    it("for a connection option given to a config", function()
      local ok, err = pcall(tls.config, { timeout = 1 })
      assert.is_false(ok)
      assert.matches("option 'timeout' belongs to a connection", err, 1, true)
    end)
  end)

  describe("bad files return nil and a message naming the option and the file", function()
    it("for a missing cert_file", function()
      local cfg, err = tls.config{ cert_file = "/nonexistent/c.pem", key_file = pki.server.key }
      assert.is_nil(cfg)
      assert.matches("cert_file: cannot read '/nonexistent/c.pem'", err, 1, true)
    end)

    it("for a missing key_file", function()
      local cfg, err = tls.config{ cert_file = pki.server.cert, key_file = "/nonexistent/k.pem" }
      assert.is_nil(cfg)
      assert.matches("key_file: cannot read '/nonexistent/k.pem'", err, 1, true)
    end)

    it("for a missing ca_file and a missing ca_path", function()
      local cfg, err = tls.config{ ca_file = "/nonexistent/ca.pem" }
      assert.is_nil(cfg)
      assert.matches("ca_file: cannot read '/nonexistent/ca.pem'", err, 1, true)
      cfg, err = tls.config{ ca_path = "/nonexistent/dir" }
      assert.is_nil(cfg)
      assert.matches("ca_path: '/nonexistent/dir'", err, 1, true)
    end)

    it("for a missing file given to tls.connect, before any connection is made", function()
      local conn, err = tls.connect("localhost", 1, { ca_file = "/nonexistent/ca.pem" })
      assert.is_nil(conn)
      assert.matches("ca_file: cannot read '/nonexistent/ca.pem'", err, 1, true)
    end)

    it("for a key that does not match its certificate, naming both", function()
      local cfg, err = tls.config{ cert_file = pki.server.cert, key_file = pki.alt.key }
      assert.is_nil(cfg)
      assert.matches("key_file", err, 1, true)
      assert.matches(pki.alt.key, err, 1, true)
      assert.matches("cert_file", err, 1, true)
      assert.matches(pki.server.cert, err, 1, true)
    end)

    it("for a mismatched pair inside keypairs, naming the entry", function()
      local cfg, err = tls.config{ keypairs = {
        { cert_file = pki.server.cert, key_file = pki.server.key },
        { cert_file = pki.alt.cert, key_file = pki.server.key } } }
      assert.is_nil(cfg)
      assert.matches("keypairs[2]", err, 1, true)
      assert.matches(pki.alt.cert, err, 1, true)
    end)

    it("for a certificate or key file that is not PEM", function()
      local cfg, err = tls.config{ cert_file = pki.bad_file, key_file = pki.server.key }
      assert.is_nil(cfg)
      assert.matches("cert_file '" .. pki.bad_file .. "' is not PEM", err, 1, true)
      cfg, err = tls.config{ cert_file = pki.server.cert, key_file = pki.bad_file }
      assert.is_nil(cfg)
      assert.matches("key_file '" .. pki.bad_file .. "' is not PEM", err, 1, true)
      cfg, err = tls.config{ cert = "garbage", key = pki.read(pki.server.key) }
      assert.is_nil(cfg)
      assert.matches("cert is not PEM text", err, 1, true)
    end)

    it("says what is wrong with this file, not with an earlier one", function()
      assert.is_nil(tls.config{ cert_file = pki.server.cert, key_file = pki.alt.key })
      local _, err = tls.config{ cert_file = pki.bad_file, key_file = pki.server.key }
      assert.not_matches("mismatch", err)
      assert.matches("is not PEM", err, 1, true)
    end)

    it("for a session_file that is a symbolic link, leaving its target untouched", function()
      -- libtls would write the session (its secrets) into the link's target
      local target, link = os.tmpname(), os.tmpname()
      finally(function() os.remove(target); os.remove(link) end)
      local f = assert(io.open(target, "w"))
      f:write("the user's own file")
      f:close()
      os.remove(link)
      assert(os.execute(("ln -s '%s' '%s'"):format(target, link)))
      local cfg, err = tls.config{ session_file = link }
      assert.is_nil(cfg)
      assert.equal("session_file: '" .. link .. "' is a symbolic link; give the path of a "
        .. "regular file (the session's secrets are written to it)", err)
      f = assert(io.open(target, "rb"))
      assert.equal("the user's own file", f:read("*a"))
      f:close()
    end)

    it("for a certificate without its key", function()
      local cfg, err = tls.config{ cert_file = pki.server.cert }
      assert.is_nil(cfg)
      assert.matches("needs key_file or key", err, 1, true)
    end)
  end)

  describe("bad values return nil and a message", function()
    it("refuses TLS 1.0 and 1.1 in protocols", function()
      local cfg, err = tls.config{ protocols = "tlsv1.0" }
      assert.is_nil(cfg)
      assert.matches("protocols: 'tlsv1.0' enables TLS 1.0 or 1.1", err, 1, true)
      cfg, err = tls.config{ protocols = "tlsv1.1,tlsv1.2" }
      assert.is_nil(cfg)
      assert.matches("protocols:", err, 1, true)
    end)

    it("refuses protocols it cannot parse", function()
      local cfg, err = tls.config{ protocols = "ssl3" }
      assert.is_nil(cfg)
      assert.matches("protocols: cannot parse 'ssl3'", err, 1, true)
    end)

    it("raises on an unknown option or a non-string value inside a keypairs entry", function()
      assert.has_error(function() tls.config{ keypairs = { { cert_filee = "x" } } } end,
        "tls.config: keypairs[1]: unknown option 'cert_filee' (an entry takes cert_file/cert, "
        .. "key_file/key, key_password, ocsp_staple_file/ocsp_staple)")
      assert.has_error(function() tls.config{ keypairs = { { cert_file = 42 } } } end,
        "tls.config: keypairs[1]: option 'cert_file' must be a string, got number")
    end)

    it("refuses CA text or a CA file without PEM certificates", function()
      local cfg, err = tls.config{ ca = "not a certificate" }
      assert.is_nil(cfg)
      assert.equal("ca: not PEM certificates (no -----BEGIN CERTIFICATE----- line)", err)
      cfg, err = tls.config{ ca_file = pki.bad_file }
      assert.is_nil(cfg)
      assert.matches("^ca_file: '.*' holds no PEM certificate", err)
      assert(tls.config{ ca_file = pki.ca.cert })  -- control
    end)

    it("refuses unknown ciphers", function()
      local cfg, err = tls.config{ ciphers = "no-such-cipher" }
      assert.is_nil(cfg)
      assert.matches("^ciphers:", err)
    end)

    it("refuses a server without a certificate", function()
      local l, err = tls.listen("127.0.0.1", 0, {})
      assert.is_nil(l)
      assert.matches("no certificate", err, 1, true)
    end)
  end)

  describe("tls.config_for's cache", function()
    local core = require "tls.core"

    -- A handshake of a client config against the test server (pki.ca's).
    local function trusts_test_server(cfg)
      local c = assert(tls.engine { config = cfg, servername = "localhost" })
      local ok, err = E.handshake(c, E.server())
      return ok == true, err
    end

    -- A file whose stamp has settled: changed more than 2 seconds ago.
    local function settled(path, text)
      pki.write(path, text)
      os.execute("sleep 2.2")
      assert(core.file_stamp(path), "the file's stamp did not settle")
    end

    it("reuses the config of a ca_file that has not changed, and reads a changed one again", function()
      local ca = pki.dir .. "/cached-ca.pem"
      settled(ca, pki.read(pki.ca.cert))
      local cfg = assert(tls.config_for { ca_file = ca, timeout = 5 })
      assert.equal(cfg, assert(tls.config_for { ca_file = ca }))
      assert.is_true((trusts_test_server(cfg)))
      -- same path, other CA: whether cached yet or not, the new file is what it trusts
      pki.write(ca, pki.read(pki.other_ca.cert))
      local now = assert(tls.config_for { ca_file = ca })
      assert.are_not.equal(cfg, now)
      local ok, err = trusts_test_server(now)
      assert.is_false(ok)
      assert.matches("verify", err, 1, true)
      -- and once settled, the cached config is the new file's
      settled(ca, pki.read(pki.other_ca.cert))
      local later = assert(tls.config_for { ca_file = ca })
      assert.equal(later, assert(tls.config_for { ca_file = ca }))
      assert.is_false((trusts_test_server(later)))
    end)

    it("keeps configs apart that differ in any option or file", function()
      local a, b = pki.dir .. "/cache-a.pem", pki.dir .. "/cache-b.pem"
      pki.write(a, pki.read(pki.ca.cert))
      settled(b, pki.read(pki.ca.cert))
      local ca = assert(tls.config_for { ca_file = a })
      assert.are_not.equal(ca, assert(tls.config_for { ca_file = b }))
      assert.are_not.equal(assert(tls.config_for { ca_file = b }),
        assert(tls.config_for { ca_file = b, insecure_noverifytime = true }))
    end)

    it("does not hand out a cached config that one caller's <close> freed", function()
      local opts = { ca = pki.read(pki.ca.cert), alpn = { "x-closed" } }
      local cfg = assert(tls.config_for(opts))
      assert.equal(cfg, assert(tls.config_for(opts)))
      getmetatable(cfg).__close(cfg)  -- what `local cfg <close> = ...` does at the scope's end
      local again = assert(tls.config_for(opts))
      assert.are_not.equal(cfg, again)
      assert.is_true((trusts_test_server(again)))
      assert.equal(again, assert(tls.config_for(opts)))
    end)

    it("never caches a config with a client key file", function()
      local opts = { ca_file = pki.ca.cert, cert_file = pki.client.cert, key_file = pki.client.key }
      assert.are_not.equal(assert(tls.config_for(opts)), assert(tls.config_for(opts)))
    end)

    it("core.file_stamp: nil for a missing file or one changed in the last seconds", function()
      assert.is_nil(core.file_stamp(pki.dir .. "/missing.pem"))
      local f = pki.dir .. "/fresh.pem"
      pki.write(f, "x")
      assert.is_nil(core.file_stamp(f, 3600))  -- (the settle time in seconds)
      assert.is_string(core.file_stamp(f, -1))
    end)
  end)
end)
