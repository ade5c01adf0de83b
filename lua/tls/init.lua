-- lua-tls: the public face. Connections, listeners and engines come from the
-- C core (tls.core); this file turns option tables into configs, opens
-- sockets, runs the certificate policy after each client handshake, and
-- lazily loads the pure-Lua helpers (tls.x509, tls.policy, tls.https, ...).

local core = require "tls.core"
local compat = require "tls.compat"

local tls = {
  _VERSION = "lua-tls scm",
  core = core,
}

-- Options that belong to a connection rather than to its config.
local conn_options = {
  config = true, servername = true, timeout = true, mode = true,
  policy = true, handshake_timeout = true, backlog = true, buffer_limit = true,
  connect_timeout = true,
}

-- Configs built from options are cached by their values, so a loop over
-- tls.connect(host, port, opts) does not build one per connection (libtls's
-- tls_config_new and tls_config_set_ciphers each make a throwaway OpenSSL
-- context, a large part of a client handshake's cost: doc/performance.md).
-- Only options that hold no secret are cached, and of those that name a file
-- only the CA and CRL files, keyed by the file's stamp as well (a file
-- changed in the last 2 seconds is not cached: core.file_stamp), so a changed
-- file is read again.
local cacheable = {
  ca_path = true, ca = true, protocols = true, ciphers = true, ecdhecurves = true,
  alpn = true, verify_depth = true, ocsp_require_stapling = true, crl = true,
  insecure_noverifycert = true, insecure_noverifyname = true, insecure_noverifytime = true,
}
local stamped = { ca_file = true, crl_file = true }
local config_cache, config_cache_size = {}, 0

local function cache_key(rest)
  local parts, n = nil, 0
  for k, v in pairs(rest) do
    if stamped[k] and type(v) == "string" then
      local stamp = core.file_stamp(v)
      if not stamp then return nil end
      v = v .. "\0" .. stamp
    elseif not cacheable[k] then
      return nil
    end
    -- each value with its length before it: values may hold "\0" and ","
    -- (a ca whose bytes ran on into "\0crl\0string\0..." had the key of
    -- {ca = ..., crl = ...} and was served in its place, CRL unchecked)
    local t = type(v)
    if t == "table" then
      local items = {}
      for i = 1, #v do
        if type(v[i]) ~= "string" then return nil end
        items[i] = #v[i] .. ":" .. v[i]
      end
      v = table.concat(items)
    elseif t ~= "string" and t ~= "number" and t ~= "boolean" then
      return nil
    end
    v = tostring(v)
    parts = parts or {}
    n = n + 1
    parts[n] = k .. "\0" .. t .. "\0" .. #v .. ":" .. v
  end
  if n == 0 then return "" end
  table.sort(parts)
  return table.concat(parts, "\0")
end

-- Split opts into a config (built once here, or the one given as opts.config)
-- and the connection-level options. Raises on misuse, returns nil, msg on
-- failures of the world (unreadable files, mismatched keys).
local function config_of(opts, where)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(where .. ": options must be a table, got " .. type(opts), 3)
  end
  local given = opts.config
  local rest, any = {}, false
  for k, v in pairs(opts) do
    if not conn_options[k] then rest[k] = v; any = true end
  end
  if given ~= nil then
    if any then
      local k = next(rest)
      error(where .. ": give either config = cfg or config options such as '"
        .. tostring(k) .. "', not both", 3)
    end
    if core.type(given) ~= "tls.config" then
      error(where .. ": option 'config' must be a tls.config, got " .. type(given), 3)
    end
    return given
  end
  local key = cache_key(rest)
  local cached = key and config_cache[key]
  -- (a caller's `local cfg <close> = tls.config_for(...)` frees the shared
  -- config: every later caller would get "attempt to use a freed tls config")
  if cached and pcall(cached.has_keypair, cached) then return cached end
  local ok, cfg, err = pcall(core.config, rest)
  if not ok then error((cfg:gsub("^tls%.config", where)), 3) end
  -- (a file that changed while it was read is not cached)
  if key and cfg and cache_key(rest) == key then
    if config_cache_size >= 16 then config_cache, config_cache_size = {}, 0 end
    config_cache[key], config_cache_size = cfg, config_cache_size + 1
  end
  return cfg, err
end

