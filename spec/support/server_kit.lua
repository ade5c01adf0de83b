-- Helpers for the server specs: real external clients run in the background
-- while the spec accepts in-process, plus the OCSP responses and CRLs the
-- test PKI needs (made with the openssl CLI).

local pki = require "support.pki"
local proc = require "support.proc"

local kit = { pki = pki, proc = proc }

local sh, write = pki.sh, pki.write

kit.read = pki.read

local function serial_of(cert)
  local p = io.popen("openssl x509 -noout -serial -in " .. cert)
  local s = p:read("*a"):match("serial=(%x+)")
  p:close()
  return s
end

local ocsp_n = 0
-- An OCSP response (DER file) for `leaf`, signed by the test root itself;
-- status "good" or "revoked".
function kit.ocsp_response(leaf, status)
  ocsp_n = ocsp_n + 1
  local dir = pki.dir
  local index = ("%s/ocsp-index-%d.txt"):format(dir, ocsp_n)
  local out = ("%s/ocsp-%d.der"):format(dir, ocsp_n)
  local line
  if status == "revoked" then
    line = ("R\t301231235959Z\t240101000000Z\t%s\tunknown\t/CN=x\n"):format(serial_of(leaf.cert))
  else
    line = ("V\t301231235959Z\t\t%s\tunknown\t/CN=x\n"):format(serial_of(leaf.cert))
  end
  write(index, line)
  sh(("openssl ocsp -index %s -rsigner %s -rkey %s -CA %s -issuer %s -cert %s "
    .. "-no_nonce -ndays 7 -respout %s"):format(index, pki.ca.cert, pki.ca.key,
    pki.ca.cert, pki.ca.cert, leaf.cert, out))
  return out
end

-- The same response as PEM text ("-----BEGIN OCSP RESPONSE-----").
function kit.pem_of(der_file)
  local der = pki.read(der_file)
  local b64 = require("tls.base64").encode(der)
  local lines = { "-----BEGIN OCSP RESPONSE-----" }
  for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
  lines[#lines + 1] = "-----END OCSP RESPONSE-----"
  return table.concat(lines, "\n") .. "\n"
end

-- A CRL from the test root revoking each leaf in `revoked` (PEM file).
function kit.crl(revoked)
  local dir = pki.dir .. "/crl"
  sh("mkdir -p " .. dir)
  local lines = {}
  for _, leaf in ipairs(revoked) do
    lines[#lines + 1] = ("R\t301231235959Z\t240101000000Z\t%s\tunknown\t/CN=x\n")
      :format(serial_of(leaf.cert))
  end
  write(dir .. "/index.txt", table.concat(lines))
  write(dir .. "/crlnumber", "01\n")
  write(dir .. "/ca.cnf", ([[
[ca]
default_ca = d
[d]
database = %s/index.txt
crlnumber = %s/crlnumber
default_md = sha256
default_crl_days = 7
]]):format(dir, dir))
  local out = dir .. "/crl.pem"
  sh(("openssl ca -batch -config %s/ca.cnf -gencrl -cert %s -keyfile %s -out %s")
    :format(dir, pki.ca.cert, pki.ca.key, out))
  return out
end

-- Everything the server specs share, made once per process.
local made
function kit.setup()
  if made and made.dir == pki.dir then return made end
  pki.setup()
  made = {
    dir = pki.dir,
    ca = pki.ca.cert,
    server = pki.server, rsa = pki.server_rsa, alt = pki.alt, client = pki.client,
    other_client = pki.leaf("other-client.test", { eku = "clientAuth", issuer = pki.other_ca }),
    wild = pki.leaf("wild.test", { san = "DNS:*.wild.test" }),
    revoked_server = pki.leaf("revoked.localhost", { san = "DNS:localhost,IP:127.0.0.1" }),
    revoked_client = pki.leaf("revoked-client.test", { eku = "clientAuth" }),
  }
  -- leaf and issuer, as servers send them (curl's OCSP check needs the issuer)
  made.server_chain = pki.dir .. "/localhost-chain.crt"
  write(made.server_chain, pki.read(pki.server.cert) .. pki.read(pki.ca.cert))
  -- libtls's client only accepts a staple for a certificate that names an
  -- OCSP responder (authorityInfoAccess); pki.leaf joins extension lines
  local aia = "\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp"
  made.ocsp_server = pki.leaf("ocsp.localhost", { san = "DNS:localhost,IP:127.0.0.1" .. aia })
  made.ocsp_revoked = pki.leaf("ocsp-revoked.localhost", { san = "DNS:localhost,IP:127.0.0.1" .. aia })
  made.staple_good = kit.ocsp_response(pki.server, "good")
  made.staple_aia_good = kit.ocsp_response(made.ocsp_server, "good")
  made.staple_aia_revoked = kit.ocsp_response(made.ocsp_revoked, "revoked")
  made.crl = kit.crl({ made.revoked_server, made.revoked_client })
  return made
end

function kit.teardown()
  pki.cleanup()
  made = nil
end

-- kit.serve(listener, cmd, handler [, input]) -> output of cmd, and what
-- handler(conn) returned (or nil, the accept error). The client runs in the
-- background while the listener accepts one connection here; the conn is
-- closed after handler. The client's stdin is `input`, by default an HTTP
-- request (s_client and gnutls-cli send what they read).
function kit.serve(listener, cmd, handler, input)
  local h = proc.start(cmd, { input = input or "GET / HTTP/1.1\r\nHost: test\r\n\r\n" })
  local conn, err = listener:accept(10)
  local r1, r2
  if conn then
    local ok, a, b = pcall(handler, conn)
    conn:close()
    if not ok then
      h.wait(5)
      error(a, 0)
    end
    r1, r2 = a, b
  else
    r1, r2 = nil, err
  end
  return h.wait(10), r1, r2
end

-- An HTTP/1.1 answer, for curl.
function kit.http_reply(conn, body)
  conn:settimeout(5)
  repeat
    local line = conn:receive("*l")
  until not line or line == "" or line == "\r"
  conn:send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    :format(#body, body))
end

return kit
