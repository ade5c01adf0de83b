-- tls.https: an HTTPS/1.1 client on lua-tls, in pure Lua.
--
--   https.request(url [, body])  -> body, code, headers, status_line  (LuaSocket/LuaSec)
--   https.request{url=, ...}     -> 1, code, headers, status_line     (ltn12 source/sink)
--   https.get(url [, opts]) / https.post(url, body [, opts]) / https.fetch(opts)
--                                -> { status, reason, headers, body, url, tls } | nil, err
--
-- Keep-alive connections wait in one bounded pool (tls.https.pool); TLS
-- configs come from the library's own path (tls.config_for), only when a new
-- connection is made. doc/https.md lists every option and error.

local tls = require "tls"
local compat = require "tls.compat"
local urlmod = require "tls.https.url"
local headers_mod = require "tls.https.headers"
local reader = require "tls.https.reader"
local response = require "tls.https.response"
local pool_mod = require "tls.https.pool"
local proxies = require "tls.https.proxy"

local https = {
  _VERSION = "tls.https scm",
  USERAGENT = "lua-tls/scm",
  TIMEOUT = 60,          -- seconds for connect, handshake and each read or write
  MAX_REDIRECTS = 5,
  MAX_HEADER_SIZE = 65536,
  MAX_HEADERS = 256,            -- header lines in one response head
  MAX_BODY = 64 * 1024 * 1024,  -- bytes of a body kept in memory (no sink)
}

