-- The descriptors the module makes are close-on-exec and non-blocking
-- whichever system-call path built them (socket flags and accept4, or
-- socket/accept + fcntl under `make PORTABLE=1`, as on macOS), and a
-- PORTABLE=1 build really is one (mk/portable.mk sets LTLS_EXPECT_PORTABLE).

local tls = require "tls"
local core = require "tls.core"
local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"

local O_NONBLOCK, O_CLOEXEC = 2048, 524288   -- Linux's octal 04000, 02000000

-- The open flags of descriptor fd of this process, from /proc.
local function flags(fd)
  local f = assert(io.open(("/proc/%d/fdinfo/%d"):format(proc.my_pid(), fd)))
  local text = f:read("*a")
  f:close()
  return tonumber(assert(text:match("flags:%s*(%d+)")), 8)
end

local function has(value, bit)
  return value % (2 * bit) >= bit
end

local function assert_cloexec_nonblock(fd, what)
  local fl = flags(fd)
  assert(has(fl, O_CLOEXEC), what .. " is not close-on-exec")
  assert(has(fl, O_NONBLOCK), what .. " is not non-blocking")
end

describe("descriptors", function()
  setup(function() pki.setup() end)

  it("the build is the one asked for (tls.core.portable)", function()
    assert.equal(os.getenv("LTLS_EXPECT_PORTABLE") == "1", core.portable)
  end)

  it("of a listener, an accepted conn and a connected conn are close-on-exec and non-blocking", function()
    local l = assert(tls.listen("127.0.0.1", 0, { cert_file = pki.server.cert, key_file = pki.server.key }))
    local _, port = l:getsockname()
    assert_cloexec_nonblock(l:getfd(), "the listener")
    local client = peers.s_client(port, "-CAfile " .. pki.ca.cert, "")
    local conn = assert(l:accept(10))
    assert_cloexec_nonblock(conn:getfd(), "an accepted conn")
    conn:close()
    client.wait(10)
    l:close()

    local srv = peers.echo(pki.server)
    local c = assert(tls.connect("127.0.0.1", srv.port, { ca_file = pki.ca.cert, timeout = 10 }))
    assert_cloexec_nonblock(c:getfd(), "a connected conn")
    assert(c:send("ping\n"))
    assert.equal("ping", c:receive("*l"))
    c:close()
    srv.stop()
  end)

  it("PEM text is told from other data by its -----BEGIN line (memmem)", function()
    assert(tls.config { ca = pki.read(pki.ca.cert) })
    local cfg, err = tls.config { ca = "no certificate here" }
    assert.is_nil(cfg)
    assert.matches("no %-%-%-%-%-BEGIN CERTIFICATE", err)
  end)
end)
