-- In-memory engine pairs for the specs: the shared configs of the test PKI
-- (spec/support/pki.lua), engines made from them, and the one pump that
-- moves bytes between a client and a server engine.
local tls = require "tls"
local pki = require "support.pki"

local E = {}

function E.is_want(err) return err == "wantread" or err == "wantwrite" end

-- The server config (the test PKI's localhost keypair) and the client config
-- (trusting the test root), made once per PKI.
local made
function E.configs()
  pki.setup()
  if not made or made.dir ~= pki.dir then
    made = { dir = pki.dir,
      server = assert(tls.config{ cert_file = pki.server.cert, key_file = pki.server.key }),
      client = assert(tls.config{ ca_file = pki.ca.cert }) }
  end
  return made.server, made.client
end

local function merged(base, extra)
  for k, v in pairs(extra or {}) do base[k] = v end
  return base
end

-- A server engine on the shared config; `extra` adds or replaces options.
function E.server(extra)
  local scfg = E.configs()
  return assert(tls.engine(merged({ mode = "server", config = scfg }, extra)))
end

-- A client engine for "localhost" on the shared config.
function E.client(extra)
  local _, ccfg = E.configs()
  return assert(tls.engine(merged({ mode = "client", config = ccfg, servername = "localhost" }, extra)))
end

-- A client and a server engine, before their handshake.
function E.pair(copts, sopts)
  return E.client(copts), E.server(sopts)
end

-- Move what `from` queued into `to` -> the number of bytes moved (and the
-- error of a feed that failed: a closed engine takes nothing). With
-- maxchunk, they are fed in pieces of random size in [1, maxchunk].
function E.move(from, to, maxchunk)
  local d = from:drain()
  local i = 1
  while i <= #d do
    local n = maxchunk and math.random(1, maxchunk) or #d
    local ok, err = to:feed(d:sub(i, i + n - 1))
    if not ok then return #d, err end
    i = i + n
  end
  return #d
end

-- Run the handshake of client engine c and server engine s in memory
-- -> true, or nil and "client: <error>" / "server: <error>" / "handshake did
-- not finish". opts.maxchunk: as for E.move; opts.step(i): called between
-- every move (GC stress).
function E.handshake(c, s, opts)
  local step = opts and opts.step or function() end
  local maxchunk = opts and opts.maxchunk
  local okc, oks, ec, es
  for i = 1, 200 do
    okc, ec = c:handshake()
    step(i)
    E.move(c, s, maxchunk)
    step(i)
    oks, es = s:handshake()
    step(i)
    E.move(s, c, maxchunk)
    step(i)
    if okc and oks then return true end
    if not okc and not E.is_want(ec) then return nil, "client: " .. ec end
    if not oks and not E.is_want(es) then return nil, "server: " .. es end
  end
  return nil, "handshake did not finish"
end

return E
