-- Test PKI made at test time with the openssl CLI: a root CA, an
-- intermediate-free server and client chain, and the odd certificates the
-- specs need (expired, self-signed, CN-only, untrusted root). Made once per
-- process in a temporary directory and removed at exit.

local pki = {}

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  if not ok then error("pki: command failed: " .. cmd) end
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- shared with the other spec helpers
pki.sh = sh
pki.write = write

function pki.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The pin of a certificate file as the openssl CLI computes it: base64
-- SHA-256 of the DER SubjectPublicKeyInfo (curl's --pinnedpubkey form), so
-- specs check tls.x509 and tls.policy against an independent source.
function pki.pin(certfile)
  local p = io.popen(("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der"
    .. " | openssl dgst -sha256 -binary | base64"):format(certfile))
  local pin = p:read("*l")
  p:close()
  assert(pin and #pin == 44, "openssl could not compute a pin for " .. certfile)
  return pin
end

local dir

-- Key types: "ec" (P-256, default) or "rsa" (2048).
local function genkey(path, kind)
  if kind == "rsa" then
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. path)
  elseif kind == "rsa1024" then
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " .. path)
  elseif kind == "ed25519" then
    sh("openssl genpkey -algorithm ED25519 -out " .. path)
  else
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. path)
  end
end

local function ca(name)
  local key, crt = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".crt"
  genkey(key)
  sh(("openssl req -x509 -new -key %s -out %s -days 3650 -subj '/CN=%s' "
    .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
    :format(key, crt, name))
  return { key = key, cert = crt }
end

-- Issue a leaf named `name`. opts: issuer (default the test root), san
-- (subjectAltName text, default DNS:<name>; false for CN-only), cn, days,
-- key (kind for genkey), eku, md (digest of the signature: "sha1"), expired (valid January 2020 only: `openssl
-- x509` cannot backdate, so `openssl ca -startdate/-enddate` signs it).
function pki.leaf(name, opts)
  opts = opts or {}
  local issuer = opts.issuer or pki.ca
  local key, csr, crt = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr",
    dir .. "/" .. name .. ".crt"
  genkey(key, opts.key)
  local cn = opts.cn or name
  sh(("openssl req -new -key %s -out %s -subj '/CN=%s'"):format(key, csr, cn))
  local ext = dir .. "/" .. name .. ".ext"
  local lines = { "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=" .. (opts.eku or "serverAuth,clientAuth") }
  if opts.san ~= false then
    lines[#lines + 1] = "subjectAltName=" .. (opts.san or ("DNS:" .. name))
  end
  write(ext, table.concat(lines, "\n") .. "\n")
  if opts.expired then
    -- openssl x509 cannot backdate; `openssl ca` can, with -startdate/-enddate
    local cadir = dir .. "/ca-" .. name
    sh("mkdir -p " .. cadir)
    write(cadir .. "/index.txt", "")
    write(cadir .. "/serial", "01\n")
    write(cadir .. "/ca.cnf", ([[
[ca]
default_ca = d
[d]
database = %s/index.txt
serial = %s/serial
new_certs_dir = %s
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
]]):format(cadir, cadir, cadir))
    sh(("openssl ca -batch -config %s/ca.cnf -cert %s -keyfile %s -in %s -out %s "
      .. "-startdate 20200101000000Z -enddate 20200201000000Z -extfile %s -notext")
      :format(cadir, issuer.cert, issuer.key, csr, crt, ext))
  else
    sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days %d -extfile %s%s")
      :format(csr, issuer.cert, issuer.key, crt, opts.days or 365, ext,
        opts.md and (" -" .. opts.md) or ""))
  end
  return { key = key, cert = crt, name = name }
end

-- An intermediate CA named `name`, signed by `issuer`.
-- opts.md: the signature's digest ("sha1"; default openssl's, SHA-256).
local function sub_ca(name, issuer, opts)
  local key, csr, crt = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr",
    dir .. "/" .. name .. ".crt"
  genkey(key)
  sh(("openssl req -new -key %s -out %s -subj '/CN=%s'"):format(key, csr, name))
  local ext = dir .. "/" .. name .. ".ext"
  write(ext, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
  sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 3650 -extfile %s%s")
    :format(csr, issuer.cert, issuer.key, crt, ext, opts and opts.md and (" -" .. opts.md) or ""))
  return { key = key, cert = crt }
end

-- A leaf issued under `cas` (the issuing CA first, then up to the root's
-- child); its `cert` file holds the leaf followed by those CAs, as a server
-- sends it.
local function chained_leaf(name, cas, opts)
  local leaf = pki.leaf(name, { issuer = cas[1], san = opts.san })
  local parts = { pki.read(leaf.cert) }
  for _, c in ipairs(cas) do parts[#parts + 1] = pki.read(c.cert) end
  local chain = dir .. "/" .. name .. ".chain.crt"
  write(chain, table.concat(parts))
  return { key = leaf.key, cert = chain, leaf_cert = leaf.cert, name = name }
end

pki.sub_ca = sub_ca

function pki.selfsigned(name)
  local key, crt = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".crt"
  genkey(key)
  sh(("openssl req -x509 -new -key %s -out %s -days 365 -subj '/CN=%s' -addext subjectAltName=DNS:%s")
    :format(key, crt, name, name))
  return { key = key, cert = crt, name = name }
end

function pki.setup()
  if dir then return pki end
  local p = io.popen("mktemp -d /tmp/lua-tls-pki.XXXXXX")
  dir = p:read("*l")
  p:close()
  pki.dir = dir
  -- specs that never call pki.cleanup() still leave no directory behind:
  -- this sentinel is collected with the module (busted drops it after each
  -- file) or at exit, and removes the directory it was made for
  local made = dir
  pki.sentinel = setmetatable({}, { __gc = function()
    if made then os.execute("rm -rf " .. made) end
  end })
  pki.ca = ca("lua-tls-test-root")
  pki.other_ca = ca("lua-tls-other-root")
  pki.server = pki.leaf("localhost", { san = "DNS:localhost,IP:127.0.0.1,IP:::1" })
  pki.server_rsa = pki.leaf("rsa.localhost", { key = "rsa", san = "DNS:localhost,DNS:rsa.localhost,IP:127.0.0.1" })
  pki.alt = pki.leaf("alt.test", { san = "DNS:alt.test" })
  pki.client = pki.leaf("client.test", { eku = "clientAuth" })
  pki.expired = pki.leaf("expired.test", { san = "DNS:localhost,IP:127.0.0.1", expired = true })
  pki.untrusted = pki.leaf("untrusted.test", { issuer = pki.other_ca, san = "DNS:localhost,IP:127.0.0.1" })
  pki.cn_only = pki.leaf("localhost-cn", { cn = "localhost", san = false })
  pki.self = pki.selfsigned("localhost-self")
  -- chains through intermediates under pki.ca: one, and two deep
  pki.intermediate = sub_ca("lua-tls-test-intermediate", pki.ca)
  pki.intermediate2 = sub_ca("lua-tls-test-intermediate-2", pki.intermediate)
  pki.chained = chained_leaf("chained.localhost", { pki.intermediate },
    { san = "DNS:localhost,IP:127.0.0.1" })
  pki.chained2 = chained_leaf("chained2.localhost", { pki.intermediate2, pki.intermediate },
    { san = "DNS:localhost,IP:127.0.0.1" })
  pki.bad_file = dir .. "/garbage.pem"
  write(pki.bad_file, "this is not a PEM file\n")
  return pki
end

function pki.cleanup()
  if dir then os.execute("rm -rf " .. dir) end
  dir = nil
end

return pki
