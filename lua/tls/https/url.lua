-- URLs for tls.https: parse absolute http(s) URLs, resolve a redirect's
-- Location against the URL it came from, and format Host / CONNECT
-- authorities. Only what an HTTP/1.1 client needs; no normalisation beyond
-- dot-segment removal on relative references.

local compat = require "tls.compat"

local url = {}

local default_ports = { https = 443, http = 80 }

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
url.unescape = unescape

-- url.parse(s) -> { scheme, host, port, target, user, password } | nil, message
-- target is the request target (path and query, never empty, no fragment).
function url.parse(s)
  if type(s) ~= "string" then
    return nil, "bad URL: expected a string, got " .. type(s)
  end
  local scheme, authority, rest = s:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then
    return nil, "bad URL '" .. s .. "': expected scheme://host[:port]/path"
  end
  -- (messages end up in logs: they show the URL without its password)
  s = s:gsub("^([^/]*//[^/?#:@]*:)[^/?#]*@", "%1***@")
  scheme = scheme:lower()
  if not default_ports[scheme] then
    return nil, "bad URL '" .. s .. "': scheme '" .. scheme .. "' is not https (or http)"
  end
  local u = { scheme = scheme }
  local userinfo, hostport = authority:match("^(.*)@(.-)$")
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    u.user = unescape(user or userinfo)
    u.password = password and unescape(password)
    if u.user:find(":", 1, true) then
      -- Basic auth sends user:password; the server would split at it
      return nil, "bad URL '" .. s .. "': the user name may not contain ':' (%3A)"
    end
  else
    hostport = authority
  end
  local host, port
  if hostport:sub(1, 1) == "[" then
    host, port = hostport:match("^%[([%x:.]+)%](.*)$")
    if not host then return nil, "bad URL '" .. s .. "': bad IPv6 address" end
  else
    host, port = hostport:match("^([^:]*)(.*)$")
  end
  if host == "" then return nil, "bad URL '" .. s .. "': no host" end
  if not host:match("^[%w%.%-_:]+$") then
    return nil, "bad URL '" .. s .. "': bad host '" .. host .. "'"
  end
  u.host = host:lower()
  if port ~= "" then
    local p = port:match("^:(%d+)$")
    p = p and tonumber(p)
    if not p or p < 1 or p > 65535 then
      return nil, "bad URL '" .. s .. "': bad port '" .. port:sub(2) .. "'"
    end
    u.port = compat.tointeger(p)
  else
    u.port = default_ports[scheme]
  end
  rest = rest:gsub("#.*$", "")
  if rest:find("[%z\1-\32\127]") then
    return nil, "bad URL '" .. s .. "': spaces and control characters must be percent-encoded"
  end
  if rest == "" or rest:sub(1, 1) == "?" then rest = "/" .. rest end
  u.target = rest
  return u
end

-- The authority as it goes in Host and CONNECT: brackets around IPv6, the
-- port only when it is not the scheme's default (always for CONNECT).
function url.authority(u, always_port)
  local h = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  if always_port or u.port ~= default_ports[u.scheme] then
    h = h .. ":" .. u.port
  end
  return h
end

function url.origin(u)
  return u.scheme .. "://" .. url.authority(u)
end

function url.tostring(u)
  return url.origin(u) .. u.target
end

local function remove_dots(path)
  local out = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then
      if #out > 1 then out[#out] = nil end
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local last = path:match("[^/]*$")
  if last == "." or last == ".." then out[#out + 1] = "" end
  return table.concat(out, "/")
end

-- url.resolve(base, ref) -> parsed URL | nil, message (RFC 3986 section 5,
-- enough for Location headers).
function url.resolve(base, ref)
  if ref:match("^%a[%w+.-]*://") then return url.parse(ref) end
  ref = ref:gsub("#.*$", "")
  if ref:sub(1, 2) == "//" then return url.parse(base.scheme .. ":" .. ref) end
  local origin = url.origin(base)
  local bpath = base.target:match("^[^?]*")
  if ref == "" then return url.parse(origin .. base.target) end
  if ref:sub(1, 1) == "?" then return url.parse(origin .. bpath .. ref) end
  local rpath, rquery = ref:match("^([^?]*)(.*)$")
  if rpath:sub(1, 1) ~= "/" then
    rpath = bpath:gsub("[^/]*$", "") .. rpath
  end
  return url.parse(origin .. remove_dots(rpath) .. rquery)
end

return url
