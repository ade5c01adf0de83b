-- The module's server against real clients: openssl s_client, gnutls-cli
-- (gnutls-bin) and curl. Each client runs in the background while the spec
-- accepts in-process and checks what both sides saw.

local tls = require "tls"
local kit = require "support.server_kit"
local libtls = require "support.libtls"

local P, listener, port

local function open_listener(opts)
  if listener then listener:close() end
  port = kit.proc.free_port()
  listener = assert(tls.listen("127.0.0.1", port, opts))
end

-- What the server saw, sent back as an HTTP/1.1 answer for every client.
local function report(conn)
  local index, kp = conn:keypair()
  local info, peer = conn:info(), conn:peer()
  kit.http_reply(conn, "ok\n")
  return { keypair = index, subject = kp.subject, alpn = info.alpn,
    servername = info.servername, peer = peer and peer.subject }
end

local function base_opts(extra)
  local o = {
    cert_file = P.server.cert, key_file = P.server.key,
    keypairs = {
      { cert_file = P.alt.cert, key_file = P.alt.key },
      { cert_file = P.wild.cert, key_file = P.wild.key },
    },
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("server with real clients", function()
  lazy_setup(function() P = kit.setup() end)
  lazy_teardown(function()
    if listener then listener:close(); listener = nil end
    kit.teardown()
  end)

  describe("SNI", function()
    lazy_setup(function() open_listener(base_opts()) end)

    it("openssl s_client -servername gets the matching certificate", function()
      local out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -servername alt.test -verify_return_error "
          .. "-CAfile %s -verify_hostname alt.test -ign_eof"):format(port, P.ca), report)
      assert.matches("subject=CN = alt.test", out, 1, true)
      assert.matches("Verify return code: 0 (ok)", out, 1, true)
      assert.equal(2, seen.keypair)
      assert.equal("CN=alt.test", seen.subject)
      assert.equal("alt.test", seen.servername)
    end)

    it("a wildcard certificate serves a name under it", function()
      local out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -servername www.wild.test -ign_eof")
          :format(port), report)
      assert.matches("subject=CN = wild.test", out, 1, true)
      assert.equal(3, seen.keypair)
      assert.equal("www.wild.test", seen.servername)
    end)

    it("a name with a trailing dot matches no wildcard, as libtls matches it, and keypair() agrees", function()
      -- libtls matches the SNI name exactly as sent; tls.hostname is the one matcher
      -- conn:keypair() and the policy share, so both say what libtls served.
      -- LibreSSL refuses such a name (RFC 6066: no trailing dot) with an alert.
      local out, seen, err = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -servername www.wild.test. -ign_eof")
          :format(port), report)
      if libtls.libressl then
        assert.is_nil(seen)
        assert.matches("^handshake: ", err)
        assert.matches("alert illegal parameter", out, 1, true)
        return
      end
      assert.matches("subject=CN = localhost", out, 1, true)
      assert.equal(1, seen.keypair)
      assert.equal("www.wild.test.", seen.servername)
    end)

    it("an unknown name, or none, gets the default certificate", function()
      local out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -servername nobody.test -ign_eof"):format(port), report)
      assert.matches("subject=CN = localhost", out, 1, true)
      assert.equal(1, seen.keypair)
      out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -noservername -ign_eof"):format(port), report)
      assert.matches("subject=CN = localhost", out, 1, true)
      assert.equal(1, seen.keypair)
      assert.is_nil(seen.servername)
    end)

    it("gnutls-cli --sni-hostname gets the matching certificate, verified", function()
      local out, seen = kit.serve(listener,
        ("gnutls-cli --x509cafile %s -p %d --sni-hostname alt.test --verify-hostname alt.test 127.0.0.1")
          :format(P.ca, port), report)
      assert.matches("subject `CN=alt.test'", out, 1, true)
      assert.matches("The certificate is trusted", out, 1, true)
      assert.equal(2, seen.keypair)
    end)

    it("curl verifies each name it resolves to the server", function()
      for name, want in pairs({ ["alt.test"] = 2, ["localhost"] = 1, ["a.wild.test"] = 3 }) do
        local out, seen = kit.serve(listener,
          ("curl -sS -v --http1.1 --cacert %s --resolve %s:%d:127.0.0.1 https://%s:%d/")
            :format(P.ca, name, port, name, port), report)
        assert.matches("SSL certificate verify ok", out, 1, true)
        assert.matches("\nok\n", out, 1, true)
        assert.equal(want, seen.keypair)
      end
    end)
  end)

  describe("ALPN", function()
    lazy_setup(function() open_listener(base_opts({ alpn = { "h2", "http/1.1" } })) end)

    it("openssl s_client -alpn negotiates h2 or http/1.1", function()
      local out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -alpn h2,http/1.1 -ign_eof"):format(port), report)
      assert.matches("ALPN protocol: h2", out, 1, true)
      assert.equal("h2", seen.alpn)
      out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -alpn http/1.1 -ign_eof"):format(port), report)
      assert.matches("ALPN protocol: http/1.1", out, 1, true)
      assert.equal("http/1.1", seen.alpn)
    end)

    it("gnutls-cli --alpn gets the server's choice", function()
      local out, seen = kit.serve(listener,
        ("gnutls-cli --x509cafile %s -p %d --alpn h2 --alpn http/1.1 --verify-hostname localhost 127.0.0.1")
          :format(P.ca, port), report)
      assert.matches("Application protocol: h2", out, 1, true)
      assert.equal("h2", seen.alpn)
    end)

    it("curl gets h2 by default and http/1.1 with --http1.1", function()
      local out, seen = kit.serve(listener,
        ("curl -sS -v --cacert %s https://localhost:%d/"):format(P.ca, port),
        function(conn) local i = conn:info(); return { alpn = i.alpn } end)
      assert.matches("ALPN: server accepted h2", out, 1, true)
      assert.equal("h2", seen.alpn)
      out, seen = kit.serve(listener,
        ("curl -sS -v --http1.1 --cacert %s https://localhost:%d/"):format(P.ca, port), report)
      assert.matches("ALPN: server accepted http/1.1", out, 1, true)
      assert.equal("http/1.1", seen.alpn)
    end)

    -- RFC 7301 makes it fatal; LibreSSL's server follows it, LibreTLS
    -- (OpenSSL) continues without ALPN
    it("a client offering nothing the server speaks: no ALPN on LibreTLS, refused on LibreSSL", function()
      local out, seen, err = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -alpn spdy/3 -ign_eof"):format(port), report)
      if libtls.libressl then
        assert.is_nil(seen)
        assert.matches("^handshake: .*no application protocol", err)
        assert.matches("alert no application protocol", out, 1, true)
      else
        assert.matches("No ALPN negotiated", out, 1, true)
        assert.is_nil(seen.alpn)
      end
    end)
  end)

  describe("mutual TLS", function()
    it("required: a client certificate is checked and shown by conn:peer()", function()
      open_listener(base_opts({ verify_client = true, ca_file = P.ca }))
      local out, seen = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -cert %s -key %s -ign_eof")
          :format(port, P.client.cert, P.client.key), report)
      assert.matches("HTTP/1.1 200 OK", out, 1, true)
      assert.equal("/CN=client.test", seen.peer)
      out, seen = kit.serve(listener,
        ("gnutls-cli --x509cafile %s -p %d --x509certfile %s --x509keyfile %s --verify-hostname localhost 127.0.0.1")
          :format(P.ca, port, P.client.cert, P.client.key), report)
      assert.matches("Successfully sent 1 certificate(s)", out, 1, true)
      assert.equal("/CN=client.test", seen.peer)
      out, seen = kit.serve(listener,
        ("curl -sS --http1.1 --cacert %s --cert %s --key %s https://localhost:%d/")
          :format(P.ca, P.client.cert, P.client.key, port), report)
      assert.equal("ok\n", out)
      assert.equal("/CN=client.test", seen.peer)
    end)

    it("required: a client without a certificate is refused, the next one served", function()
      open_listener(base_opts({ verify_client = true, ca_file = P.ca }))
      local out, conn, err = kit.serve(listener,
        ("curl -sS --http1.1 --cacert %s https://localhost:%d/"):format(P.ca, port), report)
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err), err)
      assert.matches("peer did not return a certificate", err, 1, true)
      assert.matches("client 127.0.0.1", err, 1, true)
      assert.not_matches("\nok\n", out, 1, true)
      local _, seen = kit.serve(listener,
        ("curl -sS --http1.1 --cacert %s --cert %s --key %s https://localhost:%d/")
          :format(P.ca, P.client.cert, P.client.key, port), report)
      assert.equal("/CN=client.test", seen.peer)
    end)

    it("required: a certificate from another CA is refused", function()
      open_listener(base_opts({ verify_client = true, ca_file = P.ca }))
      local _, conn, err = kit.serve(listener,
        ("gnutls-cli --x509cafile %s -p %d --x509certfile %s --x509keyfile %s --verify-hostname localhost 127.0.0.1")
          :format(P.ca, port, P.other_client.cert, P.other_client.key), report)
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err), err)
    end)

    it("optional: clients with and without a certificate are both served", function()
      open_listener(base_opts({ verify_client = "optional", ca_file = P.ca }))
      local _, seen = kit.serve(listener,
        ("curl -sS --http1.1 --cacert %s https://localhost:%d/"):format(P.ca, port), report)
      assert.is_nil(seen.peer)
      _, seen = kit.serve(listener,
        ("curl -sS --http1.1 --cacert %s --cert %s --key %s https://localhost:%d/")
          :format(P.ca, P.client.cert, P.client.key, port), report)
      assert.equal("/CN=client.test", seen.peer)
    end)

    it("optional: a certificate that does not verify is still refused", function()
      open_listener(base_opts({ verify_client = "optional", ca_file = P.ca }))
      local _, conn, err = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -cert %s -key %s -ign_eof")
          :format(port, P.other_client.cert, P.other_client.key), report)
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err), err)
    end)
  end)

  describe("OCSP stapling", function()
    lazy_setup(function()
      open_listener(base_opts({ cert_file = P.server_chain, ocsp_staple_file = P.staple_good }))
    end)

    it("openssl s_client -status shows the staple", function()
      local out = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -status -ign_eof"):format(port), report)
      assert.matches("OCSP Response Status: successful", out, 1, true)
      assert.matches("Cert Status: good", out, 1, true)
    end)

    it("gnutls-cli receives the same response", function()
      local saved = os.tmpname()
      local out = kit.serve(listener,
        ("gnutls-cli --x509cafile %s -p %d --verify-hostname localhost --save-ocsp %s 127.0.0.1")
          :format(P.ca, port, saved), report)
      assert.matches("The certificate is trusted", out, 1, true)
      local got = kit.read(saved)
      os.remove(saved)
      assert.equal(kit.read(P.staple_good), got)
    end)

    it("curl --cert-status accepts it", function()
      local out = kit.serve(listener,
        ("curl -sS -v --http1.1 --cert-status --cacert %s https://localhost:%d/"):format(P.ca, port), report)
      assert.matches("SSL certificate status: good", out, 1, true)
      assert.matches("\nok\n", out, 1, true)
    end)

    it("a keypair without a staple sends none", function()
      local out = kit.serve(listener,
        ("openssl s_client -connect 127.0.0.1:%d -servername alt.test -status -ign_eof"):format(port), report)
      assert.matches("OCSP response: no response sent", out, 1, true)
    end)
  end)
end)
