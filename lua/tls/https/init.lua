-- tls.https: an HTTPS client (HTTP/1.1, and HTTP/2 when the server offers
-- it through ALPN) on lua-tls, in pure Lua.
--
--   https.request(url [, body])  -> body, code, headers, status_line  (LuaSocket/LuaSec)
--   https.request{url=, ...}     -> 1, code, headers, status_line     (ltn12 source/sink)
--   https.get(url [, opts]) / https.post(url, body [, opts]) / https.fetch(opts)
--                                -> { status, reason, headers, body, url, tls } | nil, err
--   https.request_all{ url or opts, ... } -> responses, errors (HTTP/2: one
--                                connection per origin carries them at once)
--
-- Keep-alive connections wait in one bounded pool (tls.https.pool); TLS
-- configs come from the library's own path (tls.config_for), only when a new
-- connection is made. doc/https.md lists every option and error.

local tls = require "tls"
local compat = require "tls.compat"
local urlmod = require "tls.https.url"
local reader = require "tls.https.reader"
local response = require "tls.https.response"
local pool_mod = require "tls.https.pool"
local proxies = require "tls.https.proxy"
local options = require "tls.https.options"
local h2 = require "tls.h2.conn"
local decode = require "tls.https.decode"
local stream = require "tls.https.stream"
local json = require "tls.https.json"

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
-- one HTTP/2 connection (tls.h2.conn session) per pool key
local h2_sessions = {}

local BLOCK = 65536

--- Small helpers

local id_of, has_header, without_headers = options.id_of, options.has_header, options.without_headers

local quote, ended = response.quote, response.ended

local function shut(conn)
  if conn then
    conn:settimeout(0)   -- one close_notify attempt, never a wait
    conn:close()
  end
end

-- conn:handshake(...), but a policy that raises shuts the conn (and its
-- transport) before the error goes on: nothing is left to the collector.
local function handshake_or_shut(conn, ...)
  local done, ok, err = compat.pcall(conn.handshake, conn, ...)
  if not done then
    shut(conn)
    error(ok, 0)
  end
  return ok, err
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

-- A LuaSocket TCP connection for `what` (proxies, plain http), within ct:
-- sock | nil, err, where err starts with prefix unless it is "timeout".
local function tcp_connect(host, port, ct, what, prefix)
  local socket, serr = need_socket(what)
  if not socket then return nil, prefix .. serr end
  local sock = socket.tcp()
  sock:settimeout(ct)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    if err == "timeout" then return nil, "timeout" end
    return nil, ("%scannot connect to %s port %d: %s"):format(prefix, host, port, tostring(err))
  end
  sock:setoption("tcp-nodelay", true)
  return sock
end

-- A CONNECT tunnel through proxy pu to u, then TLS over it: conn | nil, err
local function tunnel(u, pu, st, ct, ht)
  local s, err = tcp_connect(pu.host, pu.port, ct, "CONNECT proxies", "proxy: ")
  if not s then return nil, err end
  local ok
  local t = limit(st, st.timeout)
  if not t then s:close(); return nil, "timeout" end
  s:settimeout(t)
  ok, err = proxies.send_connect(s, u, pu, https.USERAGENT)
  if ok then ok, err = proxies.read_connect_answer(reader.new(s, st.timeout, st.deadline, now), u, pu, st) end
  if not ok then s:close(); return nil, err end
  local conn
  conn, err = tls.wrap(s, tls_options(st, u, ht))
  if not conn then s:close(); return nil, err end
  ok, err = handshake_or_shut(conn)
  if not ok then shut(conn); return nil, err end
  return conn
end

-- Plain TCP for an http:// URL (insecure_http): sock | nil, err
local function plain(u, ct)
  local sock, err = tcp_connect(u.host, u.port, ct, "plain http URLs (insecure_http)", "")
  if not sock then return nil, err end
  return sock
end

