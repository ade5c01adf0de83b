-- What the Lua peers (peer_module.lua, peer_luasec.lua) share: clocks,
-- resident memory, the result line the driver parses, and the loops that
-- measure.
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
  local pid = tonumber(f:read("*a"):match("^%d+"))
  f:close()
  return pid
end

-- Resident set size in KiB of pid (default: this process).
function P.rss(pid)
  local f = io.open("/proc/" .. (pid or "self") .. "/status")
  if not f then return -1 end
  local kib = tonumber(f:read("*a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib or -1
end

-- Minor page faults of this process so far (/proc/self/stat field 10).
function P.faults()
  local f = io.open("/proc/self/stat")
  if not f then return -1 end
  local stat = f:read("*a")
  f:close()
  return tonumber(stat:match("^%d+ %b() %S+" .. (" %S+"):rep(6) .. " (%d+)")) or -1
end

function P.ready()
  io.stdout:write("READY pid=", P.pid(), "\n")
  io.stdout:flush()
end

-- Print "k=v ..." in the order given.
function P.report(...)
  local t = { n = select("#", ...), ... }
  local parts = {}
  for i = 1, t.n, 2 do
    local v = t[i + 1]
    -- fractions (times) in fixed notation; counts as they are, on every Lua
    if type(v) == "number" and v ~= math.floor(v) then v = ("%.6f"):format(v) end
    parts[#parts + 1] = t[i] .. "=" .. tostring(v)
  end
  io.stdout:write(table.concat(parts, " "), "\n")
  io.stdout:flush()
end

--- The measuring loops, one copy for both Lua peers so that lua-tls and
--- LuaSec are measured the same way; each peer passes its library's own
--- accept or connect. Counts arrive as the command line's strings.

-- accept() -> conn with the handshake done, or nil, err. Accepts and
-- closes WARM + COUNT connections; the last COUNT are timed.
function P.server_hs(accept, count, warm)
  count, warm = tonumber(count), tonumber(warm)
  local ok, fail, cpu0, wall0 = 0, 0, P.cpu(), P.wall()
  for i = 1, count + warm do
    if i == warm + 1 then cpu0, wall0 = P.cpu(), P.wall() end
    local conn, err = accept()
    if conn then conn:close() end
    if i > warm then
      if conn then ok = ok + 1 else fail = fail + 1 end
    end
    if not conn and i == 1 then io.stderr:write("accept: ", tostring(err), "\n") end
  end
  P.report("ok", ok, "fail", fail, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

-- connect() -> conn with the handshake done, or nil, err; facts(conn) ->
-- its version, cipher and whether it resumed. Each conn is read to the end
-- (the raw-libtls server closes) unless read_all is false: openssl
-- s_server -www, the resumption peer, waits for a request instead.
function P.client_hs(connect, facts, count, warm, read_all)
  count, warm = tonumber(count), tonumber(warm)
  local ok, fail, resumed, cpu0, wall0 = 0, 0, 0, P.cpu(), P.wall()
  local version, cipher
  for i = 1, count + warm do
    if i == warm + 1 then cpu0, wall0 = P.cpu(), P.wall() end
    local conn, err = connect()
    if conn then
      local was_resumed
      version, cipher, was_resumed = facts(conn)
      if i > warm and was_resumed then resumed = resumed + 1 end
      if read_all then conn:receive("*a") end
      conn:close()
    elseif i == 1 then
      io.stderr:write("connect: ", tostring(err), "\n")
    end
    if i > warm then
      if conn then ok = ok + 1 else fail = fail + 1 end
    end
  end
  P.report("ok", ok, "fail", fail, "resumed", resumed, "cpu", P.cpu() - cpu0,
    "wall", P.wall() - wall0, "version", version, "cipher", cipher)
end

-- Accepts and holds connections until the driver stops the process.
function P.hold_server(accept)
  local held = {}
  while true do
    local conn = accept()
    if conn then held[#held + 1] = conn end
  end
end

-- Opens WARM + N connections and holds them; reports the growth of this
-- process's and the server's (pid `server`) resident memory over the last N.
function P.hold_client(connect, n, warm, server)
  n, warm = tonumber(n), tonumber(warm)
  local held, self0, srv0 = {}, 0, 0
  for i = 1, n + warm do
    if i == warm + 1 then
      P.sleep(0.3)
      collectgarbage("collect")
      self0, srv0 = P.rss(), P.rss(server)
    end
    held[i] = assert(connect())
  end
  P.sleep(0.3)
  collectgarbage("collect")
  P.report("held", n, "client_kib", P.rss() - self0, "server_kib", P.rss(server) - srv0)
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
  local cpu0, wall0, faults0 = P.cpu(), P.wall(), P.faults()
  while done < total do
    local n = total - done < size and total - done or size
    local data = conn:receive(n)
    if not data then return end
    if mode == "echo" and not conn:send(data) then return end
    done = done + n
  end
  if mode ~= "echo" then conn:send("k") end
  -- the reading end's cost (the versions section adds it to the writer's)
  P.report("bytes", done, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0,
    "faults", P.faults() - faults0)
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
  role((table.unpack or unpack)(argv, 2))
end

return P
