-- tls.policy's path and time: a CA certificate counts for a rule only while
-- it is valid, as libtls's own verification requires. An expired
-- cross-certificate from a pinned CA (same name and key as the genuine
-- intermediate, which did sign the leaf) is something the peer merely sent:
-- libtls verified the leaf through the genuine intermediate, and the expired
-- one would have been refused on that path.

local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local peers = require "support.peers"

local P, running = {}, {}

local function file(name) return pki.dir .. "/" .. name end

-- A CA certificate for `key` named `subject`, issued by `issuer`, valid only
-- in January 2020 (`openssl ca` backdates, `openssl x509` cannot).
local function expired_ca(name, subject, key, issuer)
  local cadir, csr, crt = file("ca-" .. name), file(name .. ".csr"), file(name .. ".crt")
  pki.sh("mkdir -p " .. cadir)
  pki.write(cadir .. "/index.txt", "")
  pki.write(cadir .. "/serial", "01\n")
  pki.write(cadir .. "/ca.cnf", ("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
    .. "serial = %s/serial\nnew_certs_dir = %s\ndefault_md = sha256\npolicy = p\n"
    .. "copy_extensions = none\n[p]\ncommonName = supplied\n"):format(cadir, cadir, cadir))
  pki.write(file(name .. ".ext"), "basicConstraints=critical,CA:TRUE\n"
    .. "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
  pki.sh(("openssl req -new -key %s -out %s -subj '/CN=%s'"):format(key, csr, subject))
  pki.sh(("openssl ca -batch -config %s/ca.cnf -cert %s -keyfile %s -in %s -out %s "
    .. "-startdate 20200101000000Z -enddate 20200201000000Z -extfile %s -notext")
    :format(cadir, issuer.cert, issuer.key, csr, crt, file(name .. ".ext")))
  return crt
end

local function serve(keypair, extra)
  local parts = {}
  for i, f in ipairs(extra) do parts[i] = pki.read(f) end
  local chain = file(("link-time-chain-%d.pem"):format(#running + 1))
  pki.write(chain, table.concat(parts))
  local h = peers.s_server(keypair, "-cert_chain " .. chain)
  running[#running + 1] = h
  return h.port
end

local function connect(port, opts)
  opts.timeout, opts.servername = 10, "localhost"
  local conn, err = tls.connect("127.0.0.1", port, opts)
  if not conn then return nil, err end
  conn:close()
  return true
end

setup(function()
  pki.setup()
  P.roots = pki.read(pki.ca.cert) .. pki.read(pki.other_ca.cert)
  -- the other root once cross-signed the test intermediate's key (expired)
  P.cross = expired_ca("inter-cross-expired", "lua-tls-test-intermediate",
    pki.intermediate.key, pki.other_ca)
  P.leaf = { cert = pki.chained.leaf_cert, key = pki.chained.key }
  -- the test root's name and key, valid only in January 2020
  P.old_root = expired_ca("root-expired", "lua-tls-test-root", pki.ca.key, pki.ca)
end)

teardown(function()
  for _, h in ipairs(running) do h.stop() end
end)

describe("tls.policy and expired certificates the peer sent", function()
  it("an expired cross-certificate does not bring its issuer's pin onto the path", function()
    local port = serve(P.leaf, { P.cross, pki.other_ca.cert, pki.intermediate.cert })
    if libtls.libressl then
      -- LibreSSL's verifier takes the expired cross-certificate sent first
      -- and refuses the chain; sent after the valid intermediate, it is
      -- left off the path, and the policy must not count it either
      local ok, err = connect(port, { ca = P.roots })
      assert.is_nil(ok)
      assert.matches("^verify: .*certificate has expired", err)
      port = serve(P.leaf, { pki.intermediate.cert, P.cross, pki.other_ca.cert })
    end
    -- libtls verifies the leaf through the valid intermediate
    assert.is_true(connect(port, { ca = P.roots }))
    local ok, err = connect(port, { ca = P.roots,
      policy = tls.policy { pins = pki.pin(pki.other_ca.cert) } })
    assert.is_nil(ok)
    assert.matches("^policy: pins: no certificate of the verified path matches", err)
    ok, err = connect(port, { ca = P.roots,
      policy = tls.policy { issuers = "CN=lua-tls-other-root" } })
    assert.is_nil(ok)
    assert.matches("^policy: issuers: no certificate of the verified path", err)
    -- the valid path still counts
    assert.is_true(connect(port, { ca = P.roots,
      policy = tls.policy { pins = pki.pin(pki.intermediate.cert) } }))
    assert.is_true(connect(port, { ca = P.roots,
      policy = tls.policy { pins = pki.pin(pki.ca.cert) } }))
  end)

  it("a trusted CA certificate that has expired is no trust anchor", function()
    local inter = tls.x509.parse(pki.read(pki.intermediate.cert)).der
    local cfg = assert(tls.config { ca = pki.read(P.old_root) })
    local anchor, why = tls.core.x509_anchor(cfg, inter)
    assert.is_nil(anchor)
    assert.equal("no trusted certificate issued it", why)
    cfg = assert(tls.config { ca = pki.read(P.old_root) .. pki.read(pki.ca.cert) })
    assert.equal(tls.x509.parse(pki.read(pki.ca.cert)).der, tls.core.x509_anchor(cfg, inter))
    -- libtls checks no time then, and neither does the anchor lookup
    cfg = assert(tls.config { ca = pki.read(P.old_root), insecure_noverifytime = true })
    assert.equal(tls.x509.parse(pki.read(P.old_root)).der, tls.core.x509_anchor(cfg, inter))
  end)

  it("under insecure_noverifytime the expired link counts, as libtls checks no time", function()
    local port = serve(P.leaf, { P.cross, pki.other_ca.cert })
    assert.is_true(connect(port, { ca = P.roots, insecure_noverifytime = true,
      policy = tls.policy { pins = pki.pin(pki.other_ca.cert) } }))
  end)
end)
