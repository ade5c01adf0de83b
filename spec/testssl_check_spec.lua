-- hardening/testssl-check.lua decides whether `make testssl` passes: it must
-- fail on any finding about the server, and only on those.
local json = require "dkjson"

local function write(path, report) require("support.pki").write(path, json.encode(report)) end

-- A report of a server that passes: the protocols and vulnerability checks
-- the tool requires, one AEAD suite, every finding OK or INFO.
local function clean_report()
  local r = {
    { id = "SSLv2", severity = "OK", finding = "not offered" },
    { id = "SSLv3", severity = "OK", finding = "not offered" },
    { id = "TLS1", severity = "INFO", finding = "not offered" },
    { id = "TLS1_1", severity = "INFO", finding = "not offered" },
    { id = "TLS1_2", severity = "OK", finding = "offered" },
    { id = "TLS1_3", severity = "OK", finding = "offered with final" },
    { id = "cipher-tls1_3_x1302", severity = "OK",
      finding = "TLS 1.3 x1302 TLS_AES_256_GCM_SHA384" },
  }
  for _, id in ipairs({ "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego",
    "secure_client_renego", "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32",
    "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4" }) do
    r[#r + 1] = { id = id, severity = "OK", finding = "not vulnerable" }
  end
  return r
end

local function check(report)
  local path = os.tmpname()
  write(path, report)
  local lua = require("support.proc").lua
  local p = io.popen(("%s hardening/testssl-check.lua %s 2>&1; echo \"rc=$?\""):format(lua, path))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return tonumber(out:match("rc=(%d+)")), out
end

describe("make testssl's report check", function()
  it("passes a clean report", function()
    local rc, out = check(clean_report())
    assert.equal(0, rc, out)
  end)

  it("ignores the scanner's own missing GOST engine (engine_problem)", function()
    local r = clean_report()
    r[#r + 1] = { id = "engine_problem", severity = "WARN",
      finding = "No engine or GOST support via engine with your /usr/bin/openssl" }
    local rc, out = check(r)
    assert.equal(0, rc, out)
  end)

  it("fails on any other warning, naming it", function()
    local r = clean_report()
    r[#r + 1] = { id = "cert_chain_of_trust", severity = "WARN", finding = "something" }
    local rc, out = check(r)
    assert.equal(1, rc, out)
    assert.matches("cert_chain_of_trust", out)
  end)

  it("fails on a vulnerability finding", function()
    local r = clean_report()
    for _, item in ipairs(r) do
      if item.id == "LUCKY13" then item.severity = "LOW"; item.finding = "potentially vulnerable" end
    end
    local rc, out = check(r)
    assert.equal(1, rc, out)
    assert.matches("LUCKY13", out)
  end)
end)
