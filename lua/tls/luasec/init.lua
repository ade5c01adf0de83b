-- tls.luasec: LuaSec's API shape (ssl.newcontext, ssl.wrap, conn:dohandshake,
-- conn:sni, conn:getpeercertificate, ...) on top of lua-tls, so a LuaSec
-- program moves by changing its require lines:
--   local ssl = require "tls.luasec"          -- was require "ssl"
--   local https = require "tls.luasec.https"  -- was require "ssl.https"
-- Differences (doc/migrating-from-luasec.md): a client verifies the chain
-- and the host name unless verify = "none" is given (LuaSec verifies
-- nothing by default and never checks names); TLS 1.2/1.3 only.

local tls = require "tls"
local params = require "tls.luasec.params"
local cert = require "tls.luasec.cert"

local ssl = { _VERSION = "1.2.0 (tls.luasec on " .. tls._VERSION .. ")" }

local ctx_mt = { __name = "tls.luasec.context" }
ctx_mt.__index = ctx_mt
ctx_mt.__tostring = function(self) return "SSL context (" .. self.mode .. ")" end

-- ssl.newcontext(params) -> context | nil, message
function ssl.newcontext(p)
  local opts, info = params.translate(p, "tls.luasec.newcontext")
  if not opts then return nil, info end
  if p.mode ~= "client" and p.mode ~= "server" then
    return nil, "tls.luasec.newcontext: mode must be \"client\" or \"server\""
  end
  local cfg, err = tls.config(opts)
  if not cfg then return nil, err end
  return setmetatable({ mode = p.mode, opts = opts, config = cfg,
    verify_none = info.verify_none }, ctx_mt)
end

local conn_mt = { __name = "tls.luasec.conn" }
local methods = {}

-- ssl.wrap(sock, params_or_context) -> conn | nil, message. The TLS side is
-- made at dohandshake, once conn:sni() has said the name.
function ssl.wrap(sock, ctx)
  if getmetatable(ctx) ~= ctx_mt then
    local err
    ctx, err = ssl.newcontext(ctx)
    if not ctx then return nil, err end
  end
  return setmetatable({ sock = sock, ctx = ctx, config = ctx.config }, conn_mt)
end

-- ssl.loadcertificate(pem) -> certificate | nil, message
ssl.loadcertificate = cert.load

-- What this build can do, in LuaSec's ssl.config shape.
ssl.config = {
  protocols = { tlsv1_2 = true, tlsv1_3 = true },
  options = {}, algorithms = { ec = true },
  capabilities = { alpn = true, curves_list = true },
}

local function unsupported(name)
  error("tls.luasec: conn:" .. name .. " is not available (see doc/migrating-from-luasec.md)", 3)
end

