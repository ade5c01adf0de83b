-- An in-memory TLS engine driven by a plain LuaSocket socket.select loop:
-- the loop owns every socket and every wait; the engine only turns
-- ciphertext into plaintext and back (feed/drain), and never blocks.
--
--   lua5.4 examples/engine_loop.lua get https://127.0.0.1:8443/path [--ca ca.pem]
--       one HTTPS GET; prints the status line, then the body
--   lua5.4 examples/engine_loop.lua serve [--port 0] --cert cert.pem --key key.pem
--       a line echo server for any number of clients at once; prints
--       "listening on PORT" when ready
--
-- The pump, for any loop:
--   1. call the TLS operation (handshake/receive/send) on the engine;
--   2. send whatever engine:drain() returns to the socket;
--   3. on "wantread", wait until the socket is readable, then feed the bytes
--      read (feed_eof() at end of stream) and go to 1;
--      on "wantwrite", the engine's output queue is full: 2 empties it.
-- From a checkout, no install needed: the module is found next to this file
-- (built for this Lua: `make LUA_VERSION=...` builds into build/<version>/, 5.4 into build/).
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local lua_version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/" .. (lua_version == "5.4" and "" or lua_version .. "/") .. "?.so;"
  .. package.cpath

local socket = require "socket"
local tls = require "tls"

local function usage()
  io.stderr:write("usage: lua5.4 examples/engine_loop.lua get URL [--ca FILE]\n"
    .. "       lua5.4 examples/engine_loop.lua serve [--host H] [--port N] --cert FILE --key FILE\n")
  os.exit(2)
end

local function options(from)
  local o = {}
  for i = from, #arg, 2 do
    local name = arg[i]:match("^%-%-(%w+)$")
    if not name or not arg[i + 1] then usage() end
    o[name] = arg[i + 1]
  end
  return o
end

-- Send all of data on a non-blocking LuaSocket socket, waiting in select.
-- (A real server would queue it and go on serving others; the echo server
-- below does, this helper is for the one-connection client.)
local function send_all(sock, data)
  local i = 1
  while i <= #data do
    local last, err, partial = sock:send(data, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = partial + 1
    socket.select(nil, { sock }, 30)
  end
  return true
end

--- A client: one HTTPS GET.

local function get(url, o)
  local host, port, path = url:match("^https://([^/:]+):?(%d*)(/?.*)$")
  if not host then usage() end
  port = tonumber(port) or 443
  if path == "" then path = "/" end
  local sock = assert(socket.connect(host, port))
  sock:settimeout(0)  -- the loop never blocks in a socket call
  local engine = assert(tls.engine { mode = "client", servername = host,
    ca_file = o.ca })  -- no --ca: the system trust store

  -- Run step() to completion through the socket. step makes one
  -- non-blocking attempt at an engine operation and returns what it returned.
  local function pump(step)
    while true do
      local r1, err, r3 = step()
      assert(send_all(sock, engine:drain()))
      if err ~= "wantread" and err ~= "wantwrite" then return r1, err, r3 end
      if err == "wantread" then
        local ready = socket.select({ sock }, nil, 30)
        if not ready[sock] then return nil, "timeout" end
        local data, rerr, partial = sock:receive(16384)
        data = data or partial
        if #data > 0 then assert(engine:feed(data)) end
        if rerr == "closed" then engine:feed_eof() end
      end
    end
  end

  -- A retried receive passes back what it got so far (the prefix); a
  -- retried send continues after the last byte taken.
  local function receive(pattern)
    local partial
    return pump(function()
      local data, err, part = engine:receive(pattern, partial)
      partial = part
      return data, err, part
    end)
  end
  local function send(data)
    local i = 1
    return pump(function()
      local last, err, sent = engine:send(data, i)
      if sent then i = sent + 1 end
      return last, err, sent
    end)
  end

  assert(pump(function() return engine:handshake() end))
  local info = engine:info()
  io.stderr:write(("handshake: %s %s\n"):format(info.version, info.cipher))
  assert(send(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"):format(path, host)))
  -- read to the end: with Connection: close, the body ends with the stream
  local response, err, partial = receive("*a")
  response = response or partial
  engine:close()
  send_all(sock, engine:drain())  -- our close_notify
  sock:close()
  if err and err ~= "closed" then error("receive: " .. err) end
  local status, body = response:match("^([^\r\n]*)\r\n.-\r\n\r\n(.*)$")
  print(status)
  io.write(body or "")
end

--- A server: many clients in one select loop.

local function serve(o)
  if not o.cert or not o.key then usage() end
  local cfg = assert(tls.config { cert_file = o.cert, key_file = o.key })
  local listener = assert(socket.bind(o.host or "127.0.0.1", tonumber(o.port or 0)))
  listener:settimeout(0)
  local _, port = listener:getsockname()
  io.stdout:setvbuf("line")
  print("listening on " .. port)

  local clients = {}  -- socket -> {engine =, out = pending ciphertext, line = partial}

  local function drop(sock)
    clients[sock] = nil
    sock:close()
  end

  -- Let the engine work on what it has; returns false when the client is done.
  local function step(sock, c)
    local e = c.engine
    if not c.ready then
      local ok, err = e:handshake()
      if not ok then
        if err ~= "wantread" and err ~= "wantwrite" then
          io.stderr:write("handshake: " .. err .. "\n")
          return false
        end
        return true
      end
      c.ready = true
    end
    while true do
      local line, err, partial = e:receive("*l", c.line)
      if not line then
        c.line = partial
        return err == "wantread" or err == "wantwrite"
      end
      c.line = nil
      if line == "quit" then e:close(); c.closing = true; return true end
      -- queued in memory; the loop sends it. (A server echoing floods would
      -- check for "wantwrite" here and stop reading until drained.)
      e:send(line .. "\n")
    end
  end

  while true do
    local readers, writers = { listener }, {}
    for sock, c in pairs(clients) do
      readers[#readers + 1] = sock
      if #c.out > 0 then writers[#writers + 1] = sock end
    end
    local readable, writable = socket.select(readers, writers)
    if readable[listener] then
      local sock = listener:accept()
      if sock then
        sock:settimeout(0)
        clients[sock] = { engine = assert(tls.engine { mode = "server", config = cfg }), out = "" }
      end
    end
    for sock, c in pairs(clients) do
      local alive = true
      if readable[sock] then
        local data, err, partial = sock:receive(16384)
        data = data or partial
        if #data > 0 then
          local ok, ferr = c.engine:feed(data)
          if not ok then io.stderr:write(ferr .. "\n"); alive = false end
        end
        if err == "closed" then c.engine:feed_eof() end
        if alive then alive = step(sock, c) end
      end
      if alive then
        c.out = c.out .. c.engine:drain()
        if #c.out > 0 then
          local last, err, partial = sock:send(c.out)
          if not last and err ~= "timeout" then alive = false end
          c.out = c.out:sub((last or partial) + 1)
        end
        if c.closing and #c.out == 0 then alive = false end
      end
      if not alive then drop(sock) end
    end
  end
end

local cmd = arg[1]
if cmd == "get" and arg[2] then
  get(arg[2], options(3))
elseif cmd == "serve" then
  serve(options(2))
else
  usage()
end
