-- lua-tls benchmarks: `make bench` (or `make bench-smoke` for tiny counts).
--
-- Runs every section in bench/sections/ (in name order) and prints one table
-- of absolute figures and ratios: lua-tls against raw libtls (bench/ctls.c)
-- and against LuaSec, on the same certificates. A section whose module or
-- tool is missing is skipped with a note. To add a section, drop a file in
-- bench/sections/ that returns { name = ..., run = function(b) ... end }
-- and calls b.row{...} for each figure (see bench/sections/10_server_hs.lua).
--
-- Settings (environment): see bench/lib.lua (BENCH_HS, BENCH_REPEAT,
-- BENCH_CONNS, BENCH_ONLY=server,bulk, BENCH_SMOKE=1, ...).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local lib = require "lib"

local b = { lib = lib, settings = lib.settings, rows = {}, notes = {}, failed = {} }

-- A figure: {section, case, unit, module, c, luasec, better = "higher"|"lower",
-- target_c = min ratio vs C, target_luasec = min ratio vs LuaSec, note;
-- lua54 = the Lua 5.4 build's figure and target_lua54, in the versions section}.
-- A value may be nil (not measured) or a string ("n/a").
function b.row(r)
  r.section = r.section or b.current
  b.rows[#b.rows + 1] = r
end

function b.note(text)
  b.notes[#b.notes + 1] = (b.current and (b.current .. ": ") or "") .. text
  io.stderr:write("  note: ", text, "\n")
end

function b.progress(text)
  io.stderr:write("  ", text, "\n")
end

-- ratio > 1 means lua-tls is better (faster, or smaller)
local function ratio(r, other)
  if type(r.module) ~= "number" or type(other) ~= "number" or other == 0 or r.module == 0 then
    return nil
  end
  if r.better == "lower" then return other / r.module end
  return r.module / other
end

local function fmt(v)
  if v == nil then return "-" end
  if type(v) ~= "number" then return tostring(v) end
  if v >= 100 then return ("%.0f"):format(v) end
  if v >= 10 then return ("%.1f"):format(v) end
  return ("%.2f"):format(v)
end

local function fmt_ratio(x, target)
  if not x then return "-" end
  local s = ("%.2fx"):format(x)
  if target then s = s .. (x >= target and " ok" or " MISS") end
  return s
end

local function render(markdown)
  local head = { "section", "case", "unit", "lua-tls", "libtls C", "LuaSec", "vs C", "vs LuaSec" }
  -- rows of the versions section compare a build with the Lua 5.4 build (r.lua54)
  local versus54 = false
  for _, r in ipairs(b.rows) do versus54 = versus54 or r.lua54 ~= nil end
  if versus54 then head[#head + 1] = "vs Lua 5.4" end
  local lines = {}
  for _, r in ipairs(b.rows) do
    lines[#lines + 1] = { r.section, r.case, r.unit, fmt(r.module), fmt(r.c), fmt(r.luasec),
      fmt_ratio(ratio(r, r.c), r.target_c), fmt_ratio(ratio(r, r.luasec), r.target_luasec) }
    if versus54 then lines[#lines][#head] = fmt_ratio(ratio(r, r.lua54), r.target_lua54) end
  end
  local out = {}
  if markdown then
    out[#out + 1] = "| " .. table.concat(head, " | ") .. " |"
    out[#out + 1] = "|" .. ("---|"):rep(3) .. ("---:|"):rep(#head - 3)
    for _, l in ipairs(lines) do out[#out + 1] = "| " .. table.concat(l, " | ") .. " |" end
  else
    local width = {}
    for i, h in ipairs(head) do width[i] = #h end
    for _, l in ipairs(lines) do
      for i, c in ipairs(l) do width[i] = math.max(width[i], #c) end
    end
    local function line(cells)
      local parts = {}
      for i, c in ipairs(cells) do
        parts[i] = i <= 3 and (c .. (" "):rep(width[i] - #c)) or ((" "):rep(width[i] - #c) .. c)
      end
      return table.concat(parts, "  ")
    end
    out[#out + 1] = line(head)
    local rule = {}
    for i = 1, #head do rule[i] = ("-"):rep(width[i]) end
    out[#out + 1] = line(rule)
    for _, l in ipairs(lines) do out[#out + 1] = line(l) end
  end
  return table.concat(out, "\n")
end

local function machine()
  local cpu = (lib.read("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local function ver(pkg)
    return (lib.capture("dpkg-query -W -f='${Version}' " .. pkg .. " 2>/dev/null")):match("^%S+") or "?"
  end
  local linked = require("tls.core").library
  local libtls = linked.name == "LibreTLS"
    and ("LibreTLS %s (Debian libtls26) on %s"):format(ver("libtls26"), linked.crypto)
    or ("%s %s (libcrypto: %s)"):format(linked.name, linked.version or "?", linked.crypto)
  return ("%s cores (nproc), %s; Linux %s; Lua %s; libtls: %s; OpenSSL (LuaSec, peers) %s; "
    .. "LuaSec %s; valgrind %s"):format(
    (lib.capture("nproc")):match("%d+"), cpu, (lib.capture("uname -r")):match("%S+"),
    _VERSION:match("[%d.]+"), libtls, ver("libssl3"), ver("lua-sec"), ver("valgrind"))
end

local function sections()
  local list = {}
  local p = io.popen("ls " .. here .. "/sections/*.lua 2>/dev/null")
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  table.sort(list)
  return list
end

local started = lib.now()
io.stderr:write("lua-tls bench", lib.smoke and " (smoke: tiny counts, figures mean nothing)" or "", "\n")
local ok_all = true
for _, path in ipairs(sections()) do
  local chunk = assert(loadfile(path))
  local sec = chunk()
  if lib.wanted(sec.name) then
    b.current = sec.name
    io.stderr:write(("[%s] %s\n"):format(sec.name, sec.title or ""))
    local t0 = lib.now()
    local ok, err = xpcall(sec.run, debug.traceback, b)
    lib.stop_all()
    if not ok then
      ok_all = false
      b.failed[#b.failed + 1] = sec.name
      b.note("FAILED: " .. tostring(err))
    end
    io.stderr:write(("  (%.1f s)\n"):format(lib.now() - t0))
    b.current = nil
  end
end
lib.stop_all()
lib.remove_tmpdir()

local elapsed = lib.now() - started
local text = render(false)
print()
print(text)
print()
local LEGEND = "Ratios: >1 means lua-tls is better (faster, fewer instructions, or less memory). "
  .. "Targets (ok/MISS) are marked on the rows that repeat from run to run: instruction "
  .. "counts (callgrind), memory and pooled HTTPS. Wall and CPU-time rows are for scale: "
  .. "on a shared machine they move by more than the targets' margins."
print(LEGEND)
for _, n in ipairs(b.notes) do print("note: " .. n) end
local host = machine()
print(("machine: %s"):format(host))
print(("took %.0f s"):format(elapsed))

local out_dir = os.getenv("BENCH_OUT") or lib.root .. "/build/bench"
os.execute("mkdir -p " .. out_dir)
local md = { render(true), "", LEGEND, "" }
for _, n in ipairs(b.notes) do md[#md + 1] = "- " .. n end
md[#md + 1] = ""
md[#md + 1] = "Machine: " .. host .. "."
md[#md + 1] = ("Run took %.0f s%s."):format(elapsed, lib.smoke and " (smoke run)" or "")
lib.write(out_dir .. "/results.md", table.concat(md, "\n") .. "\n")
print("(markdown table written to " .. out_dir .. "/results.md)")
if not ok_all then
  io.stderr:write("bench: sections failed: " .. table.concat(b.failed, ", ") .. "\n")
  os.exit(1)
end