-- One server context per config for tls.wrap and tls.engine: building one
-- re-parses the keypairs, which costs more than the handshake of the engine
-- pair that uses it (doc/performance.md).
local servers = setmetatable({}, { __mode = "k" })
local function server_of(cfg)
  local server = servers[cfg]
  if server then return server end
  local err
  server, err = core.server(cfg)
  if server then servers[cfg] = server end
  return server, err
end

-- Checks of connection-level options, raised at the public function's caller.
local function options_of(opts, where)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(where .. ": options must be a table, got " .. type(opts), 3)
  end
  return opts
end

local function check_timeout(t, where, name)
  local why = core.timeout_problem(t)
  if why then error(where .. ": option '" .. (name or "timeout") .. "' " .. why, 3) end
  return t
end

local function check_policy(p, where)
  if p ~= nil and p ~= false and type(p) ~= "function" and not (getmetatable(p) or {}).__call then
    error(where .. ": option 'policy' must be a function, a tls.policy or false, got " .. type(p), 3)
  end
end

--- Configs

-- tls.config(opts) -> config | nil, message
function tls.config(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("tls.config: options must be a table, got " .. type(opts), 2)
  end
  for k in pairs(opts or {}) do
    if conn_options[k] then
      error("tls.config: option '" .. tostring(k) .. "' belongs to a connection "
        .. "(tls.connect/wrap/listen/engine), not to a config", 2)
    end
  end
  -- misuse is reported at the caller's line, not at this file's
  local ok, cfg, err = pcall(core.config, opts or {})
  if not ok then error(cfg, 2) end
  return cfg, err
end

-- tls.config_for(opts) -> config | nil, message: the config a connection
-- with these options uses, from the same path and cache as tls.connect:
-- opts.config when given, else one built from the config options (options
-- of the connection itself are left out). For helpers such as tls.https
-- that open many connections with one option table.
function tls.config_for(opts)
  local cfg, err = config_of(opts, "tls.config_for")
  return cfg, err
end

--- Certificate policy: runs after a client handshake, before data flows.

local default_policy_loaded, default_policy

-- What verification the options (or the config they name) turned off.
local function insecure_of(opts)
  if opts.config ~= nil then
    local nocert, noname = opts.config:insecure()
    return nocert, noname
  end
  return opts.insecure_noverifycert, opts.insecure_noverifyname
end

local function policy_for(opts, mode)
  -- (opts.policy was checked by check_policy)
  local p = opts.policy
  if p == false then return nil end
  if p ~= nil then return p end
  if mode ~= "client" or (insecure_of(opts)) then return nil end
  if not default_policy_loaded then
    -- only a missing tls.policy means "no default policy"; any other load
    -- error must not quietly switch the policy off for every later client
    local ok, policy = pcall(require, "tls.policy")
    if not ok and not tostring(policy):find("module 'tls.policy' not found", 1, true) then
      error(policy, 0)
    end
    if ok and type(policy) == "table" then default_policy = policy.default end
    default_policy_loaded = true
  end
  return default_policy
end

-- conn:keypair() -> index, details of the keypair the server side chose
-- by SNI (libtls does not say; tls.sni applies libtls's rule). Lua methods
-- join the C ones through core.interpose, the one way to do so.
core.interpose("keypair", function(conn)
  return require("tls.sni").keypair(conn)
end)

--- Clients

local function new_client(cfg, opts, servername, host, port)
  -- libtls still checks the name under insecure_noverifycert: a failure of
  -- that check is a verification error too
  local nocert, noname = insecure_of(opts)
  local conn, err = core.client(cfg, servername, not (nocert and noname))
  if not conn then return nil, err end
  conn:settimeout(opts.timeout)
  local policy = policy_for(opts, "client")
  if policy then
    -- The policy also gets what the client asked for (tls.tofu keys its pins
    -- by host:port). verify_name is true when libtls matched the name,
    -- verify_cert when it verified the chain against config's CAs.
    local ctx = { mode = "client", host = host, port = port, servername = servername,
      verify_name = not noname, verify_cert = not nocert, config = cfg }
    conn:setcheck(function(c) return policy(c, ctx) end)
  end
  return conn
end

-- conn:handshake(), but a policy that raises closes the conn before the
-- error goes on: its descriptor is not left to the collector.
local function handshake_or_close(conn)
  local done, ok, err = pcall(conn.handshake, conn)
  if not done then
    conn:close()
    error(ok, 0)
  end
  return ok, err
end

-- The port as text (compat.port_text), or an error at the caller's caller.
local function port_text(port, where)
  return compat.port_text(port) or error(where .. ": port must be an integer or a string, got "
    .. (type(port) == "number" and tostring(port) or type(port)), 3)
end

-- tls.connect(host, port, opts) -> conn | nil, err
function tls.connect(host, port, opts)
  if type(host) ~= "string" then
    error("tls.connect: host must be a string, got " .. type(host), 2)
  end
  port = port_text(port, "tls.connect")
  opts = options_of(opts, "tls.connect")
  local timeout = check_timeout(opts.timeout, "tls.connect")
  local ct = check_timeout(opts.connect_timeout, "tls.connect", "connect_timeout")
  local ht = check_timeout(opts.handshake_timeout, "tls.connect", "handshake_timeout")
  check_policy(opts.policy, "tls.connect")
  local cfg, err = config_of(opts, "tls.connect")
  if not cfg then return nil, err end
  local conn
  conn, err = new_client(cfg, opts, opts.servername or host, host, tostring(port))
  if not conn then return nil, err end
  local ok
  -- connect_timeout and handshake_timeout, when given, bound those phases
  -- instead of timeout (tls.https uses them)
  ok, err = conn:connect(host, tostring(port), ct or timeout)
  if ok then
    if ht then conn:settimeout(ht) end
    ok, err = handshake_or_close(conn)
    if ht then conn:settimeout(timeout) end
  end
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

local function socket_fd(sock)
  -- LuaSocket 3.0 reports descriptors as floats (4.0): take integral numbers
  if compat.tointeger(sock) then return compat.tointeger(sock), nil end
  if type(sock) == "userdata" or type(sock) == "table" then
    local ok, fd = pcall(function() return sock:getfd() end)
    fd = ok and compat.tointeger(fd)
    if fd and fd >= 0 then return fd, sock end
  end
  error("tls.wrap: expected a connected LuaSocket tcp object or a descriptor, got "
    .. tostring(sock), 3)
end

-- tls.wrap(socket_or_fd, opts) -> conn | nil, err. The conn takes the
-- descriptor over (a LuaSocket object is left holding none, as LuaSec does);
-- call conn:handshake() next.
function tls.wrap(sock, opts)
  opts = options_of(opts, "tls.wrap")
  local mode = opts.mode or "client"
  if mode ~= "client" and mode ~= "server" then
    error("tls.wrap: option 'mode' must be \"client\" or \"server\", got " .. tostring(mode), 2)
  end
  local fd, luasocket = socket_fd(sock)
  check_timeout(opts.timeout, "tls.wrap")
  check_policy(opts.policy, "tls.wrap")
  local cfg, err = config_of(opts, "tls.wrap")
  if not cfg then return nil, err end
  local conn
  if mode == "client" then
    conn, err = new_client(cfg, opts, opts.servername)
    if not conn then return nil, err end
    conn:setfd(fd)
  else
    local server
    server, err = server_of(cfg)
    if not server then return nil, err end
    conn, err = server:wrap(fd)
    if not conn then return nil, err end
    conn:settimeout(opts.timeout)
    local policy = policy_for(opts, "server")
    if policy then conn:setcheck(policy) end
  end
  if luasocket and luasocket.setfd then luasocket:setfd(-1) end
  return conn
end

--- In-memory engines

-- tls.engine(opts) -> engine (a conn over memory) | nil, err
function tls.engine(opts)
  opts = options_of(opts, "tls.engine")
  local mode = opts.mode or "client"
  if mode ~= "client" and mode ~= "server" then
    error("tls.engine: option 'mode' must be \"client\" or \"server\", got " .. tostring(mode), 2)
  end
  check_policy(opts.policy, "tls.engine")
  local cfg, err = config_of(opts, "tls.engine")
  if not cfg then return nil, err end
  local conn
  if mode == "client" then
    conn, err = new_client(cfg, opts, opts.servername)
  else
    local server
    server, err = server_of(cfg)
    if not server then return nil, err end
    conn, err = server:engine()
    if conn then
      local policy = policy_for(opts, "server")
      if policy then conn:setcheck(policy) end
    end
  end
  if not conn then return nil, err end
  conn:settimeout(0)
  if opts.buffer_limit ~= nil then
    local ok, msg = pcall(conn.setlimit, conn, opts.buffer_limit)
    if not ok then
      conn:close()
      error("tls.engine: option 'buffer_limit': " .. (tostring(msg):match("%((.*)%)$") or msg), 2)
    end
  end
  return conn
end

--- Servers

local Listener = {}
Listener.__index = Listener
Listener.__name = "tls.listener"

function Listener:__tostring()
  local fd = self.socket:getfd()
  return fd >= 0 and ("tls.listener (fd " .. fd .. ")") or "tls.listener (closed)"
end

-- tls.listen(host, port, opts) -> listener | nil, err
function tls.listen(host, port, opts)
  if type(host) ~= "string" then
    error("tls.listen: host must be a string (\"*\" for every address), got " .. type(host), 2)
  end
  port = port_text(port, "tls.listen")
  opts = options_of(opts, "tls.listen")
  check_timeout(opts.timeout, "tls.listen")
  check_timeout(opts.handshake_timeout, "tls.listen", "handshake_timeout")
  check_policy(opts.policy, "tls.listen")
  if opts.backlog ~= nil and not compat.is_integer(opts.backlog) then
    error("tls.listen: option 'backlog' must be an integer, got " .. tostring(opts.backlog), 2)
  end
  local cfg, err = config_of(opts, "tls.listen")
  if not cfg then return nil, err end
  local server
  server, err = core.server(cfg)
  if not server then return nil, err end
  local sock
  sock, err = core.listen(host, tostring(port), opts.backlog)
  if not sock then return nil, err end
  return setmetatable({
    socket = sock, server = server, timeout = opts.timeout,
    handshake_timeout = opts.handshake_timeout or 10,
    policy = opts.policy, accepted = 0,
  }, Listener)
end

-- listener:accept([timeout]) -> conn with the handshake done, or nil and an
-- error for that one client ("timeout" when nobody came). The listener keeps
-- serving either way.
function Listener:accept(timeout)
  local conn, addr, port = self.socket:accept(self.server, timeout)
  if not conn then return nil, addr end
  conn:settimeout(self.handshake_timeout)
  if self.policy then conn:setcheck(self.policy) end
  local ok, err = handshake_or_close(conn)
  if not ok then
    conn:close()
    return nil, err .. " (client " .. tostring(addr) .. " port " .. tostring(port) .. ")"
  end
  conn:settimeout(self.timeout)
  self.accepted = self.accepted + 1
  return conn, addr, port
end

-- listener:accept_raw([timeout]) -> conn before its handshake, for event loops
-- that drive the handshake themselves.
function Listener:accept_raw(timeout)
  local conn, addr, port = self.socket:accept(self.server, timeout)
  if not conn then return nil, addr end
  conn:settimeout(self.timeout)
  if self.policy then conn:setcheck(self.policy) end
  return conn, addr, port
end

-- listener:reload(opts_or_config) -> true | nil, err. New handshakes use the
-- new certificates; open connections finish on the old ones.
function Listener:reload(opts)
  local cfg, err
  if core.type(opts) == "tls.config" then
    cfg = opts
  else
    cfg, err = config_of(opts, "listener:reload")
    if not cfg then return nil, err end
  end
  local server
  server, err = core.server(cfg)
  if not server then return nil, err end
  self.server = server
  return true
end

function Listener:getfd() return self.socket:getfd() end
function Listener:getsockname() return self.socket:getsockname() end
function Listener:settimeout(t)
  self.timeout = check_timeout(t, "listener:settimeout")
  return true
end
function Listener:close() return self.socket:close() end
Listener.__close = Listener.close

--- Errors

-- tls.is_verify_error(err) -> true when err reports a failed certificate or
-- name verification (it starts with "verify:").
function tls.is_verify_error(err)
  return type(err) == "string" and err:sub(1, 7) == "verify:"
end

-- tls.is_policy_error(err) -> true when err reports a failed policy check.
function tls.is_policy_error(err)
  return type(err) == "string" and err:sub(1, 7) == "policy:"
end

-- Helpers load on first use: tls.x509, tls.policy, tls.https, tls.cqueues ...
return setmetatable(tls, {
  __index = function(t, name)
    if type(name) ~= "string" or not name:match("^[%w_]+$") then return nil end
    local ok, mod = pcall(require, "tls." .. name)
    if not ok then
      if tostring(mod):find("module 'tls." .. name .. "' not found", 1, true) then return nil end
      error(mod, 2)
    end
    rawset(t, name, mod)
    return mod
  end,
})
