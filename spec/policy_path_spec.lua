-- tls.policy sees the verified path, never what the peer merely sent: the
-- attacks of issue 12 (an impostor appending a genuine or pinned certificate
-- to its chain) against openssl s_server -cert_chain, and the honest
-- configurations beside them.

local tls = require "tls"
local pki = require "support.pki"
local peers = require "support.peers"
local libtls = require "support.libtls"
local E = require "support.engines"
local H = require "support.hostile"

local P = {}

local function dir_file(name) return pki.dir .. "/" .. name end

-- s_server with `keypair`, sending the certificates in `extra` (files)
-- after its own; returns the port.
local running = {}
local function serve(keypair, extra, more_args)
  local args = more_args or ""
  if extra then
    local parts = {}
    for i, f in ipairs(extra) do parts[i] = pki.read(f) end
    local chain = dir_file(("sent-chain-%d.pem"):format(#running + 1))
    pki.write(chain, table.concat(parts))
    args = args .. " -cert_chain " .. chain
  end
  local h = peers.s_server(keypair, args)
  running[#running + 1] = h
  return h.port
end

local function connect(port, opts)
  opts.timeout = 10
  opts.servername = opts.servername or "localhost"
  local conn, err = tls.connect("127.0.0.1", port, opts)
  if not conn then return nil, err end
  assert(conn:send("abc\n"))
  local line = conn:receive("*l")
  conn:close()
  assert.equal("cba", line)
  return true
end

setup(function()
  pki.setup()
  -- the genuine server of the README's recipe: self-signed, pinned
  P.genuine = pki.selfsigned("genuine-self")
  -- an impostor: its own self-signed certificate for the same name
  P.impostor = pki.selfsigned("impostor-self")
  -- a leaf for the same name from another CA the client also trusts
  P.other_leaf = pki.leaf("other-ca.localhost", { issuer = pki.other_ca,
    san = "DNS:localhost,IP:127.0.0.1" })
  P.both_roots = pki.read(pki.ca.cert) .. pki.read(pki.other_ca.cert)
  -- the pinned intermediate with its signature spoiled (last byte flipped)
  local der = dir_file("inter.der")
  pki.sh(("openssl x509 -in %s -outform der -out %s"):format(pki.intermediate.cert, der))
  local bytes = pki.read(der)
  pki.write(der, bytes:sub(1, -2) .. string.char((bytes:byte(-1) + 1) % 256))
  P.bogus_inter = dir_file("inter-bogus.pem")
  pki.sh(("openssl x509 -inform der -in %s -out %s"):format(der, P.bogus_inter))
  -- a forged CA: the other root's key and name, with a made-up issuer name
  -- ("CN=lua-tls-test-root"), signed by the attacker's own key
  local atk_key, atk_crt = dir_file("attacker.key"), dir_file("attacker.crt")
  pki.sh(("openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
    .. "-keyout %s -out %s -days 30 -subj '/CN=lua-tls-test-root' "
    .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign")
    :format(atk_key, atk_crt))
  local pub, csr, ext = dir_file("other-root.pub"), dir_file("forged.csr"), dir_file("forged.ext")
  pki.sh(("openssl pkey -in %s -pubout -out %s"):format(pki.other_ca.key, pub))
  pki.sh(("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
    .. "-out %s -subj '/CN=lua-tls-other-root'"):format(dir_file("forged.key"), csr))
  pki.write(ext, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n"
    .. "subjectKeyIdentifier=hash\n")
  -- SHA-1 signatures: a leaf signed with one, an intermediate signed with one
  P.sha1_leaf = pki.leaf("sha1-leaf", { md = "sha1", san = "DNS:localhost,IP:127.0.0.1" })
  P.sha1_inter = pki.sub_ca("lua-tls-sha1-intermediate", pki.ca, { md = "sha1" })
  local under = pki.leaf("under-sha1", { issuer = P.sha1_inter, san = "DNS:localhost,IP:127.0.0.1" })
  P.under_sha1 = { key = under.key, cert = dir_file("under-sha1.chain.pem") }
  pki.write(P.under_sha1.cert, pki.read(under.cert) .. pki.read(P.sha1_inter.cert))
  P.forged_ca = dir_file("forged-ca.crt")
  pki.sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -force_pubkey %s "
    .. "-days 30 -extfile %s -out %s"):format(csr, atk_crt, atk_key, pub, ext, P.forged_ca))
end)

teardown(function()
  for _, h in ipairs(running) do h.stop() end
end)

describe("tls.policy and the chain the peer sent", function()
  describe("a self-signed pin (insecure_noverifycert + pins)", function()
    it("accepts the genuine server", function()
      local port = serve(P.genuine)
      assert.is_true(connect(port, { insecure_noverifycert = true, servername = "genuine-self",
        policy = tls.policy { pins = pki.pin(P.genuine.cert) } }))
    end)

    it("refuses an impostor that appends the genuine certificate: only the leaf's key counts", function()
      local port = serve(P.impostor, { P.genuine.cert })
      local ok, err = connect(port, { insecure_noverifycert = true, servername = "impostor-self",
        policy = tls.policy { pins = pki.pin(P.genuine.cert) } })
      assert.is_nil(ok)
      assert.matches("^policy: pins: no certificate of the verified path matches any of the 1 "
        .. "pin%(s%) %(chain verification is off: only the leaf's key counts%)", err)
    end)

    it("issuers refuses to run without a verified path, and says why", function()
      local port = serve(P.genuine)
      local ok, err = connect(port, { insecure_noverifycert = true, servername = "genuine-self",
        policy = tls.policy { issuers = "CN=genuine-self" } })
      assert.is_nil(ok)
      assert.matches("^policy: issuers: chain verification is off %(insecure_noverifycert%)", err)
    end)
  end)

  describe("an intermediate pin", function()
    it("accepts a leaf the pinned intermediate issued (honest chain)", function()
      local port = serve({ cert = pki.chained.leaf_cert, key = pki.chained.key },
        { pki.intermediate.cert })
      assert.is_true(connect(port, { ca = P.both_roots,
        policy = tls.policy { pins = pki.pin(pki.intermediate.cert) } }))
      assert.is_true(connect(port, { ca = P.both_roots,
        policy = tls.policy { issuers = "CN=lua-tls-test-intermediate" } }))
      assert.is_true(connect(port, { ca = P.both_roots,
        policy = tls.policy { issuers = "sha256//" .. pki.pin(pki.intermediate.cert) } }))
    end)

    it("refuses a leaf from another trusted CA that appends the pinned intermediate", function()
      local port = serve(P.other_leaf, { pki.intermediate.cert })
      -- libtls accepts the chain: the leaf is valid under the other root
      assert.is_true(connect(port, { ca = P.both_roots }))
      local ok, err = connect(port, { ca = P.both_roots,
        policy = tls.policy { pins = pki.pin(pki.intermediate.cert) } })
      assert.is_nil(ok)
      assert.matches("^policy: pins: no certificate of the verified path matches", err)
      for _, issuer in ipairs({ "CN=lua-tls-test-intermediate", "CN=lua-tls-test-root",
          "sha256//" .. pki.pin(pki.intermediate.cert) }) do
        ok, err = connect(port, { ca = P.both_roots, policy = tls.policy { issuers = issuer } })
        assert.is_nil(ok, issuer)
        assert.equal("policy: issuers: no certificate of the verified path was issued by an "
          .. "allowed issuer (issuers seen: 'CN=lua-tls-other-root')", err)
      end
    end)

    it("refuses the appended intermediate with a bogus signature too", function()
      local port = serve(P.other_leaf, { P.bogus_inter })
      local ok, err = connect(port, { ca = P.both_roots,
        policy = tls.policy { pins = pki.pin(pki.intermediate.cert) } })
      assert.is_nil(ok)
      assert.matches("^policy: pins:", err)
      ok, err = connect(port, { ca = P.both_roots,
        policy = tls.policy { issuers = "sha256//" .. pki.pin(pki.intermediate.cert) } })
      assert.is_nil(ok)
      assert.matches("^policy: issuers:", err)
    end)

    it("refuses a forged CA certificate whose key is genuine but whose issuer name is made up", function()
      -- the forged certificate carries the other root's real key, so it does
      -- verify the leaf's signature; its own signature is the attacker's, so
      -- its names prove nothing and it reaches no trusted CA
      local port = serve(P.other_leaf, { P.forged_ca })
      local ok, err = connect(port, { ca = P.both_roots,
        policy = tls.policy { issuers = "CN=lua-tls-test-root" } })
      assert.is_nil(ok)
      assert.matches("^policy: issuers: .*no trusted CA certificate was found above the path", err)
      -- its key is the other root's: a pin of that key is proven by the signature
      assert.is_true(connect(port, { ca = P.both_roots,
        policy = tls.policy { pins = pki.pin(pki.other_ca.cert) } }))
    end)
  end)

  describe("on a server, for the client's chain", function()
    local function handshake(client_cert, client_key)
      local srv = assert(tls.engine { mode = "server", cert_file = pki.server.cert,
        key_file = pki.server.key, ca = P.both_roots, verify_client = true,
        policy = tls.policy { pins = pki.pin(pki.intermediate.cert) } })
      local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost",
        cert = client_cert, key = pki.read(client_key) })
      return E.handshake(cli, srv)
    end

    it("counts the client's verified intermediate, never one it merely appends", function()
      assert.is_true(handshake(pki.read(pki.chained.cert), pki.chained.key))
      local ok, err = handshake(pki.read(P.other_leaf.cert) .. pki.read(pki.intermediate.cert),
        P.other_leaf.key)
      assert.is_nil(ok)
      assert.matches("^server: policy: pins: no certificate of the verified path matches", err)
    end)
  end)

  describe("what rules see", function()
    it("a custom check gets the verified path, verified = true and the trust anchor", function()
      local port = serve({ cert = pki.chained.leaf_cert, key = pki.chained.key },
        { pki.intermediate.cert, P.genuine.cert })
      local seen
      assert.is_true(connect(port, { ca = P.both_roots, policy = tls.policy {
        check = function(path)
          seen = { verified = path.verified, anchor = path.anchor and path.anchor.subject_string }
          for i, c in ipairs(path) do seen[i] = c.subject_string end
          return true
        end } }))
      assert.same({ "CN=chained.localhost", "CN=lua-tls-test-intermediate",
        verified = true, anchor = "CN=lua-tls-test-root" }, seen)
    end)

    it("finds the trust anchor through ca, ca_file and ca_path, sent by the server or not", function()
      local hashed = dir_file("hashed-cas")
      pki.sh(("mkdir -p %s && cp %s %s/ && openssl rehash %s"):format(hashed, pki.ca.cert, hashed, hashed))
      local function anchor_of(port, trust)
        local seen = "not called"
        trust.policy = tls.policy { check = function(path)
          seen = path.anchor and path.anchor.fingerprint_sha256 or "none"
          return true
        end }
        assert.is_true(connect(port, trust))
        return seen
      end
      local root = tls.x509.parse(pki.read(pki.ca.cert)).fingerprint_sha256
      local sent_root = serve({ cert = pki.chained.leaf_cert, key = pki.chained.key },
        { pki.intermediate.cert, pki.ca.cert })
      local unsent = serve({ cert = pki.chained.leaf_cert, key = pki.chained.key },
        { pki.intermediate.cert })
      for _, port in ipairs({ sent_root, unsent }) do
        assert.equal(root, anchor_of(port, { ca = P.both_roots }))
        assert.equal(root, anchor_of(port, { ca_file = pki.ca.cert }))
        assert.equal(root, anchor_of(port, { ca_path = hashed }))
      end
      -- no anchor without a verified path
      assert.equal("none", anchor_of(unsent, { insecure_noverifycert = true }))
    end)

    it("checks at most 64 links per chain, and each chain's links once", function()
      local core, calls = tls.core, 0
      local real = core.x509_issued
      finally(function() core.x509_issued = real end)
      core.x509_issued = function(a, b) calls = calls + 1 return real(a, b) end
      -- a leaf and 100 certificates that issued nothing of it
      local sent = { tls.x509.parse(pki.read(pki.server.cert)) }
      for i = 1, 100 do sent[i + 1] = { der = "not a certificate " .. i } end
      local path = tls.policy.verified_path(sent, true)
      assert.equal(1, #path)
      assert.equal(64, calls)
      -- a real chain, through a conn: the second connection checks no link again
      local pem = pki.read(pki.chained.cert) .. "\n"  -- a text no earlier spec checked
      local conn = { peer = function() return { chain_pem = pem } end }
      local ctx = { mode = "client", verify_cert = true }
      local p = tls.policy { require_san = false }
      calls = 0
      assert.is_true(p(conn, ctx))
      local first = calls
      assert.is_true(first > 0)
      assert.is_true(p(conn, ctx))
      assert.equal(first, calls)
    end)

    it("key sizes count only the verified path: an appended weak certificate does not fail it", function()
      local weak = pki.leaf("weak-extra", { key = "rsa1024" })
      local port = serve(pki.server, { weak.cert }, "-cipher DEFAULT:@SECLEVEL=0")
      assert.is_true(connect(port, { ca_file = pki.ca.cert }))
    end)
  end)

  describe("strong_signatures (on by default)", function()
    -- the policy's own answer, whatever libtls decided: a connection with
    -- chain verification off (s_server at security level 0 sends the SHA-1
    -- chain; libtls on OpenSSL 3 will not load it), or the chain checked as
    -- if libtls had verified it
    local weak_ok = "-cipher DEFAULT:@SECLEVEL=0"
    local function unverified(port, policy)
      return connect(port, { insecure_noverifycert = true, policy = policy })
    end
    local function as_verified(keypair)
      local chain = assert(tls.x509.parse_chain(pki.read(keypair.cert)))
      return tls.policy.default:check_chain(chain, nil, { mode = "client", verify_cert = true })
    end
    -- libtls on OpenSSL 3 refuses SHA-1 through its security level first
    -- (a policy: failure too); LibreSSL's libtls lets it through to the rule
    local function refused(err, policy_message)
      if libtls.libressl then
        assert.equal(policy_message, err)
      else
        assert.equal("policy: the TLS library's security level refused the certificate "
          .. "(certificate verification failed: CA signature digest algorithm too weak)", err)
      end
    end

    it("refuses a SHA-1-signed leaf, naming the algorithm", function()
      local msg = "policy: strong_signatures: the leaf 'CN=sha1-leaf' is signed with "
        .. "ecdsa-with-SHA1, a SHA-1 signature (SHA-1 collisions are practical, so such a "
        .. "signature can be forged onto another certificate); strong_signatures = false allows it"
      local port = serve(P.sha1_leaf, nil, weak_ok)
      local ok, err = unverified(port, tls.policy {})
      assert.is_nil(ok)
      assert.equal(msg, err)
      assert.is_true(unverified(port, tls.policy { strong_signatures = false }))
      ok, err = as_verified(P.sha1_leaf)
      assert.is_nil(ok)
      assert.equal(msg, err)
      ok, err = connect(port, { ca_file = pki.ca.cert })
      assert.is_nil(ok)
      refused(err, msg)
    end)

    it("refuses a leaf under a SHA-1-signed intermediate", function()
      local msg = "policy: strong_signatures: certificate 2 of the verified path "
        .. "'CN=lua-tls-sha1-intermediate' is signed with ecdsa-with-SHA1, a SHA-1 signature "
        .. "(SHA-1 collisions are practical, so such a signature can be forged onto another "
        .. "certificate); strong_signatures = false allows it"
      local ok, err = as_verified(P.under_sha1)
      assert.is_nil(ok)
      assert.equal(msg, err)
      local port = serve({ cert = dir_file("under-sha1.crt"), key = P.under_sha1.key },
        { P.sha1_inter.cert }, weak_ok)
      ok, err = connect(port, { ca_file = pki.ca.cert })
      assert.is_nil(ok)
      refused(err, msg)
    end)

    it("reads the hash of an RSA-PSS signature from its parameters (SHA-1 when absent)", function()
      local ca_key, ca_crt = dir_file("rsa-ca.key"), dir_file("rsa-ca.crt")
      pki.sh(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 30 -subj /CN=rsa-ca "
        .. "-addext basicConstraints=critical,CA:TRUE"):format(ca_key, ca_crt))
      local csr = dir_file("pss-leaf.csr")
      pki.sh(("openssl req -new -key %s -out %s -subj /CN=pss-leaf"):format(pki.server.key, csr))
      for md, ok in pairs({ sha1 = false, sha256 = true }) do
        local crt = dir_file("pss-" .. md .. ".crt")
        pki.sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 30 -%s "
          .. "-sigopt rsa_padding_mode:pss -out %s"):format(csr, ca_crt, ca_key, md, crt))
        local chain = assert(tls.x509.parse_chain(pki.read(crt)))
        assert.equal("rsassaPss", chain[1].signature_algorithm)
        assert.equal(md, chain[1].signature_hash)
        local passed, err = tls.policy { require_san = false }:check_chain(chain, nil,
          { mode = "client", verify_cert = true })
        if ok then
          assert.is_true(passed)
        else
          assert.is_nil(passed)
          assert.matches("^policy: strong_signatures: the leaf 'CN=pss%-leaf' is signed with rsassaPss, "
            .. "a SHA%-1 signature", err)
        end
      end
    end)

    it("accepts SHA-256 signatures, and ignores a sent root's own SHA-1 self-signature", function()
      assert.is_true(as_verified(pki.chained))
      local root = dir_file("sha1-root.crt")
      pki.sh(("openssl req -x509 -new -sha1 -key %s -out %s -days 30 -subj '/CN=lua-tls-test-root' "
        .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
        :format(pki.ca.key, root))
      local chain = assert(tls.x509.parse_chain(pki.read(pki.server.cert) .. pki.read(root)))
      assert.equal("ecdsa-with-SHA1", chain[2].signature_algorithm)
      assert.is_true(tls.policy.default:check_chain(chain, nil, { mode = "client", verify_cert = true }))
    end)
  end)
end)
