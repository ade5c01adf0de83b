-- `make limbo`: runs the x509-limbo conformance suite through raw libtls
-- (limbo_raw.c) and through tls.engine with the default and the strict
-- policy (limbo_engine.lua), each case at its validation time (faketime,
-- one run per distinct time), then
--   * prints the three totals on one line,
--   * writes the results table to doc/conformance.md,
--   * fails naming every case whose result differs from the committed
--     expectations (spec/conformance/limbo-expected.tsv), where the default
--     policy does worse than raw libtls, or where strict refuses a valid
--     certificate the default accepts.
--
--   lua5.4 spec/conformance/limbo.lua <raw-binary> <work-dir> [--update]
-- --update rewrites the expectations file instead of comparing.

local json = require "dkjson"

local HERE = "spec/conformance/"
local SUITE = HERE .. "x509-limbo.json"
-- (LIMBO_EXPECTED and LIMBO_DOC let spec/limbo_spec.lua check the harness
-- itself without touching the committed files)
local EXPECTED = os.getenv("LIMBO_EXPECTED") or HERE .. "limbo-expected.tsv"
local NOTES = HERE .. "limbo-notes.tsv"
local DOC = os.getenv("LIMBO_DOC") or "doc/conformance.md"

local raw_bin, work, update = arg[1], arg[2], arg[3] == "--update"
if not raw_bin or not work then
  io.stderr:write("usage: limbo.lua <limbo_raw binary> <work dir> [--update]\n")
  os.exit(2)
end
local LUA = os.getenv("LUA") or "lua5.4"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

local function sh(cmd)
  local ok = os.execute(cmd)
  if ok ~= true and ok ~= 0 then error("command failed: " .. cmd) end
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Which cases a libtls handshake can express, and why not the others.

-- The purpose libtls always checks: serverAuth for a server's certificate,
-- clientAuth for a client's.
local default_eku = { SERVER = "serverAuth", CLIENT = "clientAuth" }

