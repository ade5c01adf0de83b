-- A concurrent HTTPS server (HTTP/1.1 with keep-alive) on cqueues: the
-- pattern for embedding lua-tls in an event loop.
--
--   lua5.4 examples/https_server.lua [--host 127.0.0.1] [--port 8443]
--          [--cert cert.pem --key key.pem] [--handshake-timeout 10]
--          [--idle-timeout 30]
--
-- With no --cert/--key it makes a throwaway self-signed P-256 certificate
-- for "localhost" with the openssl CLI. --port 0 picks a free port. It prints
-- "listening on https://HOST:PORT/" once it accepts connections.
--
-- Every response echoes the request: GET /anything -> "GET /anything\n", and
-- a POST body comes back after that line.
--
-- The shape, which is all an embedding needs:
--   * one cqueues controller; one coroutine accepts, one coroutine per client;
--   * the accept loop only accepts (tcq.accept_raw): the TLS handshake runs in
--     the client's own coroutine under its own timeout, so a client that
--     stalls mid-handshake holds up nobody else;
--   * inside a coroutine, conn:receive/send/handshake look blocking; they
--     yield to the loop whenever the socket is not ready;
--   * each coroutine's body runs under tcq.pcall (a pcall that lets the I/O
--     inside yield, also on Lua 5.1), so one client's failure never
--     stops the loop, and its connection is always closed.
-- From a checkout, no install needed: the module is found next to this file
-- (built for this Lua: `make LUA_VERSION=...` builds into build/<version>/, 5.4 into build/).
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local lua_version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/" .. (lua_version == "5.4" and "" or lua_version .. "/") .. "?.so;"
  .. package.cpath

local cqueues = require "cqueues"
local tls = require "tls"
local tcq = require "tls.cqueues"

--- Options

local opts = {
  host = "127.0.0.1", port = "8443", cert = nil, key = nil,
  ["handshake-timeout"] = "10", ["idle-timeout"] = "30",
}
do
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-([%w-]+)$")
    if not name or opts[name] == nil and name ~= "cert" and name ~= "key" or arg[i + 1] == nil then
      io.stderr:write("usage: lua5.4 examples/https_server.lua [--host H] [--port N] "
        .. "[--cert FILE --key FILE] [--handshake-timeout S] [--idle-timeout S]\n")
      os.exit(2)
    end
    opts[name] = arg[i + 1]
    i = i + 2
  end
end
local HANDSHAKE_TIMEOUT = assert(tonumber(opts["handshake-timeout"]), "--handshake-timeout: a number")
local IDLE_TIMEOUT = assert(tonumber(opts["idle-timeout"]), "--idle-timeout: a number")
local MAX_HEADER_LINES, MAX_BODY = 100, 1024 * 1024

local function log(...)
  io.stderr:write(os.date("%H:%M:%S "), table.concat({ ... }, " "), "\n")
end

-- A throwaway certificate when none is given; read into memory and deleted.
local function throwaway_cert()
  local dir = io.popen("mktemp -d /tmp/https_server.XXXXXX"):read("*l")
  local ok = os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
    .. "-nodes -keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
    .. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1"):format(dir, dir))
  local function slurp(name)
    local f = io.open(dir .. "/" .. name, "rb")
    local s = f and f:read("*a")
    if f then f:close() end
    return s
  end
  local cert, key = slurp("cert.pem"), slurp("key.pem")
  os.execute("rm -rf " .. dir)
  if not ok or not cert or not key then
    error("could not make a throwaway certificate with the openssl CLI; pass --cert and --key")
  end
  return cert, key
end

local tls_opts = { timeout = IDLE_TIMEOUT, handshake_timeout = HANDSHAKE_TIMEOUT,
  backlog = 1024 }
if opts.cert or opts.key then
  tls_opts.cert_file, tls_opts.key_file = opts.cert, opts.key
else
  tls_opts.cert, tls_opts.key = throwaway_cert()
end

--- HTTP/1.1

local REASONS = { [200] = "OK", [400] = "Bad Request", [408] = "Request Timeout",
  [413] = "Payload Too Large", [501] = "Not Implemented" }

local function respond(conn, status, body, keep_alive)
  local head = ("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    .. "Connection: %s\r\n\r\n"):format(status, REASONS[status], #body,
    keep_alive and "keep-alive" or "close")
  return conn:send(head .. body)
end

-- Read one request: {method, target, version, headers, body} | nil, err.
-- err is "closed" when the client went away between requests.
local function read_request(conn)
  local line, err = conn:receive("*l")
  if not line then return nil, err end
  local method, target, version = line:match("^(%u+) (%S+) HTTP/(1%.[01])$")
  if not method then return nil, "bad request line", 400 end
  local headers = {}
  for _ = 1, MAX_HEADER_LINES do
    line, err = conn:receive("*l")
    if not line then return nil, err end
    if line == "" then
      local req = { method = method, target = target, version = version, headers = headers }
      if headers["transfer-encoding"] then return nil, "chunked bodies", 501 end
      local n = tonumber(headers["content-length"] or "0")
      if not n or n < 0 or n ~= math.floor(n) then return nil, "bad Content-Length", 400 end
      if n > MAX_BODY then return nil, "body too large", 413 end
      if n > 0 then
        req.body, err = conn:receive(n)
        if not req.body then return nil, err end
      end
      return req
    end
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if not name then return nil, "bad header line", 400 end
    headers[name:lower()] = value
  end
  return nil, "too many header lines", 400
end

local function wants_keep_alive(req)
  local c = (req.headers.connection or ""):lower()
  if req.version == "1.0" then return c == "keep-alive" end
  return c ~= "close"
end

-- One client, in its own coroutine: handshake, then requests until the
-- client closes, asks to close, or idles past IDLE_TIMEOUT.
local function serve_client(conn, addr, port)
  local ok, err = conn:handshake(HANDSHAKE_TIMEOUT)
  if not ok then
    log("handshake with", addr, port, "failed:", err)
    return
  end
  conn:settimeout(IDLE_TIMEOUT)  -- per receive/send from here on
  while true do
    local req, rerr, status = read_request(conn)
    if not req then
      if status then respond(conn, status, rerr .. "\n", false) end
      if rerr ~= "closed" and rerr ~= "timeout" then log("client", addr, port, rerr) end
      return
    end
    local keep = wants_keep_alive(req)
    local body = req.method .. " " .. req.target .. "\n" .. (req.body or "")
    local sent, serr = respond(conn, 200, body, keep)
    if not sent then
      log("client", addr, port, "send:", serr)
      return
    end
    if not keep then return end
  end
end

--- The loop

local listener, lerr = tls.listen(opts.host, opts.port, tls_opts)
if not listener then
  io.stderr:write("https_server: ", lerr, "\n")
  os.exit(1)
end
local _, bound_port = listener:getsockname()
local cq = cqueues.new()

cq:wrap(function()
  while true do
    local conn, addr, port = tcq.accept_raw(listener)
    if conn then
      cq:wrap(function()
        local ok, err = tcq.pcall(serve_client, conn, addr, port)
        if not ok then log("client", addr, port, "error:", tostring(err)) end
        conn:close()
      end)
    else
      -- e.g. out of descriptors: say so and back off instead of spinning
      log("accept:", addr)
      cqueues.sleep(0.1)
    end
  end
end)

io.stdout:setvbuf("line")
print(("listening on https://%s:%d/"):format(
  opts.host:find(":", 1, true) and "[" .. opts.host .. "]" or opts.host, bound_port))

while true do
  local ok, err = cq:loop()
  if ok then break end
  log("loop:", tostring(err))  -- a bug in a coroutine; keep serving the rest
end