-- Options every request starts from (the caller's options win), e.g.
-- https.defaults.ca_file = "/etc/my-ca.pem" for the one-argument request().
https.defaults = {}

local now = tls.core.now or function()
  local ok, socket = pcall(require, "socket")
  return ok and socket.gettime() or os.time()
end

local the_pool = pool_mod.new({}, now)

local BLOCK = 65536

--- Small helpers

local quote, ended = response.quote, response.ended

local function shut(conn)
  if conn then
    conn:settimeout(0)   -- one close_notify attempt, never a wait
    conn:close()
  end
end

local function need_socket(what)
  local ok, socket = pcall(require, "socket")
  if not ok then
    return nil, what .. " need LuaSocket (Debian package lua-socket), which is not installed"
  end
  return socket
end

-- The remaining time for one step: min(t, time left before the deadline),
-- or nil when the deadline has passed.
local function limit(st, t)
  if not st.deadline then return t end
  local left = st.deadline - now()
  if left <= 0 then return nil end
  if left < t then return left end
  return t
end

--- Options

-- Options of the HTTP layer; every other key is a TLS option for tls.config.
local http_options = {
  url = true, method = true, headers = true, body = true, source = true, sink = true,
  step = true, redirect = true, max_redirects = true, timeout = true,
  connect_timeout = true, handshake_timeout = true, total_timeout = true,
  proxy = true, no_proxy = true, keepalive = true, insecure_http = true,
  max_header_size = true, max_headers = true, max_body = true, progress = true,
  retry_non_idempotent = true, transport = true,
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
    if type(v) == "number" then v = tostring(v) end
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
    return (tostring(s):gsub("[^%w%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = esc(k) .. "=" .. esc(t[k]) end
  return table.concat(parts, "&")
end

--- Connections

-- The TLS config for this call's connections, built on first need through
-- the library's own config path (tls.config_for: cached there when the
-- options name no file and hold no secret, as for tls.connect); a request
-- sent on a pooled connection builds none.
local function config_of(st)
  if st.cfg then return st.cfg end
  local ok, cfg, err = pcall(tls.config_for, st.tls_options)
  if not ok then
    -- misuse (an unknown option, a wrong type) surfaces at the first connection
    error("tls.https: " .. tostring(cfg):gsub("^[^\n]-:%d+: ", ""):gsub("^tls%.config_for: ", ""), 0)
  end
  if not cfg then return nil, err end
  st.cfg = cfg
  return cfg
end

-- (after config_of has built st.cfg)
local function tls_options(st, u, timeout)
  return { config = st.cfg, servername = st.servername_for(u), policy = st.policy, timeout = timeout }
end

-- A CONNECT tunnel through proxy pu to u, then TLS over it: conn | nil, err
local function tunnel(u, pu, st, ct, ht)
  local socket, serr = need_socket("CONNECT proxies")
  if not socket then return nil, "proxy: " .. serr end
  local s = socket.tcp()
  s:settimeout(ct)
  local ok, err = s:connect(pu.host, pu.port)
  if not ok then
    s:close()
    if err == "timeout" then return nil, "timeout" end
    return nil, ("proxy: cannot connect to %s port %d: %s"):format(pu.host, pu.port, tostring(err))
  end
  s:setoption("tcp-nodelay", true)
  local t = limit(st, st.timeout)
  if not t then s:close(); return nil, "timeout" end
  s:settimeout(t)
  ok, err = proxies.send_connect(s, u, pu, https.USERAGENT)
  if ok then ok, err = proxies.read_connect_answer(reader.new(s, st.timeout, st.deadline, now), u, pu, st) end
  if not ok then s:close(); return nil, err end
  local conn
  conn, err = tls.wrap(s, tls_options(st, u, ht))
  if not conn then s:close(); return nil, err end
  ok, err = conn:handshake()
  if not ok then shut(conn); return nil, err end
  return conn
end

-- Plain TCP for an http:// URL (insecure_http): sock | nil, err
local function plain(u, ct)
  local socket, serr = need_socket("plain http URLs (insecure_http)")
  if not socket then return nil, serr end
  local sock = socket.tcp()
  sock:settimeout(ct)
  local ok, err = sock:connect(u.host, u.port)
  if not ok then
    sock:close()
    if err == "timeout" then return nil, "timeout" end
    return nil, ("cannot connect to %s port %d: %s"):format(u.host, u.port, tostring(err))
  end
  sock:setoption("tcp-nodelay", true)
  return sock
end

-- TLS through tls.over on a transport of st.transport's kind (or made by
-- the caller's function): conn | nil, err
local function open_over(u, st, ct, ht)
  local t, err
  if type(st.transport) == "function" then
    t, err = st.transport(u.host, u.port, { timeout = ct })
  else
    t, err = tls.transport.connect(st.transport, u.host, u.port, ct)
  end
  if not t then return nil, err end
  local conn
  conn, err = tls.over(t, tls_options(st, u, st.timeout))
  if not conn then
    pcall(t.close, t)
    return nil, err
  end
  local ok
  ok, err = conn:handshake(ht)
  if not ok then shut(conn); return nil, err end
  -- a cosocket ends with its request: such conns are never pooled
  conn.request_bound = st.transport == "ngx"
  return conn
end

-- The connection step: a new connection for URL u (through proxy pu, or
-- none), ready for HTTP/1.1: conn | nil, err. Everything else reads and
-- writes through conn:send/receive/settimeout/close (and conn:info when
-- there), so another transport plugs in here.
local function open(u, pu, st)
  local ct, ht = limit(st, st.connect_timeout), limit(st, st.handshake_timeout)
  if not ct or not ht then return nil, "timeout" end
  if st.transport ~= "socket" and (pu or u.scheme == "http") then
    return nil, (pu and "proxy: proxies" or "plain http URLs") .. " work only with "
      .. "transport = \"socket\" (blocking sockets), not with transport = "
      .. (type(st.transport) == "string" and ("\"" .. st.transport .. "\"") or "a function")
  end
  if u.scheme == "http" then return plain(u, ct) end
  -- the config first: nothing is open yet if it raises
  local cfg, cerr = config_of(st)
  if not cfg then return nil, cerr end
  local conn, err
  if pu then
    conn, err = tunnel(u, pu, st, ct, ht)
  elseif st.transport ~= "socket" then
    conn, err = open_over(u, st, ct, ht)
  else
    local o = tls_options(st, u, st.timeout)
    o.connect_timeout, o.handshake_timeout = ct, ht
    conn, err = tls.connect(u.host, u.port, o)
  end
  if not conn then return nil, err end
  local info = conn:info()
  if info and info.alpn and info.alpn ~= "http/1.1" then
    shut(conn)
    return nil, "alpn: the server chose '" .. info.alpn .. "'; tls.https speaks http/1.1 only"
  end
  return conn
end

--- Requests

local function send_all(conn, st, data)
  local i, n = 1, #data
  while i <= n do
    local t = limit(st, st.timeout)
    if not t then return nil, "timeout" end
    conn:settimeout(t)
    local j = math.min(n, i + BLOCK - 1)
    local last, err = conn:send(data, i, j)
    if not last then return nil, err end
    i = last + 1
  end
  return true
end

local function build_head(st, hop)
  local u = hop.url
  local list = hop.headers
  local lines = { hop.method .. " " .. u.target .. " HTTP/1.1" }
  local function add(name, value) lines[#lines + 1] = name .. ": " .. value end
  if not has_header(list, "host") then add("Host", urlmod.authority(u)) end
  if not has_header(list, "user-agent") then add("User-Agent", https.USERAGENT) end
  if u.user and not has_header(list, "authorization") then
    local b64 = require "tls.base64"
    add("Authorization", "Basic " .. b64.encode(u.user .. ":" .. (u.password or "")))
  end
  if not st.keepalive and not has_header(list, "connection") then add("Connection", "close") end
  for _, l in ipairs(list) do
    local lname = l[1]:lower()
    if lname ~= "content-length" and lname ~= "transfer-encoding" then add(l[1], l[2]) end
  end
  if hop.body then
    add("Content-Length", tostring(#hop.body))
  elseif hop.source then
    if hop.length then add("Content-Length", tostring(hop.length))
    else add("Transfer-Encoding", "chunked") end
  elseif hop.method == "POST" or hop.method == "PUT" or hop.method == "PATCH" then
    add("Content-Length", "0")
  end
  lines[#lines + 1] = "\r\n"
  return table.concat(lines, "\r\n")
end

local function send_request(conn, st, hop)
  local head = build_head(st, hop)
  if hop.body and #hop.body <= BLOCK then
    return send_all(conn, st, head .. hop.body)
  end
  local ok, err = send_all(conn, st, head)
  if not ok then return nil, err end
  if hop.body then return send_all(conn, st, hop.body) end
  if not hop.source then return true end
  local sent = 0
  while true do
    local chunk, serr = hop.source()
    if chunk == nil then
      if serr ~= nil then return nil, "source: " .. tostring(serr), true end
      break
    end
    if type(chunk) ~= "string" then
      return nil, "source: produced a " .. type(chunk) .. " instead of a string", true
    end
    if #chunk > 0 then
      sent = sent + #chunk
      if hop.length then
        if sent > hop.length then
          return nil, ("source: produced more than the Content-Length of %d bytes"):format(hop.length), true
        end
        ok, err = send_all(conn, st, chunk)
      else
        ok, err = send_all(conn, st, ("%x\r\n"):format(#chunk) .. chunk .. "\r\n")
      end
      if not ok then return nil, err end
    end
  end
  if hop.length then
    if sent ~= hop.length then
      return nil, ("source: produced %d bytes but Content-Length is %d"):format(sent, hop.length), true
    end
    return true
  end
  return send_all(conn, st, "0\r\n\r\n")
end

local redirect_codes = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- The next hop for a redirect response: hop | nil (do not follow) | nil, err
local function next_hop(st, hop, res)
  if not st.redirect or not redirect_codes[res.status] then return nil end
  local loc = res.headers.location
  if not loc or loc == "" then return nil end
  local nu, err = urlmod.resolve(hop.url, loc)
  if not nu then return nil, "redirect: bad Location " .. quote(loc) .. ": " .. err end
  if hop.url.scheme == "https" and nu.scheme == "http" and not st.insecure_http then
    return nil, "redirect: refusing to follow a redirect from https to "
      .. urlmod.tostring(nu) .. " (set insecure_http = true to allow it)"
  end
  local method, body, source, length = hop.method, hop.body, hop.source, hop.length
  local list = hop.headers
  if (res.status == 303 and method ~= "HEAD")
    or ((res.status == 301 or res.status == 302) and method == "POST") then
    method, body, source, length = "GET", nil, nil, nil
    list = without_headers(list, { ["content-type"] = true, ["content-length"] = true,
      ["transfer-encoding"] = true })
  end
  if source then return nil end   -- a stream cannot be sent twice: hand back the 3xx
  if st.redirects >= st.max_redirects then
    return nil, ("too many redirects (more than %d, option max_redirects); the last went to %s")
      :format(st.max_redirects, urlmod.tostring(nu))
  end
  local u = hop.url
  if nu.scheme ~= u.scheme or nu.host ~= u.host or nu.port ~= u.port then
    -- credentials stay with the origin they were given for
    list = without_headers(list, { authorization = true, cookie = true })
  end
  return { url = nu, method = method, body = body, source = source, length = length, headers = list }
end

local function pool_key(st, u, pu)
  local proxy = pu and (urlmod.tostring(pu) .. "@" .. tostring(pu.user) .. ":" .. tostring(pu.password)) or ""
  return u.scheme .. "|" .. u.host .. "|" .. u.port .. "|" .. proxy .. "|" .. st.tls_key
    .. "|" .. (st.servername_for(u) or "") .. "|" .. id_of(st.policy)
    .. "|" .. (type(st.transport) == "string" and st.transport or id_of(st.transport))
end

-- One request and its response on one connection.
-- -> res | nil, err, retry (a reused connection the peer had closed)
local function exchange_on(conn, reused, st, hop, key)
  local ok, err, from_source = send_request(conn, st, hop)
  if not ok then
    shut(conn)
    return nil, err, reused and not from_source and not hop.source and ended(err)
  end
  local r = reader.new(conn, st.timeout, st.deadline, now)
  local res, nothing
  res, err, nothing = response.read_head(r, st)
  if not res then
    shut(conn)
    return nil, err, reused and nothing and not hop.source
  end
  res.url = urlmod.tostring(hop.url)
  if conn.info then res.tls = conn:info() end
  local follow
  follow, err = next_hop(st, hop, res)
  if err then shut(conn); return nil, err end
  local state = { received = 0, res = res }
  if follow then
    -- dropped, but bounded all the same: an endless redirect body is no answer
    state.sink, state.max_body = function() return 1 end, st.buffered_max_body
  else
    state.sink, state.progress, state.max_body = st.sink, st.progress, st.max_body
  end
  local reusable
  ok, reusable = response.read_body(r, st, res, hop.method, state)
  if not ok then shut(conn); return nil, reusable end
  if not follow then
    ok, err = response.deliver(state, nil)
    if not ok then shut(conn); return nil, err end
  end
  local c = (res.headers.connection or ""):lower()
  local keep = reusable and st.keepalive and r:buffered() == 0
    and ((res.version == "1.1" and not c:find("close", 1, true))
      or (res.version == "1.0" and c:find("keep-alive", 1, true) ~= nil))
  if keep and not conn.request_bound then the_pool:put(key, conn) else shut(conn) end
  res.redirect = follow
  return res
end

-- Methods that may be sent twice (RFC 9110, 9.2.2): a request on a reused
-- connection that got no answer is re-sent only for these, since the server
-- may have acted on it before it closed.
local idempotent = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }

local function exchange(st, hop)
  local u = hop.url
  local pu, err = proxies.for_url(u, st.proxy, st.no_proxy)
  if err then return nil, err end
  local key = pool_key(st, u, pu)
  local stats = the_pool.stats
  local conn = st.keepalive and the_pool:get(key) or nil
  local reused = conn ~= nil
  if not conn then
    conn, err = open(u, pu, st)
    if not conn then return nil, err end
    stats.connections_opened = stats.connections_opened + 1
  end
  stats.requests = stats.requests + 1
  local res, retry
  res, err, retry = exchange_on(conn, reused, st, hop, key)
  if retry and not (idempotent[hop.method] or st.retry_non_idempotent) then
    return nil, err .. (" (on a reused connection; a %s is not sent twice unless "
      .. "retry_non_idempotent = true)"):format(hop.method)
  end
  if not res and retry then
    -- the pooled connection had been closed by the server: once more, fresh
    stats.retried = stats.retried + 1
    conn, err = open(u, pu, st)
    if not conn then return nil, err end
    stats.connections_opened = stats.connections_opened + 1
    res, err = exchange_on(conn, false, st, hop, key)
  end
  return res, err
end

local function perform(st)
  local hop = st.first
  while true do
    if st.deadline and now() >= st.deadline then return nil, "timeout" end
    local res, err = exchange(st, hop)
    if not res then return nil, err end
    if not res.redirect then return res end
    hop = res.redirect
    st.redirects = st.redirects + 1
  end
end

local timeout_options = { "timeout", "connect_timeout", "handshake_timeout", "total_timeout" }

-- The steps of prepare(). Each raises on misuse at `level` (counted from
-- fail's caller) and returns nil, message for failures of the world.

-- The caller's options over https.defaults.
local function with_defaults(o)
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
  for _, name in ipairs { "redirect", "keepalive", "insecure_http", "retry_non_idempotent" } do
    check_type(o, name, "boolean", level)
  end
  check_type(o, "proxy", "string,boolean", level)
  if o.proxy == true then fail(level, "option 'proxy' must be a URL string or false, got true") end
  check_type(o, "no_proxy", "string", level)
  for _, name in ipairs { "sink", "source", "progress" } do check_type(o, name, "function", level) end
  check_type(o, "body", "string,function,table", level)
  check_type(o, "servername", "string", level)
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
local function limits_of(o, level)
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
  if topts.alpn == nil then topts.alpn = { "http/1.1" } end
  local keyed = topts
  for name in pairs(secret_options) do
    if type(topts[name]) == "string" then
      if keyed == topts then
        keyed = {}
        for k, v in pairs(topts) do keyed[k] = v end
      end
      keyed[name] = "sha256:" .. require("tls.sha256").hex(topts[name])
    end
  end
  return { options = topts, key = table.concat(serialize(keyed, {})),
    insecure = topts.insecure_noverifycert }
end

-- The request body: body, source, length (of a source, from the caller's
-- Content-Length); adds Content-Type to list for a form.
local function body_of(o, list, level)
  local body, source, length = o.body, o.source, nil
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
      if not length then fail(level, "header 'content-length' must be a byte count, got %s", quote(cl)) end
      length = compat.tointeger(tonumber(length))
    end
  end
  return body, source, length
end

-- Validate options and build the request state. Raises on misuse (wrong
-- types, bad headers); returns nil, message for bad URLs. TLS options are
-- checked when the first connection is made (see config_of).
local function prepare(o, level)
  level = level + 2   -- fail(level) must reach past fail, prepare and the public function
  if type(o) ~= "table" then fail(level, "options must be a table, got %s", type(o)) end
  o = with_defaults(o)
  check_http_options(o, level + 1)
  local u, err = urlmod.parse(o.url)
  if not u then return nil, err end
  if u.scheme == "http" and not o.insecure_http then
    return nil, "bad URL '" .. o.url .. "': plain http is refused (tls.https is an HTTPS client; "
      .. "set insecure_http = true to allow it)"
  end
  local method = check_type(o, "method", "string", level) or "GET"
  if not method:match(token) then fail(level, "method %s is not a valid HTTP token", quote(method)) end
  method = method:upper()
  local list = check_headers(o.headers, level)
  local body, source, length = body_of(o, list, level + 1)
  local t = tls_of(o, level + 1)
  local policy = o.policy
  if policy == nil and t.insecure then policy = false end
  local timeout = o.timeout or https.TIMEOUT
  local first_host, servername = u.host, o.servername
  local st = limits_of(o, level + 1)
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
  -- servername overrides the name only for the host it was given for
  st.servername_for = function(x)
    if servername and x.host == first_host then return servername end
    return x.host
  end
  st.first = { url = u, method = method, headers = list, body = body, source = source, length = length }
  return st
end

--- Public API

local function collecting()
  local parts = {}
  return parts, function(chunk)
    if chunk then parts[#parts + 1] = chunk end
    return 1
  end
end

-- https.fetch(opts) -> { status, reason, headers, body, url, tls, ... } | nil, err
local function fetch(opts, level)
  local st, err = prepare(opts, level + 1)
  if not st then return nil, err end
  local parts
  if not st.sink then parts, st.sink = collecting() end
  local res
  res, err = perform(st)
  if not res then return nil, err end
  if parts then res.body = table.concat(parts) end
  return res
end

-- (not tail calls: the frames must stay for error levels)
function https.fetch(opts)
  local res, err = fetch(opts, 1)
  return res, err
end

local function merged(o, extra)
  local t = {}
  if o ~= nil then
    if type(o) ~= "table" then error("tls.https: options must be a table, got " .. type(o), 3) end
    for k, v in pairs(o) do t[k] = v end
  end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

function https.get(url, opts)
  local o = merged(opts, { url = url })
  o.method = o.method or "GET"
  local res, err = fetch(o, 1)
  return res, err
end

function https.post(url, body, opts)
  local o = merged(opts, { url = url, body = body, method = "POST" })
  local res, err = fetch(o, 1)
  return res, err
end

-- LuaSocket/LuaSec form:
--   request(url [, body]) -> body, code, headers, status_line | nil, err
--   request{url=, sink=, method=, headers=, source=, redirect=, ...}
--     -> 1, code, headers, status_line | nil, err
function https.request(reqt, body)
  if type(reqt) == "string" then
    local o = { url = reqt }
    if body ~= nil then
      if type(body) ~= "string" then
        error("tls.https.request: body must be a string, got " .. type(body), 2)
      end
      o.method, o.body = "POST", body
      o.headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    end
    local st, err = prepare(o, 1)
    if not st then return nil, err end
    local parts
    parts, st.sink = collecting()
    local res
    res, err = perform(st)
    if not res then return nil, err end
    return table.concat(parts), res.status, res.headers, res.status_line
  end
  if type(reqt) ~= "table" then
    error("tls.https.request: expected a URL string or a request table, got " .. type(reqt), 2)
  end
  local o = {}
  for k, v in pairs(reqt) do o[k] = v end
  local st, err = prepare(o, 1)
  if not st then return nil, err end
  -- no sink: the body is dropped, within max_body as if it were kept
  if not st.sink then st.sink = function() return 1 end end
  local res
  res, err = perform(st)
  if not res then return nil, err end
  return 1, res.status, res.headers, res.status_line
end

--- The pool

-- https.pool_stats() -> { connections_opened, reused, requests, retried,
--   expired, discarded, idle, max_per_host, max_idle, idle_timeout }
function https.pool_stats()
  return the_pool:snapshot()
end

-- https.pool_options{ max_per_host =, max_idle =, idle_timeout = }
function https.pool_options(o)
  if type(o) ~= "table" then error("tls.https.pool_options: expected a table, got " .. type(o), 2) end
  the_pool:configure(o)
  return https.pool_stats()
end

-- https.pool_clear(): close every idle connection (counters stay).
function https.pool_clear()
  the_pool:clear()
end

return https
