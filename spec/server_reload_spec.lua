-- listener:reload(new): new handshakes use the new certificates, while
-- connections accepted before keep working on the old ones.

local tls = require "tls"
local socket = require "socket"
local kit = require "support.server_kit"

local P

-- A client and the server's side of it, both in this process: the two
-- handshakes are driven without blocking until both are done.
local function handshake_both(client, server)
  local cdone, sdone
  for _ = 1, 5000 do
    if not cdone then
      local ok, err = client:handshake()
      if ok then cdone = true
      elseif err ~= "wantread" and err ~= "wantwrite" then error("client: " .. err) end
    end
    if not sdone then
      local ok, err = server:handshake()
      if ok then sdone = true
      elseif err ~= "wantread" and err ~= "wantwrite" then error("server: " .. err) end
    end
    if cdone and sdone then break end
    socket.sleep(0.001)
  end
  assert(cdone and sdone, "handshakes did not finish")
  client:settimeout(5)
  server:settimeout(5)
  return client, server
end

-- Connected and accepted (accept_raw), no handshake yet.
local function accepted(listener, port, opts)
  local sock = assert(socket.connect("127.0.0.1", port))
  local o = { ca_file = P.ca, servername = "localhost", timeout = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local client = assert(tls.wrap(sock, o))
  local server = assert(listener:accept_raw(5))
  server:settimeout(0)
  return client, server
end

local function pair(listener, port, opts)
  return handshake_both(accepted(listener, port, opts))
end

local function exchange(client, server, text)
  assert.equal(#text + 1, client:send(text .. "\n"))
  assert.equal(text, server:receive("*l"))
  assert.equal(#text + 1, server:send(text .. "\n"))
  assert.equal(text, client:receive("*l"))
end

describe("listener:reload", function()
  local listener, port
  lazy_setup(function() P = kit.setup() end)
  lazy_teardown(function() kit.teardown() end)
  before_each(function()
    port = kit.proc.free_port()
    listener = assert(tls.listen("127.0.0.1", port,
      { cert_file = P.server.cert, key_file = P.server.key }))
  end)
  after_each(function() listener:close() end)

  it("keeps open connections and presents the new certificate to new ones", function()
    local old_client, old_server = pair(listener, port)
    assert.equal("/CN=localhost", old_client:peer().subject)
    exchange(old_client, old_server, "before")

    assert.is_true(listener:reload({ cert_file = P.rsa.cert, key_file = P.rsa.key }))

    -- the connection accepted before the reload still works both ways
    exchange(old_client, old_server, "after")
    -- a new handshake gets the new certificate, in-process and from openssl
    local new_client, new_server = pair(listener, port)
    assert.equal("/CN=rsa.localhost", new_client:peer().subject)
    exchange(new_client, new_server, "new")
    exchange(old_client, old_server, "still")
    for _, c in ipairs({ old_client, old_server, new_client, new_server }) do c:close() end

    local h = kit.proc.start(("openssl s_client -connect 127.0.0.1:%d -servername localhost"):format(port))
    local conn = assert(listener:accept(5))
    conn:close()
    assert.matches("subject=CN = rsa.localhost", h.wait(5), 1, true)
  end)

  it("takes a tls.config, and its SNI keypairs", function()
    local cfg = assert(tls.config({ cert_file = P.server.cert, key_file = P.server.key,
      keypairs = { { cert_file = P.alt.cert, key_file = P.alt.key } } }))
    assert.is_true(listener:reload(cfg))
    local client, server = pair(listener, port, { servername = "alt.test" })
    assert.equal("/CN=alt.test", client:peer().subject)
    assert.equal(2, (server:keypair()))
    client:close()
    server:close()
  end)

  it("a conn accepted before a reload but handshaked after gets the old certificate", function()
    -- accept_raw gives the connection its server context at accept time;
    -- the handshake that follows the reload still runs on that context
    local client, server = accepted(listener, port)
    assert.is_true(listener:reload({ cert_file = P.rsa.cert, key_file = P.rsa.key }))
    handshake_both(client, server)
    assert.equal("/CN=localhost", client:peer().subject)
    assert.equal(1, (server:keypair()))
    assert.equal("CN=localhost", select(2, server:keypair()).subject)
    exchange(client, server, "late")
    -- one accepted after the reload gets the new one
    local new_client, new_server = pair(listener, port)
    assert.equal("/CN=rsa.localhost", new_client:peer().subject)
    for _, c in ipairs({ client, server, new_client, new_server }) do c:close() end
  end)

  it("an old connection's keypair() still describes the config it was accepted with", function()
    assert.is_true(listener:reload({ cert_file = P.server.cert, key_file = P.server.key,
      keypairs = { { cert_file = P.alt.cert, key_file = P.alt.key } } }))
    local old_client, old_server = pair(listener, port, { servername = "alt.test" })
    local index, details = old_server:keypair()
    assert.equal(2, index)
    assert.equal("CN=alt.test", details.subject)

    assert.is_true(listener:reload({ cert_file = P.rsa.cert, key_file = P.rsa.key }))
    index, details = old_server:keypair()
    assert.equal(2, index)
    assert.equal("CN=alt.test", details.subject)
    assert.equal("alt.test", details.servername)
    exchange(old_client, old_server, "after")
    -- the new config has one keypair: a new alt.test client gets the default
    local new_client, new_server = pair(listener, port, { servername = "alt.test", insecure_noverifyname = true })
    index, details = new_server:keypair()
    assert.equal(1, index)
    assert.equal("CN=rsa.localhost", details.subject)
    for _, c in ipairs({ old_client, old_server, new_client, new_server }) do c:close() end
  end)

  it("a bad reload returns nil and an error, and the old certificate stays", function()
    local ok, err = listener:reload({ cert_file = P.rsa.cert, key_file = P.server.key })
    assert.is_nil(ok)
    assert.matches("does not form a usable keypair", err, 1, true)
    ok, err = listener:reload({ ca_file = P.ca })
    assert.is_nil(ok)
    assert.matches("no certificate", err, 1, true)
    local client, server = pair(listener, port)
    assert.equal("/CN=localhost", client:peer().subject)
    exchange(client, server, "same")
    client:close()
    server:close()
  end)
end)
