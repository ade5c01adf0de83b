-- The tls.over peer for the benchmarks (bench/sections/75_over.lua). Runs
-- on any Lua the module is built for (LuaJIT included), so it uses no
-- 5.3-only function. Roles:
--   bulk-client-cq HOST PORT PROTO MODE TOTAL CHUNK   tls.over on a cqueues
--       socket, in a cqueues coroutine, against peer_module.lua bulk-server
--   send-server PORT CERT KEY TOTAL CONNS   tls.listen; each client gets TOTAL
--       bytes, then close_notify (for recv-all)
--   recv-all HOST PORT N   tls.over on a LuaSocket socket: receive("*a") of
--       what send-server sends, N times; reports CPU seconds
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local tls = require "tls"
local socket = require "socket"

local report = require("peerlib").report

local roles = {}

roles["bulk-client-cq"] = function(host, port, proto, mode, total, chunk)
  local P = require "peerlib"
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  cq:wrap(function()
    local t = assert(tls.transport.connect("cqueues", host, tonumber(port), 10))
    local conn = assert(tls.over(t, { protocols = proto, insecure_noverifycert = true,
      insecure_noverifyname = true, servername = "localhost", timeout = 60 }))
    assert(conn:handshake())
    P.bulk_write(conn, mode, tonumber(total), tonumber(chunk))
    conn:close()
  end)
  assert(cq:loop())
end

roles["send-server"] = function(port, cert, key, total, conns)
  local l = assert(tls.listen("127.0.0.1", port, { cert_file = cert, key_file = key }))
  io.stdout:write("READY\n")
  io.stdout:flush()
  local data = ("x"):rep(tonumber(total))
  for _ = 1, tonumber(conns) do
    local conn = l:accept()
    if conn then
      conn:send(data)
      conn:close()
    end
  end
end

roles["recv-all"] = function(host, port, n)
  local cpu, wall, bytes = 0, 0, 0
  for _ = 1, tonumber(n) do
    local sock = assert(socket.connect(host, tonumber(port)))
    local c = assert(tls.over(tls.transport.socket(sock), { insecure_noverifycert = true,
      insecure_noverifyname = true, servername = "localhost", timeout = 60 }))
    assert(c:handshake())
    local cpu0, wall0 = os.clock(), socket.gettime()
    local data, err, partial = c:receive("*a")
    cpu, wall = cpu + os.clock() - cpu0, wall + socket.gettime() - wall0
    data = data or (err == "truncated" and partial) or error("receive: " .. tostring(err))
    bytes = bytes + #data
    c:close()
  end
  report("bytes", bytes, "cpu", cpu, "wall", wall)
end

local role = roles[arg[1] or ""]
if not role then
  io.stderr:write("usage: lua bench/peer_over.lua ROLE ARGS...\n")
  os.exit(2)
end
role(select(2, ...))
