-- examples/https_server.lua: the concurrent HTTPS server on cqueues, run as a
-- background process and driven by real clients in other processes.
local tls = require "tls"
local pki = require "support.pki"
local proc = require "support.proc"
local socket = require "socket"

local CURL = "curl --noproxy '*' -s --max-time 30"

describe("examples/https_server.lua", function()
  local server, port

  setup(function()
    pki.setup()
    port = proc.free_port()
    server = proc.start((proc.lua .. " examples/https_server.lua --port %d --cert %s --key %s "
      .. "--handshake-timeout 5 --idle-timeout 10"):format(port, pki.server.cert, pki.server.key),
      { port = port })
  end)

  teardown(function()
    local log = server.output()
    server.stop()
    pki.cleanup()
    -- grep-able: `make check-yield` looks for the boundary error in all output
    io.write("\nhttps_server log: ", #log, " bytes; ",
      log:find("C-call boundary", 1, true) and "MENTIONS a C-call boundary" or "no C-call boundary", "\n")
  end)

  it("prints the port when ready", function()
    assert.matches("listening on https://127%.0%.0%.1:" .. port .. "/", server.output())
  end)

  it("serves 200 cqueues clients at once, each its own responses over keep-alive", function()
    local out, status = proc.run(("timeout 120 " .. proc.lua .. " spec/peers/https_clients.lua %d 200 %s 2")
      :format(port, pki.ca.cert))
    assert.equal(0, status, out)
    assert.matches("ok 200 of 200, all 200 connected at once", out)
  end)

  it("serves 200 curl processes in parallel, each its own response", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    finally(function() os.execute("rm -rf " .. dir) end)
    local out, status = proc.run(("(seq 1 200 | xargs -P 200 -I{} sh -c \"%s --cacert %s "
      .. "https://localhost:%d/curl/{} --resolve localhost:%d:127.0.0.1 -o %s/{}\")")
      :format(CURL, pki.ca.cert, port, port, dir))
    assert.equal(0, status, out)
    local bad = {}
    for i = 1, 200 do
      local f = io.open(dir .. "/" .. i, "rb")
      local body = f and f:read("*a")
      if f then f:close() end
      if body ~= "GET /curl/" .. i .. "\n" then bad[#bad + 1] = i .. ": " .. tostring(body) end
    end
    assert.same({}, bad)
  end)

  it("keeps the connection alive between requests and honours Connection: close", function()
    local out = proc.run(("%s -v --cacert %s --resolve localhost:%d:127.0.0.1 "
      .. "https://localhost:%d/one https://localhost:%d/two -d body"):format(CURL, pki.ca.cert,
      port, port, port))
    assert.matches("POST /one\nbody", out)
    assert.matches("POST /two\nbody", out)
    assert.matches("Re%-using existing connection", out)
    assert.matches("Connection: keep%-alive", out)
    out = proc.run(("%s -v --cacert %s --resolve localhost:%d:127.0.0.1 -H 'Connection: close' "
      .. "https://localhost:%d/bye"):format(CURL, pki.ca.cert, port, port))
    assert.matches("Connection: close", out)
    assert.matches("GET /bye", out)
  end)

  it("answers a malformed request with 400 and closes", function()
    local c = assert(tls.connect("127.0.0.1", port, { ca_file = pki.ca.cert,
      servername = "localhost", timeout = 10 }))
    assert(c:send("NONSENSE\r\n\r\n"))
    assert.equal("HTTP/1.1 400 Bad Request", c:receive("*l"))
    local rest = c:receive("*a")
    assert.matches("Connection: close", rest)
    c:close()
  end)

  it("times out a handshake that stalls midway, for that connection only", function()
    -- a real ClientHello; the server answers with its flight and then waits
    -- for our Finished, which never comes
    local e = assert(tls.engine { mode = "client", ca_file = pki.ca.cert, servername = "localhost" })
    e:handshake()
    local hello = e:drain()
    local raw = assert(socket.connect("127.0.0.1", port))
    finally(function() raw:close() end)
    local _, stalled_port = raw:getsockname()
    assert(raw:send(hello))
    raw:settimeout(10)
    local head = assert(raw:receive(5))
    local kind, l1, l2 = head:byte(1), head:byte(4, 5)
    local len = l1 * 256 + l2
    assert.equal(22, kind)  -- a handshake record...
    assert.equal(2, assert(raw:receive(len)):byte(1))  -- ...holding the ServerHello
    -- meanwhile everyone else is served
    local out, status = proc.run(("timeout 60 " .. proc.lua .. " spec/peers/https_clients.lua %d 20 %s 1")
      :format(port, pki.ca.cert))
    assert.equal(0, status, out)
    assert.matches("ok 20 of 20", out)
    -- all 20 finished while the stalled connection is still open: it held
    -- up nobody, and nobody's progress cut it short
    raw:settimeout(0)
    local _, err_now = raw:receive("*a")
    assert.equal("timeout", err_now, "the stalled connection was dropped before the others finished")
    assert.not_matches("handshake with 127%.0%.0%.1 " .. stalled_port .. " failed", server.output())
    -- and it is dropped once its 5 s handshake timeout passes
    raw:settimeout(15)
    local _, err = raw:receive("*a")
    assert.are_not.equal("timeout", err)  -- "*a" ended because the server closed it
    local log
    for _ = 1, 50 do
      log = server.output()
      if log:find("failed: timeout", 1, true) then break end
      proc.sleep(0.1)
    end
    assert.matches("handshake with 127%.0%.0%.1 " .. stalled_port .. " failed: timeout", log)
  end)

  it("never reports a yield across a C-call boundary in the server's output", function()
    local log = server.output()
    assert.is_true(#log > 0)
    assert.is_nil(log:find("C-call boundary", 1, true), log)
  end)
end)
