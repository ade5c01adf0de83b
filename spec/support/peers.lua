-- Real peers for the core specs, each on a free loopback port: the module's
-- own echo server, a scripted module server, openssl s_server and
-- s_client, and child Lua processes. Every handle has stop(); specs call it
-- in finally() or teardown().

local proc = require "support.proc"

local peers = {}
-- the Lua running the suite, for the specs that start a Lua peer themselves
peers.LUA = proc.lua

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
peers.quote = quote

-- A server script of spec/peers run as `lua5.4 spec/peers/SCRIPT PORT
-- CERT KEY [ARGS...]` (nil arguments are left out) on `port`.
function peers.lua_server_on(port, script, keypair, ...)
  local cmd = { (proc.lua .. " spec/peers/%s %d %s %s"):format(script, port,
    quote(keypair.cert), quote(keypair.key)) }
  for i = 1, select("#", ...) do
    local arg = select(i, ...)
    if arg ~= nil then cmd[#cmd + 1] = quote(arg) end
  end
  local h = proc.start(table.concat(cmd, " "), { port = port })
  h.port = port
  return h
end

-- The same on a free port.
function peers.lua_server(script, keypair, ...)
  return peers.lua_server_on(proc.free_port(), script, keypair, ...)
end

-- The module's line echo server (spec/peers/echo_server.lua).
-- extra: Lua table literal of listen options, e.g. '{alpn={"http/1.1"}}';
-- port: where it listens (default a free port).
function peers.echo(keypair, extra, port)
  return peers.lua_server_on(port or proc.free_port(), "echo_server.lua", keypair, extra)
end

-- A module server that runs `handler` (Lua source of a function(conn, tls))
-- for each connection.
function peers.scripted(keypair, handler, extra)
  return peers.lua_server("scripted_server.lua", keypair, handler, extra)
end

-- An HTTPS server on Python's ssl module (spec/peers/tls_end_server.py)
-- that ends each response with close_notify or with a bare TCP close, as
-- the request path says: GET /<close|length|chunked>/<notify|cut|reset>.
function peers.tls_end(keypair)
  local port = proc.free_port()
  local h = proc.start(("python3 spec/peers/tls_end_server.py %d %s %s notify"):format(port,
    quote(keypair.cert), quote(keypair.key)), { port = port })
  h.port = port
  return h
end

-- openssl s_server in -rev mode (each line comes back reversed). args: extra
-- command-line arguments as one string. host: "127.0.0.1" (default) or "::1".
function peers.s_server(keypair, args, host)
  local port = proc.free_port()
  host = host or "127.0.0.1"
  local accept = host:find(":") and ("[" .. host .. "]:" .. port) or (host .. ":" .. port)
  local cmd = ("openssl s_server -rev -quiet -accept %s -cert %s -key %s %s"):format(
    accept, quote(keypair.cert), quote(keypair.key), args or "")
  local h = proc.start(cmd, { port = port, host = host })
  h.port = port
  return h
end

-- openssl s_server -WWW: serves the files of directory `dir` as HTTP/1.0.
function peers.s_server_www(keypair, dir)
  local port = proc.free_port()
  local h = proc.start(("env -C %s openssl s_server -WWW -quiet -accept 127.0.0.1:%d -cert %s -key %s")
    :format(quote(dir), port, quote(keypair.cert), quote(keypair.key)), { port = port })
  h.port = port
  return h
end

-- openssl s_client in the background against 127.0.0.1:port, reading its
-- standard input from the string `input`; handle.wait() returns its output.
function peers.s_client(port, args, input)
  return proc.start(("openssl s_client -connect 127.0.0.1:%d %s"):format(port, args or ""),
    { input = input })
end

-- Run Lua source in a fresh lua5.4 (module path set, no LuaSocket loaded
-- unless the code loads it, SIGPIPE at its default even when this process
-- ignores it); returns its output and exit status (a death by signal shows
-- as 128 + signal number, as in the shell).
function peers.lua(code, args)
  local file = os.tmpname()
  local f = assert(io.open(file, "wb"))
  f:write(code)
  f:close()
  local out, status = proc.run("env --default-signal=PIPE " .. proc.lua .. " " .. file .. " " .. (args or ""))
  os.remove(file)
  return out, status
end

-- For a describe block: a peer of the test PKI started in setup by
-- start(pki) -> handle (then started(handle) keeps what the block needs),
-- stopped in teardown, after the tls.https pool (when loaded) is cleared.
function peers.fixture(start, started)
  local busted = require "busted"
  local pki = require "support.pki"
  local h
  busted.setup(function()
    pki.setup()
    h = start(pki)
    started(h)
  end)
  busted.teardown(function()
    local https = package.loaded["tls.https"]
    if https then https.pool_clear() end
    if h then h.stop() end
  end)
end

-- Cleanups for the running test: busted keeps only the last finally() of a
-- test, so specs that open several things call peers.defer(fn) for each and
-- after_each(peers.run_deferred) runs them all, newest first.
local deferred = {}
function peers.defer(fn)
  deferred[#deferred + 1] = fn
end
function peers.run_deferred()
  for i = #deferred, 1, -1 do
    local fn = deferred[i]
    deferred[i] = nil
    pcall(fn)
  end
end

-- Random bytes from the kernel.
function peers.random(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local s = f:read(n)
  f:close()
  return s
end

return peers
