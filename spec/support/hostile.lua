-- Helpers for the hostile-peer, misuse and stress specs: engine pairs,
-- loopback TCP pairs made in-process with LuaSocket, and pumps that move a
-- handshake along between an engine and a raw socket.
local tls = require "tls"
local socket = require "socket"

local H = {}

function H.is_want(err) return err == "wantread" or err == "wantwrite" end

-- Run a handshake between two engines (c client, s server) in memory.
-- step(i) is called between every move when given (GC stress).
function H.pump(c, s, step)
  local okc, oks, ec, es
  for i = 1, 50 do
    okc, ec = c:handshake()
    if step then step(i) end
    s:feed(c:drain())
    if step then step(i) end
    oks, es = s:handshake()
    if step then step(i) end
    c:feed(s:drain())
    if step then step(i) end
    if okc and oks then return true end
    if not okc and not H.is_want(ec) then return nil, "client: " .. ec end
    if not oks and not H.is_want(es) then return nil, "server: " .. es end
  end
  return nil, "handshake did not finish"
end

-- Move every byte from engine a to engine b.
function H.move(a, b)
  local d = a:drain()
  if #d > 0 then b:feed(d) end
  return #d
end

-- A connected TCP pair on loopback: client side, server side (LuaSocket).
function H.tcp_pair()
  local l = assert(socket.bind("127.0.0.1", 0))
  local _, port = l:getsockname()
  local a = socket.tcp()
  a:settimeout(5)
  assert(a:connect("127.0.0.1", port))
  l:settimeout(5)
  local b = assert(l:accept())
  l:close()
  a:settimeout(5)
  b:settimeout(5)
  return a, b
end

-- Close a LuaSocket tcp object with a reset (RST) instead of a FIN.
function H.reset(sock)
  assert(sock:setoption("linger", { on = true, timeout = 0 }))
  sock:close()
end

-- Everything readable on a raw socket now (waits up to `wait` seconds for
-- the first byte); "" when nothing came.
function H.read_some(sock, wait)
  if (wait or 0) > 0 then socket.select({ sock }, nil, wait) end
  sock:settimeout(0)
  local data, err, part = sock:receive(65536)
  return data or part or "", err
end

-- Pump a handshake between an engine (our bytes go over raw socket `raw`)
-- and a socket conn of the module (settimeout(0) for the duration).
function H.pump_raw(engine, raw, conn)
  conn:settimeout(0)
  raw:settimeout(0)
  local okc, oks, ec, es
  for _ = 1, 2000 do
    okc, ec = engine:handshake()
    local out = engine:drain()
    if #out > 0 then assert(raw:send(out)) end
    oks, es = conn:handshake()
    local got = H.read_some(raw, 0)
    if #got > 0 then engine:feed(got) end
    if okc and oks then return true end
    if not okc and not H.is_want(ec) then return nil, "engine: " .. ec end
    if not oks and not H.is_want(es) then return nil, "conn: " .. es end
    socket.sleep(0.001)
  end
  return nil, "handshake did not finish"
end

-- Configs for the test PKI (spec/support/pki.lua, set up by the caller).
function H.configs(pki)
  return assert(tls.config{ cert_file = pki.server.cert, key_file = pki.server.key }),
    assert(tls.config{ ca_file = pki.ca.cert })
end

-- A ClientHello as a real client sends it, captured from an engine.
function H.client_hello(ccfg)
  local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
  local ok, err = c:handshake()
  assert(not ok and err == "wantread")
  local hello = c:drain()
  c:close()
  return hello
end

-- A TLS record header announcing `len` bytes (type 22: handshake, 23: data).
function H.record_header(kind, len)
  return string.char(kind, 3, 3, math.floor(len / 256), len % 256)
end

-- The largest record a peer may send is 16 KiB + 2048 (TLS 1.2 ciphertext);
-- this one claims more.
H.OVERSIZED = 16384 + 2048 + 1

return H
