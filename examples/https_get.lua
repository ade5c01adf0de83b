-- A tiny curl on tls.https:
--   lua5.4 examples/https_get.lua [options] URL
--     -o FILE        write the body to FILE (default: stdout)
--     -I             HEAD request; print the response headers
--     -i             print the status line and headers before the body (stdout)
--     -X METHOD      request method;  -d DATA   send DATA as the body (POST)
--     -H 'Name: v'   add a request header (repeatable)
--     --cacert FILE  trust this CA file instead of the system store
--     -k, --insecure do not verify the server's certificate or name
--     --proxy URL    CONNECT proxy (default: https_proxy / HTTPS_PROXY)
--     -m SECONDS     total deadline;  -q   no progress
-- Progress goes to stderr for bodies over 1 MiB (or of unknown length).
-- From a checkout, no install needed: the module is found next to this file
-- (built for this Lua: `make LUA_VERSION=...` builds into build/<version>/, 5.4 into build/).
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local lua_version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/" .. (lua_version == "5.4" and "" or lua_version .. "/") .. "?.so;"
  .. package.cpath
local https = require "tls.https"

local function usage(msg)
  if msg then io.stderr:write("https_get: ", msg, "\n") end
  io.stderr:write("usage: lua5.4 examples/https_get.lua [-o FILE] [-I] [-i] [-X METHOD] "
    .. "[-d DATA] [-H 'Name: value'] [--cacert FILE] [-k] [--proxy URL] [-m SECONDS] [-q] URL\n")
  os.exit(2)
end

local opts, out_path, show_headers, quiet, url = { headers = {} }, nil, false, false, nil
local i = 1
local function value()
  i = i + 1
  return arg[i] or usage("option " .. arg[i - 1] .. " needs a value")
end
while i <= #arg do
  local a = arg[i]
  if a == "-o" then out_path = value()
  elseif a == "-I" then opts.method = "HEAD"; show_headers = true
  elseif a == "-i" then show_headers = true
  elseif a == "-X" then opts.method = value()
  elseif a == "-d" then opts.body = value(); opts.method = opts.method or "POST"
  elseif a == "-H" then
    local name, v = value():match("^([^:]+):%s*(.*)$")
    if not name then usage("-H takes 'Name: value'") end
    -- a repeated name sends one header line per -H, in order
    local prev = opts.headers[name]
    if prev == nil then opts.headers[name] = v
    elseif type(prev) == "table" then prev[#prev + 1] = v
    else opts.headers[name] = { prev, v } end
  elseif a == "--cacert" then opts.ca_file = value()
  elseif a == "-k" or a == "--insecure" then
    opts.insecure_noverifycert, opts.insecure_noverifyname = true, true
  elseif a == "--proxy" then opts.proxy = value()
  elseif a == "-m" then opts.total_timeout = tonumber(value()) or usage("-m takes seconds")
  elseif a == "-q" then quiet = true
  elseif a:sub(1, 1) == "-" then usage("unknown option " .. a)
  else url = a end
  i = i + 1
end
if not url then usage() end

local out = io.stdout
if out_path then out = assert(io.open(out_path, "wb")) end

local now = require("tls.core").now
local started, last_shown, shown = now(), 0, false
local function human(n)
  if n >= 1048576 then return ("%.1f MiB"):format(n / 1048576) end
  if n >= 1024 then return ("%.1f KiB"):format(n / 1024) end
  return n .. " B"
end

-- The status line and headers, once: to stdout before the body (-i, -I).
local headers_shown = false
local function show(res)
  if headers_shown or not show_headers then return end
  headers_shown = true
  io.stdout:write(res.status_line, "\r\n")
  for name, v in res.headers:each() do io.stdout:write(name, ": ", v, "\r\n") end
  io.stdout:write("\r\n")
end

-- Body blocks wait here until the headers are out (the first progress
-- call brings them), then stream.
local held = show_headers and {} or nil
opts.url = url
opts.sink = function(chunk)
  if chunk then
    if held and not headers_shown then held[#held + 1] = chunk else out:write(chunk) end
  end
  return 1
end
local function release(res)
  show(res)
  if held then
    out:write(table.concat(held))
    held = nil
  end
end
opts.progress = function(received, total, res)
  release(res)
  if quiet or (total and total < 1048576) or (not total and received < 1048576) then return end
  local t = now()
  if t - last_shown < 0.2 and received ~= total then return end
  last_shown, shown = t, true
  local rate = received / math.max(t - started, 1e-3)
  if total then
    io.stderr:write(("\r%5.1f%%  %s of %s  %s/s   "):format(100 * received / total,
      human(received), human(total), human(rate)))
  else
    io.stderr:write(("\r%s  %s/s   "):format(human(received), human(rate)))
  end
end

local res, err = https.fetch(opts)
if shown then io.stderr:write("\n") end
if res then release(res) end
if out_path then out:close() end
if not res then
  io.stderr:write("https_get: ", err, "\n")
  os.exit(1)
end
if res.tls and not quiet and (out_path or show_headers) then
  io.stderr:write(("%s %s %s\n"):format(res.url, res.tls.version, res.tls.cipher))
end
os.exit(res.status < 400 and 0 or 22)
