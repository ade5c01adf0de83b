-- OCSP stapling (from a DER file or PEM text) and CRLs, on both sides.

local tls = require "tls"
local kit = require "support.server_kit"
local peers = require "support.peers"

local P

describe("server OCSP and CRLs", function()
  lazy_setup(function() P = kit.setup() end)
  lazy_teardown(function() kit.teardown() end)

  describe("OCSP stapling", function()
    it("staples a DER response from ocsp_staple_file; the module's client sees it", function()
      local srv = peers.echo(P.ocsp_server, ("{ ocsp_staple_file = %q }"):format(P.staple_aia_good))
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, ocsp_require_stapling = true, timeout = 5 }))
      local ocsp = conn:peer().ocsp
      conn:close()
      assert.is_table(ocsp)
      assert.equal(0, ocsp.cert_status) -- TLS_OCSP_CERT_GOOD
      assert.equal("good", ocsp.result)
      assert.is_true(ocsp.next_update > os.time())
    end)

    it("staples PEM text given as ocsp_staple, as DER on the wire", function()
      local port = kit.proc.free_port()
      local l = assert(tls.listen("127.0.0.1", port, {
        cert_file = P.server.cert, key_file = P.server.key,
        ocsp_staple = kit.pem_of(P.staple_good) }))
      finally(function() l:close() end)
      local saved = os.tmpname()
      local out = kit.serve(l, ("gnutls-cli --x509cafile %s -p %d --verify-hostname localhost --save-ocsp %s 127.0.0.1")
        :format(P.ca, port, saved), function(c) c:send("hi\n") end)
      local got = kit.read(saved)
      os.remove(saved)
      assert.matches("The certificate is trusted", out, 1, true)
      assert.equal(kit.read(P.staple_good), got)
      out = kit.serve(l, ("openssl s_client -connect 127.0.0.1:%d -status -ign_eof"):format(port),
        function(c) c:send("hi\n") end)
      assert.matches("Cert Status: good", out, 1, true)
    end)

    it("DER bytes also work as ocsp_staple, per keypair too", function()
      local cfg = assert(tls.config({
        cert_file = P.server.cert, key_file = P.server.key,
        keypairs = { { cert_file = P.alt.cert, key_file = P.alt.key,
          ocsp_staple = kit.read(P.staple_good) } } }))
      assert.is_true(cfg:has_keypair())
    end)

    it("refuses a staple that is not an OCSP response, naming the option", function()
      local cfg, err = tls.config({ cert_file = P.server.cert, key_file = P.server.key,
        ocsp_staple = "not an ocsp response" })
      assert.is_nil(cfg)
      assert.matches("^ocsp_staple: not an OCSP response", err)
      cfg, err = tls.config({ cert_file = P.server.cert, key_file = P.server.key,
        ocsp_staple_file = P.server.cert })
      assert.is_nil(cfg)
      assert.matches("ocsp_staple_file: '" .. P.server.cert .. "' is not an OCSP response", err, 1, true)
      cfg, err = tls.config({ cert_file = P.server.cert, key_file = P.server.key,
        ocsp_staple = "-----BEGIN OCSP RESPONSE-----\n!!!\n-----END OCSP RESPONSE-----\n" })
      assert.is_nil(cfg)
      assert.matches("^ocsp_staple: not an OCSP response", err)
      cfg, err = tls.config({ keypairs = { { cert_file = P.server.cert, key_file = P.server.key,
        ocsp_staple_file = "/nonexistent/staple.der" } } })
      assert.is_nil(cfg)
      assert.matches("ocsp_staple_file: cannot read '/nonexistent/staple.der'", err, 1, true)
    end)

    it("a client rejects a stapled 'revoked' response", function()
      local srv = peers.echo(P.ocsp_revoked, ("{ ocsp_staple_file = %q }"):format(P.staple_aia_revoked))
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port, { ca_file = P.ca, timeout = 5 })
      assert.is_nil(conn)
      assert.matches("revoked", err)
    end)

    -- libtls (tls_ocsp.c) checks a staple against the responder URL of the
    -- certificate; without one it refuses any staple. Documented in doc/server.md (OCSP stapling).
    it("a libtls client refuses a staple for a certificate without an OCSP URL", function()
      local srv = peers.echo(P.server, ("{ ocsp_staple_file = %q }"):format(P.staple_good))
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port, { ca_file = P.ca, timeout = 5 })
      assert.is_nil(conn)
      assert.matches("no OCSP URLs in peer certificate", err, 1, true)
    end)

    it("ocsp_require_stapling refuses a server that staples nothing", function()
      local srv = peers.echo(P.server)
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port,
        { ca_file = P.ca, ocsp_require_stapling = true, timeout = 5 })
      assert.is_nil(conn)
      assert.matches("ocsp", err:lower())
    end)
  end)

  describe("CRLs", function()
    it("a config with a CRL is not mistaken for a cached one whose CA text runs on into it", function()
      local ca, crl = kit.read(P.ca), kit.read(P.crl)
      -- options whose values, joined with the cache key's separators,
      -- once gave the key of { ca = ca, crl = crl }
      local odd = assert(tls.config_for { ca = ca .. "\0crl\0string\0" .. crl })
      local cfg = assert(tls.config_for { ca = ca, crl = crl })
      assert.are_not.equal(odd, cfg)
      assert.equal(cfg, tls.config_for { ca = ca, crl = crl })
      local srv = peers.s_server(P.revoked_server)
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port, { config = cfg, timeout = 5 })
      assert.is_nil(conn)
      assert.matches("revoked", err)
    end)

    it("a client with crl_file rejects a revoked server certificate", function()
      local srv = peers.s_server(P.revoked_server)
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port,
        { ca_file = P.ca, crl_file = P.crl, timeout = 5 })
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err), err)
      assert.matches("revoked", err)
    end)

    it("a client with crl_file accepts a server certificate that is not revoked", function()
      local srv = peers.s_server(P.server)
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, crl_file = P.crl, timeout = 5 }))
      assert.equal(4, conn:send("abc\n"))
      assert.equal("cba", conn:receive("*l"))
      conn:close()
    end)

    it("a server with crl_file rejects a revoked client certificate and serves the next", function()
      local port = kit.proc.free_port()
      local l = assert(tls.listen("127.0.0.1", port, {
        cert_file = P.server.cert, key_file = P.server.key,
        verify_client = true, ca_file = P.ca, crl_file = P.crl }))
      finally(function() l:close() end)
      local client = "openssl s_client -connect 127.0.0.1:%d -cert %s -key %s -ign_eof"
      local _, conn, err = kit.serve(l, client:format(port, P.revoked_client.cert,
        P.revoked_client.key), function(c) return c end)
      assert.is_nil(conn)
      -- libtls records the reason ("certificate revoked") on the server
      -- context, not the connection: the conn's error only says it failed
      assert.is_true(tls.is_verify_error(err), err)
      assert.matches("certificate verify failed", err, 1, true)
      local _, subject = kit.serve(l, client:format(port, P.client.cert, P.client.key),
        function(c) return c:peer().subject end)
      assert.equal("/CN=client.test", subject)
    end)

    it("crl as PEM text works like crl_file", function()
      local srv = peers.s_server(P.revoked_server)
      finally(srv.stop)
      local conn, err = tls.connect("localhost", srv.port,
        { ca_file = P.ca, crl = kit.read(P.crl), timeout = 5 })
      assert.is_nil(conn)
      assert.matches("revoked", err)
    end)
  end)
end)
