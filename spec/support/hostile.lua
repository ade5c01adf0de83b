-- Helpers for the hostile-peer, misuse and stress specs: loopback TCP pairs
-- made in-process with LuaSocket, a pump that moves a handshake along
-- between an engine and a raw socket, and hand-made records. (Engine pairs
-- over memory: spec/support/engines.lua.)
local tls = require "tls"
local socket = require "socket"
local E = require "support.engines"

local H = {}

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
    if not okc and not E.is_want(ec) then return nil, "engine: " .. ec end
    if not oks and not E.is_want(es) then return nil, "conn: " .. es end
    socket.sleep(0.001)
  end
  return nil, "handshake did not finish"
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