local function why_skipped(c)
  if not c.peer_certificate_key then
    return "no peer key: the case gives only a certificate, and a TLS peer must sign with its key"
  end
  if #c.signature_algorithms > 0 then
    return "signature-algorithm constraint: libtls cannot restrict the chain's signature algorithms"
  end
  if #c.key_usage > 0 then
    return "key-usage constraint: libtls cannot require a key usage"
  end
  for _, e in ipairs(c.extended_key_usage) do
    if e ~= default_eku[c.validation_kind] then
      return "EKU " .. e .. ": libtls checks only " .. default_eku[c.validation_kind]
    end
  end
  local names = { c.expected_peer_name }
  for _, n in ipairs(c.expected_peer_names) do names[#names + 1] = n end
  for _, n in ipairs(names) do
    if n.kind ~= "DNS" and n.kind ~= "IP" then
      return n.kind .. " name: libtls checks only DNS names and IP addresses"
    end
    if c.validation_kind == "CLIENT" then
      return "client name: libtls does not check the name of a client certificate"
    end
  end
  if #c.expected_peer_names > 0 then
    return "several expected names: a handshake checks one"
  end
end

--- Case files: the raw harness reads files, the engine runner reads the same.

local suite = assert(json.decode(read(SUITE)), "cannot decode " .. SUITE)
local cases, by_id = suite.testcases, {}
sh("rm -rf " .. quote(work .. "/cases") .. " && mkdir -p " .. quote(work .. "/cases"))

local groups, group_order = {}, {}
local need_server_key = false
for i, c in ipairs(cases) do
  by_id[c.id] = c
  c.skip = why_skipped(c)
  if not c.skip then
    local dir = string.format("%s/cases/%03d", work, i)
    sh("mkdir -p " .. quote(dir))
    write(dir .. "/ca.pem", table.concat(c.trusted_certs))
    write(dir .. "/chain.pem", c.peer_certificate .. table.concat(c.untrusted_intermediates))
    write(dir .. "/key.pem", c.peer_certificate_key)
    if #c.crls > 0 then write(dir .. "/crl.pem", table.concat(c.crls)) end
    -- faketime takes whole seconds; x509 times have no finer resolution.
    local t = c.validation_time
    local when = t and t:match("^(%d+%-%d+%-%d+)T(%d+:%d+:%d+)")
    when = when and (t:sub(1, 10) .. " " .. t:sub(12, 19)) or "now"
    if not groups[when] then groups[when], group_order[#group_order + 1] = {}, when end
    local name = c.expected_peer_name and c.expected_peer_name.value or "-"
    local depth = c.max_chain_depth and tostring(c.max_chain_depth) or "-"
    table.insert(groups[when], table.concat({ c.id, c.validation_kind, dir, name, depth }, "\t"))
    if c.validation_kind == "CLIENT" then need_server_key = true end
  end
end

-- The verifying server of client-certificate cases needs a keypair of its own.
local server_dir = work .. "/server"
if need_server_key then
  sh("mkdir -p " .. quote(server_dir) .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    .. " -subj /CN=localhost -days 36500 -keyout " .. quote(server_dir .. "/key.pem")
    .. " -out " .. quote(server_dir .. "/cert.pem") .. " 2>/dev/null")
end

--- Runs: one faketime per validation time, raw and module in the same run.

local results = {}   -- id -> { raw = {result, err}, default = ..., strict = ... }
table.sort(group_order)
for gi, when in ipairs(group_order) do
  local list = string.format("%s/group-%02d.tsv", work, gi)
  write(list, table.concat(groups[when], "\n") .. "\n")
  local clock = when == "now" and "" or ("TZ=UTC faketime -f " .. quote(when) .. " ")
  local cmd = "LIMBO_SERVER_DIR=" .. quote(server_dir) .. " " .. clock .. quote(raw_bin) .. " < " .. quote(list)
    .. " && LIMBO_SERVER_DIR=" .. quote(server_dir) .. " " .. clock .. LUA .. " " .. HERE .. "limbo_engine.lua < " .. quote(list)
  local p = assert(io.popen(cmd))
  for line in p:lines() do
    local id, who, result, err = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
    if not id or not by_id[id] then error("limbo: unexpected output line: " .. line) end
    results[id] = results[id] or {}
    results[id][who] = { result, err ~= "" and err or nil }
  end
  local ok = p:close()
  if not ok then error("limbo: a run failed at time " .. when .. ": " .. cmd) end
end

--- Totals, expectations, doc.

local RUNS = { "raw", "default", "strict" }
local function outcome(c, who)
  if c.skip then return "skip" end
  local r = results[c.id] and results[c.id][who]
  if not r then error("limbo: no " .. who .. " result for " .. c.id) end
  return r[1]
end
local function matches(c, o)
  return (o == "pass" and c.expected_result == "SUCCESS") or (o == "fail" and c.expected_result == "FAILURE")
end

local totals, skipped, refused_good = { raw = 0, default = 0, strict = 0 }, { raw = 0, default = 0, strict = 0 }, {}
local rows = {}
for _, c in ipairs(cases) do
  local row = { c = c }
  for _, who in ipairs(RUNS) do
    local o = outcome(c, who)
    row[who] = o
    if matches(c, o) then totals[who] = totals[who] + 1 end
    if o == "skip" then skipped[who] = skipped[who] + 1 end
    -- A policy can only refuse: what matters is that strict's own rules
    -- refuse no valid certificate that the default accepted.
    if who == "strict" and o == "fail" and c.expected_result == "SUCCESS" and row.default == "pass" then
      refused_good[#refused_good + 1] = c.id
    end
  end
  rows[#rows + 1] = row
end

local n = #cases
-- The default must never do worse than raw libtls.
local worse = {}
for _, r in ipairs(rows) do
  if matches(r.c, r.raw) and not matches(r.c, r.default) then worse[#worse + 1] = r.c.id end
end
local line = string.format("limbo: %d cases: raw libtls %d/%d, default %d/%d, strict %d/%d match (%d cannot be expressed)",
  n, totals.raw, n, totals.default, n, totals.strict, n, skipped.raw)
print(line)
if #worse > 0 then
  print(string.format("limbo: the default policy does worse than raw libtls on %d case(s): %s", #worse, table.concat(worse, ", ")))
end

-- Why a case still does not match: spec/conformance/limbo-notes.tsv,
-- "<id or Lua pattern> <tab> <reason>", first match wins.
local notes = {}
for l in read(NOTES):gmatch("[^\n]+") do
  if not l:match("^#") then
    local pat, reason = l:match("^([^\t]+)\t(.+)$")
    if pat then notes[#notes + 1] = { pat, reason } end
  end
end
local function note_for(id)
  for _, nt in ipairs(notes) do
    if id == nt[1] or id:match("^" .. nt[1] .. "$") then return nt[2] end
  end
end

local function cell(s)
  s = tostring(s or ""):gsub("|", "\\|"):gsub("\n", " ")
  if #s > 220 then s = s:sub(1, 217) .. "..." end
  return s
end

local mark = { pass = "pass", fail = "fail", skip = "skip" }
local function show(c, o) return matches(c, o) and mark[o] or ("**" .. mark[o] .. "**") end

local out = {}
local function add(s) out[#out + 1] = s end
add("# Conformance: x509-limbo")
add("")
add("Generated by `make limbo` (spec/conformance/limbo.lua); do not edit by hand.")
add("Each case of the x509-limbo suite (Apache-2.0, C2SP/trailofbits; copy in")
add("`spec/conformance/`) runs as a real TLS handshake in one process: raw libtls")
add("(`spec/conformance/limbo_raw.c`, two libtls contexts over memory) and two")
add("`tls.engine`s with the default policy and with `tls.policy.strict`, at the")
add("case's validation time (Debian `faketime`). A result in **bold** does not")
add("match the expected one; the last column says why.")
add("")
add("| | raw libtls | default policy | `tls.policy.strict` |")
add("| --- | --- | --- | --- |")
add(string.format("| cases that match (of %d) | %d | %d | %d |", n, totals.raw, totals.default, totals.strict))
add(string.format("| cannot be expressed (skipped) | %d | %d | %d |", skipped.raw, skipped.default, skipped.strict))
local function refused(w)
  local k = 0
  for _, r in ipairs(rows) do if r[w] == "fail" and r.c.expected_result == "SUCCESS" then k = k + 1 end end
  return k
end
add(string.format("| should succeed, refused | %d | %d | %d |", refused("raw"), refused("default"), refused("strict")))
add(string.format("| should succeed, refused by the strict rules (the default accepts it) | | | %d |", #refused_good))
add(string.format("| does worse than raw libtls | | %d | %d |", #worse,
  (function() local k = 0 for _, r in ipairs(rows) do if matches(r.c, r.raw) and not matches(r.c, r.strict) then k = k + 1 end end return k end)()))
add("")
add("How a case is run, what is skipped and why, and the strict policy's rules:")
add("see the end of this page.")
add("")
add("| case | expected | raw libtls | default | strict | error | why it does not match |")
add("| --- | --- | --- | --- | --- | --- | --- |")
local missing_notes = {}
for _, r in ipairs(rows) do
  local c = r.c
  local err
  for _, who in ipairs({ "strict", "default", "raw" }) do
    local res = results[c.id] and results[c.id][who]
    if res and res[2] then err = res[2] break end
  end
  err = err or c.skip
  local note = ""
  if c.skip or (r.raw == "skip" and r.default == "skip" and r.strict == "skip") then
    note = "cannot be expressed as a handshake (error column)"
  elseif matches(c, r.strict) and not matches(c, r.default) then
    note = "libtls accepts it; a rule of tls.policy.strict refuses it (error column)"
  elseif matches(c, r.strict) and not matches(c, r.raw) then
    note = "libtls accepts it; the default policy refuses it (error column)"
  elseif not matches(c, r.strict) then
    note = note_for(c.id)
    if not note then missing_notes[#missing_notes + 1] = c.id note = "" end
  end
  add(string.format("| `%s` | %s | %s | %s | %s | %s | %s |", c.id,
    c.expected_result == "SUCCESS" and "pass" or "fail",
    show(c, r.raw), show(c, r.default), show(c, r.strict), cell(err), cell(note)))
end
add("")
add(read(HERE .. "limbo-doc-tail.md"))
write(DOC, table.concat(out, "\n"))

-- Expectations: a changed result names the case.
local function expectations()
  local t = { "# id\traw\tdefault\tstrict (make limbo-update rewrites this file)" }
  for _, r in ipairs(rows) do t[#t + 1] = table.concat({ r.c.id, r.raw, r.default, r.strict }, "\t") end
  return table.concat(t, "\n") .. "\n"
end
if update then
  write(EXPECTED, expectations())
  print("limbo: wrote " .. EXPECTED)
end
local want = {}
for l in read(EXPECTED):gmatch("[^\n]+") do
  if not l:match("^#") then
    local id, raw, def, strict = l:match("^([^\t]+)\t(%a+)\t(%a+)\t(%a+)$")
    if id then want[id] = { raw = raw, default = def, strict = strict } end
  end
end
local changed = {}
for _, r in ipairs(rows) do
  local w = want[r.c.id]
  if not w then
    changed[#changed + 1] = r.c.id .. ": not in " .. EXPECTED
  else
    for _, who in ipairs(RUNS) do
      if w[who] ~= r[who] then
        changed[#changed + 1] = string.format("%s: %s was %s, now %s", r.c.id, who, w[who], r[who])
      end
    end
  end
end
local failed = false
if #changed > 0 then
  print("limbo: results changed from " .. EXPECTED .. " (after checking, `make limbo-update` records them):")
  for _, s in ipairs(changed) do print("  " .. s) end
  failed = true
end
if #worse > 0 then
  print("limbo: the default policy must never do worse than raw libtls")
  failed = true
end
if #refused_good > 0 then
  print("limbo: tls.policy.strict refuses cases that should succeed: " .. table.concat(refused_good, ", "))
  failed = true
end
if #missing_notes > 0 then
  print("limbo: no reason in " .. NOTES .. " for these mismatches: " .. table.concat(missing_notes, ", "))
  failed = true
end
print("limbo: wrote " .. DOC)
if failed then os.exit(1) end