-- TLS through tls.over on a transport of st.transport's kind (or made by
-- the caller's function): conn | nil, err
local function open_over(u, st, ct, ht)
  local t, err
  if type(st.transport) == "function" then
    t, err = st.transport(u.host, u.port, { timeout = ct })
    if not t and err == nil then
      -- (a failure must say why: nil, nil would reach the caller as is)
      err = "connect: the transport function returned no transport and no error"
    end
  else
    t, err = tls.transport.connect(st.transport, u.host, u.port, ct)
  end
  if not t then return nil, err end
  local conn
  conn, err = tls.over(t, tls_options(st, u, st.timeout))
  if not conn then
    compat.pcall(t.close, t)
    return nil, err
  end
  local ok
  ok, err = handshake_or_shut(conn, ht)
  if not ok then shut(conn); return nil, err end
  -- a cosocket ends with its request: such conns are never pooled
  conn.request_bound = st.transport == "ngx"
  return conn
end

-- The connection step: a new connection for URL u (through proxy pu, or
-- none): conn, is_h2 (the server agreed to HTTP/2) | nil, err. Everything else reads and
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
  local alpn = info and info.alpn
  if alpn == "h2" and st.http_version ~= "1.1" then
    return conn, true
  elseif st.http_version == "2" then
    shut(conn)
    return nil, "alpn: the server did not agree to HTTP/2 (it chose "
      .. (alpn and ("'" .. alpn .. "'") or "no protocol") .. "; http_version = \"2\" requires h2)"
  elseif alpn and alpn ~= "http/1.1" then
    shut(conn)
    return nil, "alpn: the server chose '" .. alpn .. "'; tls.https speaks h2 and http/1.1 only"
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
  if st.accept_encoding then add("Accept-Encoding", decode.ACCEPT) end
  local jar = st.cookies and not has_header(list, "cookie") and st.cookies:header_for(u)
  if jar then add("Cookie", jar) end
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
  local proxy = pu and (urlmod.tostring(pu) .. "@" .. tostring(pu.user) .. ":"
    .. (pu.password and options.digest(pu.password) or "")) or ""
  return u.scheme .. "|" .. u.host .. "|" .. u.port .. "|" .. proxy .. "|" .. st.tls_key
    .. "|" .. (st.servername_for(u) or "") .. "|" .. id_of(st.policy)
    .. "|" .. (type(st.transport) == "string" and st.transport or id_of(st.transport))
    .. "|" .. (st.http_version or "")
end

-- A content-coded body the caller gets is decoded on its way to the sink
-- (res.decoded names the coding; the headers stay as sent).
local function decoding(st, hop, res, state)
  if not st.decode or hop.method == "HEAD" or res.status == 204 or res.status == 304 then return end
  local coding = decode.coding(res)
  if not coding then return end
  state.decoder, state.decode_piece = decode.new(coding), decode.PIECE
  res.decoded = coding
end

-- What a response head leads to, for either protocol: its cookies are
-- stored, and the body goes to the caller (decoded when coded) or, for a
-- redirect that is followed, is dropped within bounds.
-- -> follow (the next hop, or false), state | nil, err
local function on_head(st, hop, res, info)
  res.url = urlmod.tostring(hop.url)
  res.tls = info
  if st.cookies then st.cookies:store(hop.url, res.headers:get_all("set-cookie")) end
  local follow, err = next_hop(st, hop, res)
  if err then return nil, err end
  local state = { received = 0, res = res }
  if follow then
    -- dropped, but bounded all the same: an endless redirect body is no answer
    state.sink, state.max_body = function() return 1 end, st.buffered_max_body
    state.reading = "dropped"
  else
    state.sink, state.progress, state.max_body = st.sink, st.progress, st.max_body
    state.reading = st.stream and "stream" or st.sink_given and "sink" or "kept"
    decoding(st, hop, res, state)
    if st.on_head then st.on_head(res) end
  end
  return follow or false, state
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
  local follow, state = on_head(st, hop, res, conn.info and conn:info() or nil)
  if follow == nil then shut(conn); return nil, state end
  if follow == false then follow = nil end
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

--- HTTP/2

-- Headers that belong to one HTTP/1.1 connection and must not appear in
-- HTTP/2 (RFC 9113, 8.2.2); Host becomes :authority.
local h1_only = { connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  ["transfer-encoding"] = true, upgrade = true, host = true, ["content-length"] = true }
-- never put into the HPACK table (RFC 7541, 7.1.3)
local sensitive = { authorization = true, ["proxy-authorization"] = true, cookie = true }