-- conn:sni(name) on a client: the name to send and verify. On a server,
-- conn:sni({ [name] = context, ... } [, strict]): the contexts' keypairs
-- become SNI alternatives of the wrap context's; libtls picks the one whose
-- certificate matches the name. strict: a client that named an unknown host
-- gets a failed dohandshake (after the handshake: libtls cannot refuse it
-- during one).
function methods:sni(arg, strict)
  if self.tls then error("tls.luasec: conn:sni must come before dohandshake", 2) end
  if self.ctx.mode == "client" then
    if type(arg) ~= "string" then
      error("tls.luasec: conn:sni(name) on a client takes a string, got " .. type(arg), 2)
    end
    self.servername = arg
    return
  end
  if type(arg) ~= "table" then
    error("tls.luasec: conn:sni(map [, strict]) on a server takes a table, got " .. type(arg), 2)
  end
  local names, keypairs = {}, {}
  for name in pairs(arg) do names[#names + 1] = name end
  table.sort(names)
  local base = self.ctx.opts
  for _, name in ipairs(names) do
    local c = arg[name]
    if getmetatable(c) ~= ctx_mt then
      error("tls.luasec: conn:sni: the value for '" .. tostring(name) .. "' is not a context", 2)
    end
    if c ~= self.ctx then
      keypairs[#keypairs + 1] = { cert_file = c.opts.cert_file, key_file = c.opts.key_file,
        key_password = c.opts.key_password }
    end
  end
  local opts = {}
  for k, v in pairs(base) do opts[k] = v end
  opts.keypairs = keypairs
  local cfg, err = tls.config(opts)
  if not cfg then error("tls.luasec: conn:sni: " .. err, 2) end
  self.config = cfg
  self.sni_names = {}
  for _, name in ipairs(names) do self.sni_names[name:lower()] = true end
  self.sni_strict = strict and true or false
end

-- conn:settimeout(t): LuaSocket's rule (nil or negative blocks); NaN or a
-- non-number raises, as everywhere in lua-tls (NaN would block for ever)
function methods:settimeout(t, mode)
  local why = tls.core.timeout_problem(t)
  if why then error("tls.luasec: conn:settimeout: timeout " .. why, 2) end
  self.timeout = (t and t >= 0) and t or nil
  if self.tls then return self.tls:settimeout(self.timeout) end
  return 1
end

-- conn:dohandshake() -> true | nil, message ("wantread"/"wantwrite" when
-- non-blocking, as LuaSec)
function methods:dohandshake()
  if not self.tls then
    local ctx = self.ctx
    local opts = { mode = ctx.mode, config = self.config, timeout = self.timeout }
    if ctx.mode == "client" then
      -- without conn:sni(), the address connected to is the name verified
      -- (an IP address: against the certificate's IP subjectAltNames)
      opts.servername = self.servername or self.sock:getpeername()
    end
    local conn, err = tls.wrap(self.sock, opts)
    if not conn then return nil, err end
    self.tls = conn
  end
  local ok, err = self.tls:handshake()
  if not ok then return nil, err end
  if self.sni_strict then
    local name = self.tls:info().servername
    if name and not self.sni_names[name:lower()] then
      self.tls:close()
      return nil, "sni: no context for server name '" .. name .. "' (strict)"
    end
  end
  return true
end

local function need(self)
  if self.tls then return self.tls end
  return nil
end

-- Three results, as LuaSec's: data, nil, nil or nil, err, partial.
function methods:receive(pattern, prefix)
  local c = need(self)
  if not c then return nil, "closed", nil end
  local data, err, partial = c:receive(pattern, prefix)
  return data, err, partial
end

function methods:send(data, i, j)
  local c = need(self)
  if not c then return nil, "closed" end
  return c:send(data, i, j)
end

function methods:close()
  if self.tls then self.tls:close() elseif self.sock then self.sock:close() end
  return 1
end

function methods:getfd()
  if self.tls then return self.tls:getfd() end
  return self.sock:getfd()
end

function methods:dirty()
  return self.tls ~= nil and self.tls:dirty()
end

-- conn:want() -> "nothing" | "read" | "write" (what the last call waits for)
function methods:want()
  local ev = self.tls and self.tls:events()
  if ev == "r" then return "read" elseif ev == "w" then return "write" end
  return "nothing"
end

function methods:getpeercertificate(n)
  local chain = self:getpeerchain()
  return chain and chain[n or 1] or nil
end

function methods:getpeerchain()
  local peer = self.tls and self.tls:peer()
  if not peer or not peer.chain_pem then return nil end
  return cert.chain(peer.chain_pem)
end

-- conn:getpeerverification() -> true | false, { reasons }. A handshake that
-- finished verified the peer, unless verify = "none" turned that off.
function methods:getpeerverification()
  if not self.tls then return false, { "no handshake yet" } end
  if self.ctx.verify_none then return false, { "not verified: verify = \"none\"" } end
  if not self.tls:peer() then return false, { "the peer sent no certificate" } end
  return true
end

function methods:getalpn()
  return self.tls and self.tls:info().alpn or nil
end

function methods:getsniname()
  return self.tls and self.tls:info().servername or nil
end

-- conn:info([field]) in LuaSec's shape
function methods:info(field)
  if not self.tls then return nil end
  local i = self.tls:info()
  local t = { protocol = i.version, cipher = i.cipher, bits = i.cipher_strength,
    algbits = i.cipher_strength, alpn = i.alpn, compression = "NONE" }
  if field then return t[field] end
  return t
end

-- the conn's own fields, which may be nil
local fields = { sock = true, ctx = true, config = true, tls = true, servername = true,
  timeout = true, sni_names = true, sni_strict = true }
conn_mt.__index = function(_, k)
  local m = methods[k]
  if m then return m end
  if fields[k] then return nil end
  unsupported(tostring(k))
end
conn_mt.__tostring = function(self)
  return "SSL connection: " .. (self.tls and tostring(self.tls) or "before the handshake")
end

return ssl
