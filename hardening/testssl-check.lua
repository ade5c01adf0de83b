-- Checks a testssl.sh --jsonfile report of the module's default server
-- (make testssl): only TLS 1.2 and 1.3, no CBC and no static-RSA suites,
-- and no vulnerability findings. Prints what it checked; exits 1 on any
-- failure, naming it.
--   lua5.4 hardening/testssl-check.lua scan.json
local json = require "dkjson"

local path = arg[1] or error("usage: lua5.4 hardening/testssl-check.lua scan.json")
local f = assert(io.open(path, "rb"))
local report, _, err = json.decode(f:read("*a"))
f:close()
if type(report) ~= "table" then
  io.stderr:write("testssl-check: cannot parse ", path, ": ", tostring(err), "\n")
  os.exit(1)
end

local by_id, failures = {}, {}
local function fail(fmt, ...) failures[#failures + 1] = fmt:format(...) end
for _, item in ipairs(report) do by_id[item.id] = item end

-- Protocols
for _, id in ipairs({ "SSLv2", "SSLv3", "TLS1", "TLS1_1" }) do
  local item = by_id[id]
  if not item then fail("protocol %s: not in the report", id)
  elseif not item.finding:find("^not offered") then fail("protocol %s: %s", id, item.finding) end
end
for _, id in ipairs({ "TLS1_2", "TLS1_3" }) do
  local item = by_id[id]
  if not item then fail("protocol %s: not in the report", id)
  elseif not item.finding:find("^offered") then fail("protocol %s: %s", id, item.finding) end
end

-- Cipher suites (-E lists each suite per protocol, with its IANA name)
local suites = 0
for _, item in ipairs(report) do
  if item.id:find("^cipher%-tls") then
    suites = suites + 1
    local name = item.finding:match("(TLS_[%w_]+)%s*$") or item.finding
    if name:find("_CBC_") or item.finding:find("CBC") then fail("CBC suite offered: %s", name) end
    if name:find("^TLS_RSA_") then fail("static-RSA suite offered: %s", name) end
    if not (name:find("_GCM_") or name:find("CHACHA20") or name:find("_CCM")) then
      fail("non-AEAD suite offered: %s", name)
    end
  end
end
if suites == 0 then fail("no cipher suites in the report (did the scan run -E?)") end

-- Vulnerabilities (-U): every check present, none with a finding
local vulns = { "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego",
  "secure_client_renego", "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32",
  "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4" }
for _, id in ipairs(vulns) do
  if not by_id[id] then fail("vulnerability check %s: not in the report", id) end
end
local bad = { LOW = true, MEDIUM = true, HIGH = true, CRITICAL = true, WARN = true, FATAL = true }
-- Findings about the scanner's own openssl, not about the server scanned:
-- engine_problem says /usr/bin/openssl has no GOST engine (Debian ships it
-- in a separate package), which a fresh machine never has.
local scanner_side = { engine_problem = true }
for _, item in ipairs(report) do
  if bad[item.severity] and not scanner_side[item.id] then
    fail("%s (%s): %s", item.id, item.severity, item.finding)
  end
end

print(("testssl-check: %d findings, %d cipher suites, protocols TLS1_2=%q TLS1_3=%q")
  :format(#report, suites, by_id.TLS1_2 and by_id.TLS1_2.finding or "?",
    by_id.TLS1_3 and by_id.TLS1_3.finding or "?"))
if #failures > 0 then
  for _, msg in ipairs(failures) do io.stderr:write("testssl-check: FAIL ", msg, "\n") end
  os.exit(1)
end
print("testssl-check: OK (only TLS 1.2/1.3, AEAD+ECDHE suites only, no vulnerability findings)")