local function h2_headers(st, hop)
  local u, list = hop.url, hop.headers
  local out = {
    { ":method", hop.method }, { ":scheme", "https" },
    { ":authority", has_header(list, "host") or urlmod.authority(u) }, { ":path", u.target },
  }
  local function add(name, value)
    out[#out + 1] = { name, value, sensitive[name] or (name == "cookie" and #value < 20) }
  end
  if not has_header(list, "user-agent") then add("user-agent", https.USERAGENT) end
  if st.accept_encoding then add("accept-encoding", decode.ACCEPT) end
  local jar = st.cookies and not has_header(list, "cookie") and st.cookies:header_for(u)
  if jar then add("cookie", jar) end
  if u.user and not has_header(list, "authorization") then
    local b64 = require "tls.base64"
    add("authorization", "Basic " .. b64.encode(u.user .. ":" .. (u.password or "")))
  end
  for _, l in ipairs(list) do
    local lname = l[1]:lower()
    if not h1_only[lname] and (lname ~= "te" or l[2]:lower() == "trailers") then add(lname, l[2]) end
  end
  if hop.body then
    add("content-length", tostring(#hop.body))
  elseif hop.source then
    if hop.length then add("content-length", tostring(hop.length)) end
  elseif hop.method == "POST" or hop.method == "PUT" or hop.method == "PATCH" then
    add("content-length", "0")
  end
  return out
end

-- The request for tls.h2.conn: its on_head decides where the body goes
-- (the caller's sink, or dropped for a redirect that is followed).
local function h2_request(st, hop, info)
  local req = { headers = h2_headers(st, hop), body = hop.body, source = hop.source,
    length = hop.length, method = hop.method }
  req.on_head = function(res)
    local follow, state = on_head(st, hop, res, info)
    if follow == nil then return nil, state end
    req.follow = follow or nil
    return state
  end
  return req
end

-- A new HTTP/2 session on conn (which negotiated h2), kept for key.
local function new_session(conn, st, key)
  local sess = h2.new(conn, { now = now, timeout = st.timeout, max_header_size = st.max_header_size })
  sess.info = conn:info()
  sess.key = key
  sess.busy = 0
  if st.transport == "cqueues" then
    -- coroutines of one controller share the session (see tls.h2.conn run)
    sess.cond = require("cqueues.condition").new()
  end
  local old = h2_sessions[key]
  if st.keepalive and not conn.request_bound and not (old and old:usable() and not old.alone) then
    -- (an old one held by a pull-style response leaves the pool: it closes
    -- when that response ends, and the pool goes on with this one)
    h2_sessions[key] = sess
  end
  return sess
end

-- The pooled HTTP/2 session for key, if one is still usable. Under cqueues
-- the coroutines share it (their requests multiplex); elsewhere a session
-- in use by another caller is not shared (that caller gets its own).
-- alone (a pull-style response): only a session nobody uses, and nobody
-- joins it while the response is open: its sink yields to its reader from
-- inside the session's driver, so the driver must be the reader's own
-- request (no other caller's frames delivered in that coroutine, and no
-- caller waiting on a driver parked until the reader reads on).
local function pooled_session(key, alone)
  local sess = h2_sessions[key]
  if not sess then return nil end
  if sess.busy > 0 then
    -- (nor from a callback of the coroutine that drives it, a sink making
    -- a request: that would drive it again from the middle of a frame and
    -- hand the rest of the outer body to the same sink, re-entered)
    if sess.cond and not alone and not sess.alone and sess:usable()
        and sess.driver ~= (coroutine.running() or "main") then
      return sess
    end
    return nil
  end
  sess:poll()
  if sess:usable() then return sess end
  h2_sessions[key] = nil
  sess:close()   -- (nobody uses it: busy is 0)
  return nil
end

-- After a run: a session that can take no more requests leaves the pool
-- (and closes once no caller uses it: streams still open then belong to
-- requests their callers gave up on); keepalive = false closes it.
local function after_run(sess, st)
  if not sess:usable() or not st.keepalive or h2_sessions[sess.key] ~= sess then
    if h2_sessions[sess.key] == sess then h2_sessions[sess.key] = nil end
    if sess.busy == 0 then sess:close() end
  end
end

-- Requests sent on a session: each gets .res or .err (and .retry / .unanswered)
local function run_on_session(sess, st_of, hops)
  local reqs = {}
  for i, hop in ipairs(hops) do
    reqs[i] = h2_request(st_of[i], hop, sess.info)
  end
  sess.timeout = st_of[1].timeout
  local deadline
  for i = 1, #hops do
    local d = st_of[i].deadline
    if d and (not deadline or d > deadline) then deadline = d end
  end
  sess.busy = sess.busy + 1
  sess.alone = st_of[1].stream or nil   -- (see pooled_session)
  local ok, err = compat.pcall(sess.run, sess, reqs, deadline)  -- I/O may yield (cqueues), on 5.1 too
  sess.busy = sess.busy - 1
  sess.alone = nil
  if not ok then
    -- a callback raised (a sink, a source, progress): the session's state
    -- is unknown, so it ends (failing any other caller's requests on it);
    -- the error goes on to the caller
    if h2_sessions[sess.key] == sess then h2_sessions[sess.key] = nil end
    sess:abort("http2: the connection was closed after a callback raised an error: " .. tostring(err))
    error(err, 0)
  end
  for i, req in ipairs(reqs) do
    if req.res then req.res.redirect = req.follow end
  end
  return reqs
end

-- Methods that may be sent twice (RFC 9110, 9.2.2): a request on a reused
-- connection that got no answer is re-sent only for these, since the server
-- may have acted on it before it closed.
local idempotent = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }

-- One request on an HTTP/2 session: res | nil, err, retry (send it again on
-- a new connection: the server did not process it)
local function exchange_h2(sess, reused, st, hop)
  local req = run_on_session(sess, { st }, { hop })[1]
  after_run(sess, st)
  if req.res then return req.res end
  local again = not hop.source and (req.retry
    or (reused and req.unanswered and (idempotent[hop.method] or st.retry_non_idempotent)))
  return nil, req.err, again
end

-- A connection for u: an HTTP/2 session, or an HTTP/1.1 conn from the pool
-- or new. -> sess | nil, conn, reused | nil, nil, nil, err
-- Under cqueues, the first connection to an origin is opened by one
-- coroutine while the others that want it wait (key -> condition): if it
-- speaks HTTP/2 they all share it. Origins found to speak HTTP/1.1 are not
-- waited for again (each coroutine opens its own keep-alive connection).
local opening, h1_origins = {}, {}

local function open_counted(u, pu, st)
  local conn, is_h2 = open(u, pu, st)
  if conn then
    local stats = the_pool.stats
    stats.connections_opened = stats.connections_opened + 1
  end
  return conn, is_h2
end

-- A connection for u: an HTTP/2 session, or an HTTP/1.1 conn from the pool
-- or new. -> sess | nil, conn, reused | nil, nil, nil, err
local function connection_for(st, u, pu, key)
  local sess = st.keepalive and pooled_session(key, st.stream)
  if sess then return sess, nil, true end
  local conn = st.keepalive and the_pool:get(key) or nil
  if conn then return nil, conn, true end
  local shared = st.keepalive and st.transport == "cqueues" and not h1_origins[key]
  if shared then
    while opening[key] do opening[key]:wait(st.timeout) end
    sess = pooled_session(key, st.stream)
    if sess then return sess, nil, true end
    opening[key] = require("cqueues.condition").new()
  end
  local ok, is_h2
  ok, conn, is_h2 = compat.pcall(open_counted, u, pu, st)  -- I/O may yield (cqueues), on 5.1 too
  if shared then
    opening[key]:signal()
    opening[key] = nil
  end
  if not ok then error(conn, 0) end
  if not conn then return nil, nil, nil, is_h2 end
  if is_h2 then return new_session(conn, st, key), nil, false end
  if shared then h1_origins[key] = true end
  return nil, conn, false
end

local function exchange(st, hop)
  local u = hop.url
  local pu, err = proxies.for_url(u, st.proxy, st.no_proxy)
  if err then return nil, err end
  local key = pool_key(st, u, pu)
  local stats = the_pool.stats
  local sess, conn, reused
  sess, conn, reused, err = connection_for(st, u, pu, key)
  if not sess and not conn then return nil, err end
  stats.requests = stats.requests + 1
  local res, retry
  if sess then
    res, err, retry = exchange_h2(sess, reused, st, hop)
    if not res and retry then
      stats.retried = stats.retried + 1
      sess, conn, reused, err = connection_for(st, u, pu, key)
      if not sess and not conn then return nil, err end
      if sess then
        res, err = exchange_h2(sess, reused, st, hop)
        return res, err
      end
      res, err = exchange_on(conn, reused, st, hop, key)
      return res, err
    end
    return res, err
  end
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
    if err == true then
      res, err = exchange_h2(new_session(conn, st, key), false, st, hop)
      return res, err
    end
    res, err = exchange_on(conn, false, st, hop, key)
  end
  return res, err
end

-- Follows redirects from hop (st.first by default) to the final response.
local function perform(st, hop)
  hop = hop or st.first
  while true do
    if st.deadline and now() >= st.deadline then return nil, "timeout" end
    local res, err = exchange(st, hop)
    if not res then return nil, err end
    if not res.redirect then return res end
    hop = res.redirect
    st.redirects = st.redirects + 1
  end
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
-- res:json() -> the body decoded as JSON | nil, err (a streamed body is
-- read to its end first)
local function json_method(res)
  local body, err = res.body, nil
  if body == nil and res.read then body, err = res:read("a") end
  if body == nil then return nil, err or "json: the body went to a sink" end
  return json.decode(body)
end

local function fetch(opts, level)
  local st, err = options.prepare(opts, level + 1, https, now)
  if not st then return nil, err end
  local res
  if st.stream then
    res, err = stream.open(st, perform)
    if res then res.json = json_method end
    return res, err
  end
  local parts
  if not st.sink then parts, st.sink = collecting() end
  res, err = perform(st)
  if not res then return nil, err end
  if parts then res.body = table.concat(parts) end
  res.json = json_method
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

-- https.request_all(list [, opts]) -> responses, errors
-- list holds URL strings or option tables (as https.fetch takes); opts are
-- options for all of them (an entry's own options win). responses[i] is
-- the response of list[i] (as https.fetch returns it) or false, and then
-- errors[i] says why. Requests to one origin that speaks HTTP/2 go out at
-- once on its one connection; others go one after another (keep-alive).
function https.request_all(list, opts)
  if type(list) ~= "table" then
    error("tls.https.request_all: expected a list of URLs or option tables, got " .. type(list), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("tls.https.request_all: options must be a table, got " .. type(opts), 2)
  end
  local responses, errors, parts = {}, {}, {}
  local groups, order = {}, {}
  for i = 1, #list do
    local entry = list[i]
    if type(entry) == "string" then entry = { url = entry } end
    if type(entry) ~= "table" then
      error(("tls.https.request_all: entry %d must be a URL or an option table, got %s")
        :format(i, type(entry)), 2)
    end
    local o = merged(opts, entry)
    local st, err = options.prepare(o, 1, https, now)
    if st and st.stream then
      error(("tls.https.request_all: entry %d: stream = true is for one request at a time "
        .. "(https.fetch, get, ...); give the entry a sink instead"):format(i), 2)
    end
    responses[i] = false
    if not st then
      errors[i] = err
    else
      if not st.sink then parts[i], st.sink = collecting() end
      local u = st.first.url
      local pu
      pu, err = proxies.for_url(u, st.proxy, st.no_proxy)
      if err then
        errors[i] = err
      else
        local key = pool_key(st, u, pu)
        local g = groups[key]
        if not g then
          g = { key = key, u = u, pu = pu, items = {} }
          groups[key] = g
          order[#order + 1] = g
        end
        g.items[#g.items + 1] = { i = i, st = st }
      end
    end
  end
  local stats = the_pool.stats
  local function finish(item, res, err)
    if not res then errors[item.i] = err; return end
    if parts[item.i] then res.body = table.concat(parts[item.i]) end
    res.json = json_method
    responses[item.i] = res
  end
  -- the rest of one request, alone: redirects, or a fresh attempt
  local function carry_on(item, hop)
    local res, err = perform(item.st, hop)
    finish(item, res, err)
  end
  for _, g in ipairs(order) do
    local first = g.items[1]
    local sess, conn, reused, err = connection_for(first.st, g.u, g.pu, g.key)
    if not sess and not conn then
      for _, item in ipairs(g.items) do errors[item.i] = err end
    elseif conn then
      -- HTTP/1.1: one after another (the pool keeps the connection between them)
      stats.requests = stats.requests + 1
      local res, retry
      res, err, retry = exchange_on(conn, reused, first.st, first.st.first, g.key)
      if not res and retry then
        carry_on(first, nil)
      elseif res and res.redirect then
        first.st.redirects = first.st.redirects + 1
        carry_on(first, res.redirect)
      else
        finish(first, res, err)
      end
      for k = 2, #g.items do carry_on(g.items[k], nil) end
    else
      local sts, hops = {}, {}
      for k, item in ipairs(g.items) do sts[k], hops[k] = item.st, item.st.first end
      stats.requests = stats.requests + #hops
      local reqs = run_on_session(sess, sts, hops)
      after_run(sess, first.st)
      for k, req in ipairs(reqs) do
        local item, res = g.items[k], req.res
        if res and res.redirect then
          item.st.redirects = item.st.redirects + 1
          carry_on(item, res.redirect)
        elseif res then
          finish(item, res)
        elseif not hops[k].source and (req.retry or (reused and req.unanswered
            and (idempotent[hops[k].method] or item.st.retry_non_idempotent))) then
          stats.retried = stats.retried + 1
          carry_on(item, nil)
        else
          finish(item, nil, req.err)
        end
      end
    end
  end
  return responses, errors
end

function https.post(url, body, opts)
  local o = merged(opts, { url = url, body = body, method = "POST" })
  local res, err = fetch(o, 1)
  return res, err
end

-- https.cookiejar([file]) -> a cookie jar for the cookies option (RFC 6265;
-- see tls.https.cookies), loaded from file when it exists
function https.cookiejar(file)
  if file ~= nil and type(file) ~= "string" then
    error("tls.https.cookiejar: the file must be a string, got " .. type(file), 2)
  end
  return require("tls.https.cookies").new(file)
end

function https.head(url, opts)
  local o = merged(opts, { url = url, method = "HEAD" })
  local res, err = fetch(o, 1)
  return res, err
end

function https.delete(url, opts)
  local o = merged(opts, { url = url, method = "DELETE" })
  local res, err = fetch(o, 1)
  return res, err
end

-- put/patch(url, body [, opts]): body as for post (nil with opts.json)
function https.put(url, body, opts)
  local o = merged(opts, { url = url, body = body, method = "PUT" })
  local res, err = fetch(o, 1)
  return res, err
end

function https.patch(url, body, opts)
  local o = merged(opts, { url = url, body = body, method = "PATCH" })
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
    local st, err = options.prepare(o, 1, https, now)
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
  local st, err = options.prepare(o, 1, https, now)
  if not st then return nil, err end
  if st.stream then
    error("tls.https.request: stream = true is for https.fetch, get, ...; "
      .. "this form takes a sink", 2)
  end
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
  local s = the_pool:snapshot()
  local n = 0
  for _ in pairs(h2_sessions) do n = n + 1 end
  s.h2_connections = n
  return s
end

-- https.pool_options{ max_per_host =, max_idle =, idle_timeout = }
function https.pool_options(o)
  if type(o) ~= "table" then error("tls.https.pool_options: expected a table, got " .. type(o), 2) end
  the_pool:configure(o)
  return https.pool_stats()
end

-- https.pool_clear(): close every idle connection (counters stay). An
-- HTTP/2 connection in use (a request running, a pull-style response
-- open) leaves the pool and closes when its requests end.
function https.pool_clear()
  the_pool:clear()
  for key, sess in pairs(h2_sessions) do
    h2_sessions[key] = nil
    if sess.busy == 0 then sess:close() end
  end
end

return https
