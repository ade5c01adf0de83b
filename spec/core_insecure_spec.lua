-- The only opt-outs: insecure_noverifyname, insecure_noverifytime and
-- insecure_noverifycert. Each accepts exactly the failure it names.
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local peers = require "support.peers"

describe("insecure_* options", function()
  local servers = {}
  setup(function()
    pki.setup()
    for _, name in ipairs{ "alt", "expired", "self", "untrusted", "cn_only" } do
      servers[name] = peers.echo(pki[name])
    end
  end)
  teardown(function()
    for _, s in pairs(servers) do s.stop() end
    pki.cleanup()
  end)

  local function connect(name, opts)
    opts.timeout = 10
    if opts.ca_file == false then opts.ca_file = nil  -- a config = cfg brings its own
    else opts.ca_file = opts.ca_file or pki.ca.cert end
    local conn, err = tls.connect("localhost", servers[name].port, opts)
    if not conn then return nil, err end
    conn:send("ping\n")
    local line = conn:receive()
    conn:close()
    return line, err
  end

  describe("insecure_noverifyname", function()
    it("accepts a certificate for another name", function()
      assert.equal("ping", (connect("alt", { insecure_noverifyname = true })))
    end)

    it("still checks the chain and the dates", function()
      local line, err = connect("untrusted", { insecure_noverifyname = true })
      assert.is_nil(line)
      assert.is_true(tls.is_verify_error(err))
      line, err = connect("expired", { insecure_noverifyname = true })
      assert.is_nil(line)
      assert.matches("expired", err)
    end)
  end)

  describe("insecure_noverifytime", function()
    it("accepts an expired certificate", function()
      assert.equal("ping", (connect("expired", { insecure_noverifytime = true })))
    end)

    it("still checks the name and the chain", function()
      local line, err = connect("alt", { insecure_noverifytime = true })
      assert.is_nil(line)
      assert.matches("^verify: name", err)
      line, err = connect("untrusted", { insecure_noverifytime = true })
      assert.is_nil(line)
      assert.is_true(tls.is_verify_error(err))
    end)
  end)

  describe("insecure_noverifycert", function()
    it("accepts a self-signed certificate", function()
      -- its name is localhost-self: the name is still checked
      assert.equal("ping", (connect("self", { insecure_noverifycert = true, servername = "localhost-self" })))
    end)

    it("accepts a certificate from an untrusted root", function()
      assert.equal("ping", (connect("untrusted", { insecure_noverifycert = true })))
    end)

    it("still checks the name", function()
      local line, err = connect("alt", { insecure_noverifycert = true })
      assert.is_nil(line)
      assert.matches("^verify: name", err)
    end)

    it("with insecure_noverifyname too, accepts anything", function()
      assert.equal("ping", (connect("alt",
        { insecure_noverifycert = true, insecure_noverifyname = true, ca_file = pki.other_ca.cert })))
    end)
  end)

  describe("given as config = tls.config{...}", function()
    -- the conn cannot see the options then: the config says what it turned off
    it("tells what it turned off", function()
      local cfg = assert(tls.config{ insecure_noverifycert = true, insecure_noverifytime = true })
      assert.same({ true, false, true }, { cfg:insecure() })
      assert.same({ false, false, false }, { assert(tls.config{}):insecure() })
    end)

    it("skips the default policy when the config skips verification, as the options do", function()
      local relaxed = assert(tls.config{ insecure_noverifycert = true, ca_file = pki.ca.cert })
      assert.equal("ping", (connect("cn_only", { config = relaxed, ca_file = false })))
      local strict = assert(tls.config{ ca_file = pki.ca.cert })
      local line, err = connect("cn_only", { config = strict, ca_file = false })
      assert.is_nil(line)
      assert.is_true(tls.is_policy_error(err), err)
    end)
  end)

  it("each failure is rejected without the option (control)", function()
    for name, pattern in pairs{ alt = "not present", expired = "expired",
        self = libtls.detail("self_signed"), untrusted = "local issuer" } do
      local line, err = connect(name, { servername = name == "self" and "localhost-self" or nil })
      assert.is_nil(line)
      assert.is_true(tls.is_verify_error(err), err)
      assert.matches(pattern, err)
    end
  end)
end)
