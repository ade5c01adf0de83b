-- What the Lua peers (peer_module.lua, peer_luasec.lua) share: clocks,
-- resident memory, and the result line the driver parses.
local socket = require "socket"

local P = {}

P.cpu = os.clock            -- process CPU time, user + system
P.wall = socket.gettime
P.sleep = socket.sleep
P.HEADER_LEN = 32
-- The module's default TLS 1.2 list, so every implementation offers the same.
P.CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

function P.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("a"):match("^%d+"))
  f:close()
  return pid
end

-- Resident set size in KiB of pid (default: this process).
function P.rss(pid)
  local f = io.open("/proc/" .. (pid or "self") .. "/status")
  if not f then return -1 end
  local kib = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib or -1
end

function P.ready()
  io.stdout:write("READY pid=", P.pid(), "\n")
  io.stdout:flush()
end

-- Print "k=v ..." in the order given.
function P.report(...)
  local t = table.pack(...)
  local parts = {}
  for i = 1, t.n, 2 do
    local v = t[i + 1]
    if math.type(v) == "float" then v = ("%.6f"):format(v) end
    parts[#parts + 1] = t[i] .. "=" .. tostring(v)
  end
  io.stdout:write(table.concat(parts, " "), "\n")
  io.stdout:flush()
end

-- Bulk modes: "sink" (the reader reads 16 KiB blocks, whatever the write
-- size: how a bulk reader reads), "sinkrec" (it reads each write's count:
-- one call per record, the per-call floor) and "echo" (it sends each chunk
-- back). The sinks acknowledge the end with "k".
P.READ_BLOCK = 16384

function P.read_size(mode, chunk)
  if mode == "sink" then return P.READ_BLOCK end
  return chunk
end

-- The 32-byte bulk header: "MODE TOTAL CHUNK", space padded.
function P.header(mode, total, chunk)
  local h = ("%s %d %d"):format(mode, total, chunk)
  return h .. (" "):rep(P.HEADER_LEN - #h)
end

function P.parse_header(h)
  local mode, total, chunk = h:match("^(%a+) (%d+) (%d+)")
  return mode, tonumber(total), tonumber(chunk)
end

-- The two ends of a bulk transfer, over a conn with LuaSocket's receive and
-- send (a lua-tls conn and a LuaSec one alike). The loops call nothing but
-- the library (no math.min, no assert per record), so the figures are the
-- library's.
function P.bulk_serve(conn)
  local h = conn:receive(P.HEADER_LEN)
  if not h then return end
  local mode, total, chunk = P.parse_header(h)
  local done, size = 0, P.read_size(mode, chunk)
  while done < total do
    local n = total - done < size and total - done or size
    local data = conn:receive(n)
    if not data then return end
    if mode == "echo" and not conn:send(data) then return end
    done = done + n
  end
  if mode ~= "echo" then conn:send("k") end
end

-- Writes TOTAL bytes in CHUNK-sized sends and reports the time taken.
function P.bulk_write(conn, mode, total, chunk)
  local data = ("x"):rep(chunk)
  local cpu0, wall0 = P.cpu(), P.wall()
  assert(conn:send(P.header(mode, total, chunk)))
  local done = 0
  while done < total do
    local n = total - done < chunk and total - done or chunk
    local ok = n == chunk and conn:send(data) or conn:send(data, 1, n)
    if not ok then error("send failed") end
    if mode == "echo" and not conn:receive(n) then error("receive failed") end
    done = done + n
  end
  if mode ~= "echo" then assert(conn:receive(1)) end
  P.report("bytes", done, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

-- Drop to the role function named by arg[1], with the rest as arguments.
function P.main(roles, argv)
  local role = roles[argv[1] or ""]
  if not role then
    io.stderr:write("usage: ROLE ARGS... (roles as in bench/ctls.c)\n")
    os.exit(2)
  end
  role(table.unpack(argv, 2))
end

return P
