-- The options of a tls.https call: which are HTTP options (every other key
-- is a TLS option for tls.config), their checks (misuse raises, naming the
-- option), and prepare(), which turns them into the state a request runs on.

local tls = require "tls"
local compat = require "tls.compat"
local urlmod = require "tls.https.url"
local headers_mod = require "tls.https.headers"
local quote = require("tls.https.response").quote

local options = {}

-- Options of the HTTP layer; every other key is a TLS option for tls.config.
local http_options = {
  url = true, method = true, headers = true, body = true, source = true, sink = true,
  step = true, redirect = true, max_redirects = true, timeout = true,
  connect_timeout = true, handshake_timeout = true, total_timeout = true,
  proxy = true, no_proxy = true, keepalive = true, insecure_http = true,
  max_header_size = true, max_headers = true, max_body = true, progress = true,
  retry_non_idempotent = true, transport = true, http_version = true, decode = true,
  stream = true, json = true, query = true, auth = true, bearer = true, cookies = true,
  multipart = true,
  -- connection-level TLS options (not part of a config)
  policy = true, servername = true, config = true,
}

local token = headers_mod.TOKEN

local function fail(level, fmt, ...)
  error("tls.https: " .. fmt:format(...), level + 1)
end

local function serialize(v, out)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = tostring(k) .. "="
      serialize(v[k], out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  elseif t == "string" then
    out[#out + 1] = ("%q"):format(v)
  else
    out[#out + 1] = t .. ":" .. tostring(v)
  end
  return out
end

-- Small ids for values that key the pool by identity (a given config, a
-- policy function); weak, so a key does not keep its value alive.
local ids = setmetatable({}, { __mode = "k" })
local next_id = 0

local function id_of(v)
  if v == nil then return "-" end
  local id = ids[v]
  if not id then
    next_id = next_id + 1
    id = next_id
    ids[v] = id
  end
  return tostring(id)
end

local function check_number(o, name, level)
  local v = o[name]
  if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0) then
    fail(level + 1, "option '%s' must be a positive number of seconds, got %s", name, tostring(v))
  end
  return v
end

local function check_type(o, name, types, level)
  local v = o[name]
  if v ~= nil and not types:find(type(v), 1, true) then
    fail(level + 1, "option '%s' must be a %s, got %s", name, (types:gsub(",", " or ")), type(v))
  end
  return v
end

-- Request headers given by the user: name -> value or list of values.
local function check_headers(h, level)
  if h == nil then return {} end
  if type(h) ~= "table" then fail(level + 1, "option 'headers' must be a table, got %s", type(h)) end
  local list = {}
  local function add(name, v)
    if type(v) == "number" then v = compat.number_text(v) end
    if type(v) ~= "string" then
      fail(level + 2, "header '%s' must be a string, a number or a list of them, got %s", name, type(v))
    end
    if v:find("[\r\n%z]") then
      fail(level + 2, "header '%s' contains CR, LF or NUL", name)
    end
    list[#list + 1] = { name, v, #list + 1 }
  end
  for name, v in pairs(h) do
    if type(name) ~= "string" or not name:match(token) then
      fail(level + 1, "header name %s is not a valid HTTP token", tostring(name))
    end
    if type(v) == "table" then
      for _, x in ipairs(v) do add(name, x) end
    else
      add(name, v)
    end
  end
  -- by name, for an order pairs() does not give; table.sort is not stable,
  -- so the values of one name keep their order through their index
  table.sort(list, function(a, b)
    local x, y = a[1]:lower(), b[1]:lower()
    if x ~= y then return x < y end
    return a[3] < b[3]
  end)
  return list
end

local function has_header(list, name)
  name = name:lower()
  for _, l in ipairs(list) do
    if l[1]:lower() == name then return l[2] end
  end
end

local function without_headers(list, names)
  local out = {}
  for _, l in ipairs(list) do
    if not names[l[1]:lower()] then out[#out + 1] = l end
  end
  return out
end

local function form_encode(t)
  local parts = {}
  local function esc(s)
    if type(s) == "number" then s = compat.number_text(s) end
    return (tostring(s):gsub("[^%w%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = esc(k) .. "=" .. esc(t[k]) end
  return table.concat(parts, "&")
end

options.id_of, options.has_header, options.without_headers = id_of, has_header, without_headers

local timeout_options = { "timeout", "connect_timeout", "handshake_timeout", "total_timeout" }

-- The URL with o.query ({ name = value or { values } }) added to its query.
local function with_query(o, level)
  local q, url = o.query, o.url
  if q == nil then return url end
  if type(q) ~= "table" then fail(level, "option 'query' must be a table, got %s", type(q)) end
  if type(url) ~= "string" then return url end
  local keys = {}
  for k in pairs(q) do
    if type(k) ~= "string" and type(k) ~= "number" then
      fail(level, "option 'query': names must be strings, got %s", type(k))
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  local function esc(s)
    if type(s) == "number" then s = compat.number_text(s) end
    return (tostring(s):gsub("[^%w%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  for _, k in ipairs(keys) do
    local v = q[k]
    local list = type(v) == "table" and v or { v }
    for _, x in ipairs(list) do
      if type(x) ~= "string" and type(x) ~= "number" and type(x) ~= "boolean" then
        fail(level, "option 'query': the value of '%s' must be a string, a number or a list of them, got %s",
          tostring(k), type(x))
      end
      parts[#parts + 1] = esc(k) .. "=" .. esc(x)
    end
  end
  if #parts == 0 then return url end
  local base, frag = url:match("^([^#]*)(.*)$")
  local sep = base:find("?", 1, true) and (base:sub(-1) == "?" and "" or "&") or "?"
  return base .. sep .. table.concat(parts, "&") .. frag
end

-- auth = { user, password } (Basic) or bearer = token: an Authorization
-- header, unless the caller gave one.
local function auth_header(o, list, level)
  local a, b = o.auth, o.bearer
  if a == nil and b == nil then return end
  if a ~= nil and b ~= nil then fail(level, "give either 'auth' or 'bearer', not both") end
  local value
  if a ~= nil then
    if type(a) ~= "table" or type(a[1]) ~= "string" or type(a[2] or "") ~= "string" then
      fail(level, "option 'auth' must be { user, password } (strings), got %s", type(a))
    end
    if a[1]:find(":", 1, true) then
      -- Basic auth sends user:password: the server would split at this one
      fail(level, "option 'auth': the user name may not contain ':' (RFC 7617)")
    end
    value = "Basic " .. require("tls.base64").encode(a[1] .. ":" .. (a[2] or ""))
  else
    if type(b) ~= "string" or b == "" or b:find("[%c ]") then
      fail(level, "option 'bearer' must be a token string without spaces or control characters")
    end
    value = "Bearer " .. b
  end
  if not has_header(list, "authorization") then list[#list + 1] = { "Authorization", value } end
end

-- The steps of prepare(). Each raises on misuse at `level` (counted from
-- fail's caller) and returns nil, message for failures of the world.

-- The caller's options over https.defaults.
local function with_defaults(o, https)
  if next(https.defaults) == nil then return o end
  local t = {}
  for k, v in pairs(https.defaults) do t[k] = v end
  for k, v in pairs(o) do t[k] = v end
  if o.config ~= nil then
    -- a ready config replaces the default TLS options
    for k in pairs(https.defaults) do
      if not http_options[k] and o[k] == nil then t[k] = nil end
    end
  end
  return t
end

local function check_integer(o, name, min, level)
  local v = o[name]
  if v ~= nil and (not compat.is_integer(v) or v < min) then
    if min == 0 then
      fail(level + 1, "option '%s' must be a non-negative integer, got %s", name, tostring(v))
    end
    fail(level + 1, "option '%s' must be an integer of at least %d, got %s", name, min, tostring(v))
  end
  return v
end

-- Types of the HTTP options (TLS options are tls.config's to check).
local function check_http_options(o, level)
  if o.create ~= nil then
    fail(level, "option 'create' (a LuaSocket socket factory) is not supported")
  end
  for i = 1, #timeout_options do check_number(o, timeout_options[i], level) end
  for _, name in ipairs { "redirect", "keepalive", "insecure_http", "retry_non_idempotent", "decode", "stream" } do
    check_type(o, name, "boolean", level)
  end
  check_type(o, "proxy", "string,boolean", level)
  if o.proxy == true then fail(level, "option 'proxy' must be a URL string or false, got true") end
  check_type(o, "no_proxy", "string", level)
  for _, name in ipairs { "sink", "source", "progress" } do check_type(o, name, "function", level) end
  check_type(o, "body", "string,function,table", level)
  check_type(o, "servername", "string", level)
  local hv = o.http_version
  if hv ~= nil and hv ~= "1.1" and hv ~= "2" then
    fail(level, "option 'http_version' must be \"1.1\" or \"2\", got %s",
      type(hv) == "string" and quote(hv) or tostring(hv))
  end
  local tr = o.transport
  if tr ~= nil and type(tr) ~= "function" and tr ~= "socket" and tr ~= "cqueues" and tr ~= "ngx" then
    fail(level, "option 'transport' must be \"socket\", \"cqueues\", \"ngx\" or a function "
      .. "(host, port, opts) -> transport, got %s", type(tr) == "string" and quote(tr) or type(tr))
  end
  local policy = o.policy
  if policy ~= nil and policy ~= false and type(policy) ~= "function"
      and not (getmetatable(policy) or {}).__call then
    -- (checked here too: tls.connect would raise it mid-request, naming itself)
    fail(level, "option 'policy' must be a function, a tls.policy or false, got %s", type(policy))
  end
end

-- The limits on what the server may send: max_redirects, max_header_size,
-- max_headers, and max_body for the body the caller gets and for the
-- dropped body of a redirect.
local function limits_of(o, level, https)
  local mb = o.max_body
  if mb ~= nil and (type(mb) ~= "number" or mb < 0 or mb ~= math.floor(mb)) then
    fail(level, "option 'max_body' must be a whole number of bytes (math.huge for no limit), got %s",
      tostring(mb))
  end
  -- a body kept in memory is bounded by default; one streamed to the
  -- caller's sink only when max_body is given
  local kept = mb or https.MAX_BODY
  if kept == math.huge then kept = nil end
  local given = kept
  if o.sink and mb == nil then given = nil end
  return {
    max_redirects = check_integer(o, "max_redirects", 0, level) or https.MAX_REDIRECTS,
    max_header_size = check_integer(o, "max_header_size", 256, level) or https.MAX_HEADER_SIZE,
    max_headers = check_integer(o, "max_headers", 1, level) or https.MAX_HEADERS,
    max_body = given, buffered_max_body = kept,
  }
end

-- Secret option values never become part of a pool key as they are.
local secret_options = { key = true, key_password = true }

-- What stands for a secret in a pool key: its SHA-256, never the secret.
local function digest(secret)
  return "sha256:" .. require("tls.sha256").hex(secret)
end
options.digest = digest

-- The TLS side: { config = given config } or { options = TLS options },
-- and the part of the pool key they make (connections made with different
-- TLS settings are never shared).
local function tls_of(o, level)
  local topts, any = {}, false
  for k, v in pairs(o) do
    if not http_options[k] then topts[k] = v; any = true end
  end
  if o.config ~= nil then
    if any then
      fail(level, "give either config = cfg or TLS options such as '%s', not both", tostring(next(topts)))
    end
    -- (only checks the type: a given config is not built)
    local ok, err = pcall(tls.config_for, { config = o.config })
    if not ok then
      fail(level, "%s", tostring(err):gsub("^[^\n]-:%d+: ", ""):gsub("^tls%.config_for: ", ""))
    end
    return { config = o.config, key = "config#" .. id_of(o.config) }
  end
  if topts.alpn == nil then
    -- h2 first, unless HTTP/1.1 is asked for (for "2" too: then a server
    -- without h2 gets a clear error rather than a failed handshake)
    if o.http_version == "1.1" then topts.alpn = { "http/1.1" }
    else topts.alpn = { "h2", "http/1.1" } end
  end
  local keyed = topts
  for name in pairs(secret_options) do
    if type(topts[name]) == "string" then
      if keyed == topts then
        keyed = {}
        for k, v in pairs(topts) do keyed[k] = v end
      end
      keyed[name] = digest(topts[name])
    end
  end
  return { options = topts, key = table.concat(serialize(keyed, {})),
    insecure = topts.insecure_noverifycert }
end

-- The request body: body, source, length (of a source, from the caller's
-- Content-Length); adds Content-Type to list for a form.
local function body_of(o, list, level)
  local body, source, length = o.body, o.source, nil
  if o.multipart ~= nil then
    if body ~= nil or source ~= nil or o.json ~= nil then
      fail(level, "give either 'multipart' or 'body'/'source'/'json', not both")
    end
    if type(o.multipart) ~= "table" then
      fail(level, "option 'multipart' must be a table of fields, got %s", type(o.multipart))
    end
    local len, ctype
    source, len, ctype = require("tls.https.multipart").body(o.multipart, level + 2)
    if not source then return nil, nil, nil, len end
    if has_header(list, "content-type") then
      fail(level, "give no Content-Type header with 'multipart' (it carries the boundary chosen there)")
    end
    list[#list + 1] = { "Content-Type", ctype }
    return nil, source, len
  end
  if o.json ~= nil then
    if body ~= nil or source ~= nil then fail(level, "give either 'json' or 'body'/'source', not both") end
    local err
    body, err = require("tls.https.json").encode(o.json)
    if not body then return nil, nil, nil, err end
    if not has_header(list, "content-type") then
      list[#list + 1] = { "Content-Type", "application/json" }
    end
  end
  if type(body) == "table" then
    body = form_encode(body)
    if not has_header(list, "content-type") then
      list[#list + 1] = { "Content-Type", "application/x-www-form-urlencoded" }
    end
  elseif type(body) == "function" then
    source, body = body, nil
  end
  if source and body then fail(level, "give either 'body' or 'source', not both") end
  if source then
    local cl = has_header(list, "content-length")
    if cl then
      length = cl:match("^%s*(%d+)%s*$")
      -- at most 15 digits: exact in a double, an integer on 5.3+
      length = length and #length <= 15 and compat.tointeger(tonumber(length))
      if not length then fail(level, "header 'content-length' must be a byte count, got %s", quote(cl)) end
    end
  end
  return body, source, length
end

-- options.prepare(o, level, https, now) -> the request state | nil, message.
-- Validates the options of a call over https.defaults (limits default to
-- https.MAX_*, https.TIMEOUT). Raises on misuse (wrong types, bad headers)
-- at `level` above the public function; returns nil, message for bad URLs.
-- TLS options are checked when the first connection is made (config_of in
-- tls.https).
function options.prepare(o, level, https, now)
  level = level + 2   -- fail(level) must reach past fail, prepare and the public function
  if type(o) ~= "table" then fail(level, "options must be a table, got %s", type(o)) end
  o = with_defaults(o, https)
  check_http_options(o, level + 1)
  local u, err = urlmod.parse(with_query(o, level))
  if not u then return nil, err end
  if u.scheme == "http" and not o.insecure_http then
    return nil, "bad URL '" .. o.url .. "': plain http is refused (tls.https is an HTTPS client; "
      .. "set insecure_http = true to allow it)"
  end
  local method = check_type(o, "method", "string", level) or "GET"
  if not method:match(token) then fail(level, "method %s is not a valid HTTP token", quote(method)) end
  method = method:upper()
  local list = check_headers(o.headers, level)
  auth_header(o, list, level)
  local body, source, length, jerr = body_of(o, list, level + 1)
  if jerr then return nil, jerr end
  local t = tls_of(o, level + 1)
  local policy = o.policy
  if policy == nil and t.insecure then policy = false end
  local timeout = o.timeout or https.TIMEOUT
  local first_host, servername = u.host, o.servername
  local st = limits_of(o, level + 1, https)
  st.http_version = o.http_version
  st.stream = o.stream == true
  local jar = o.cookies
  if jar ~= nil and (type(jar) ~= "table" or type(jar.header_for) ~= "function") then
    fail(level, "option 'cookies' must be a jar from https.cookiejar(), got %s", type(jar))
  end
  st.cookies = jar
  if st.stream and o.sink then fail(level, "give either 'sink' or stream = true, not both") end
  -- content decoding: by default only of what we asked for (Accept-Encoding
  -- added by us, when lua-zlib is there); decode = true also decodes what
  -- the caller's own Accept-Encoding brought; false never
  local decode = require "tls.https.decode"
  local own_accept = has_header(list, "accept-encoding")
  st.accept_encoding = o.decode ~= false and decode.available and not own_accept
  st.decode = decode.available and (o.decode == true or (o.decode == nil and not own_accept))
  if o.decode == true and not decode.available then
    return nil, "decode = true needs lua-zlib (Debian package lua-zlib), which is not installed"
  end
  if u.scheme == "http" and o.http_version == "2" then
    return nil, "bad URL '" .. o.url .. "': http_version = \"2\" needs https (HTTP/2 is "
      .. "negotiated in the TLS handshake; cleartext HTTP/2 is not supported)"
  end
  st.cfg, st.tls_options, st.tls_key, st.policy = t.config, t.options, t.key, policy
  st.timeout = timeout
  st.connect_timeout = o.connect_timeout or timeout
  st.handshake_timeout = o.handshake_timeout or timeout
  st.deadline = o.total_timeout and (now() + o.total_timeout)
  st.redirect, st.redirects = o.redirect ~= false, 0
  st.proxy, st.no_proxy = o.proxy, o.no_proxy
  st.keepalive = o.keepalive ~= false
  st.insecure_http = o.insecure_http == true
  st.retry_non_idempotent = o.retry_non_idempotent == true
  -- how connections are made: blocking sockets, or tls.over on the host's own
  st.transport = o.transport or tls.transport.here()
  st.sink, st.progress = o.sink, o.progress
  st.sink_given = o.sink ~= nil
  -- servername overrides the name only for the host it was given for
  st.servername_for = function(x)
    if servername and x.host == first_host then return servername end
    return x.host
  end
  st.first = { url = u, method = method, headers = list, body = body, source = source, length = length }
  return st
end

return options
