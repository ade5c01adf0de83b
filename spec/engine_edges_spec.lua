-- Engine edge cases of the core's lifecycle: failures are final, a closed
-- engine says so, and close() queues close_notify even on a full queue.
local tls = require "tls"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"

describe("engine lifecycle", function()
  setup(pki.setup)
  teardown(function() pki.cleanup() end)

  local function pair(opts)
    local c, s = E.pair({ buffer_limit = opts and opts.buffer_limit })
    assert(E.handshake(c, s))
    return c, s
  end

  it("repeats the first TLS failure after the handshake instead of a stale libtls text", function()
    local c = pair()
    -- a record with a bad MAC: an application-data header and garbage
    c:feed("\23\3\3\0\64" .. ("\0"):rep(64))
    local data, err = c:receive(1)
    assert.is_nil(data)
    assert.matches("^receive: ", err)
    assert.not_matches("Success", err)
    local _, again = c:receive(1)
    assert.equal(err, again)
    local _, on_send = c:send("x")
    assert.equal(err, on_send)
  end)

  it("after a failed decrypt, send and receive return that failure without calling libtls", function()
    -- (LibreSSL's libtls keeps writing after a failed decrypt: the module
    -- must not rely on the library to refuse)
    local c, s = pair()
    c:feed("\23\3\3\0\64" .. ("\0"):rep(64))
    local _, err = c:receive(1)
    assert.matches("^receive: ", err)
    c:drain()                           -- whatever alert libtls queued
    assert.same({ nil, err, 0 }, { c:send("must not go out") })
    assert.same({ nil, err, "pre" }, { c:receive("*l", "pre") })
    assert.equal(0, (c:pending()))      -- no record was written
    s:close()
  end)

  it("until the certificate policy has run, receive and send refuse and hand the prefix back", function()
    local c, s = pair()
    c:setcheck(function() return true end)  -- what a policy option leaves before handshake()
    s:send("line\n")
    E.move(s, c)
    local data, err, partial = c:receive("*l", "pre")
    assert.is_nil(data)
    assert.matches("^policy: the certificate policy has not run yet", err)
    assert.equal("pre", partial)
    assert.same({ nil, "policy: the certificate policy has not run yet; call conn:handshake() before send()", 0 },
      { c:send("x") })
    assert.is_true(c:handshake())  -- runs it
    assert.equal("preline", c:receive("*l", "pre"))
  end)

  it("feed() on a closed engine returns nil, \"closed\" and takes nothing", function()
    local c = pair()
    local _, before = c:pending()
    c:close()
    assert.same({ nil, "closed" }, { c:feed("bytes") })
    local _, after = c:pending()
    assert.equal(before, after)
  end)

  it("still prints as an engine after close", function()
    local c = pair()
    c:close()
    assert.matches("^tls%.engine %(client, closed%)", tostring(c))
  end)

  it("\"*a\" gathers records of every size until close_notify, and hands over the partial result with \"wantread\" before it", function()
    local c, s = pair()
    local sent, got = {}, {}
    for i = 1, 30 do
      local part = string.char(65 + i % 26):rep(i * 997 % 20000 + 1)  -- 1 byte to 2 records
      sent[#sent + 1] = part
      assert.equal(#part, s:send(part))
      E.move(s, c)
      if i % 3 == 0 then  -- leaves the rest of a record in the conn's buffer
        assert.equal(part:sub(1, 7), c:receive(7))
        sent[#sent] = part:sub(8)
      end
      local data, err, partial = c:receive("*a")
      assert.is_nil(data)
      assert.equal("wantread", err)
      got[#got + 1] = partial
    end
    assert.equal(table.concat(sent), table.concat(got))
    assert.equal(#sent, #got)
    for i = 1, #sent do assert.equal(#sent[i], #got[i]) end
    s:send("the end")
    s:close()
    E.move(s, c)
    assert.equal("the end", c:receive("*a"))
  end)

  it("queues close_notify on close() even when the output queue is full", function()
    local c, s = pair({ buffer_limit = 16896 })
    local chunk = ("x"):rep(4096)
    local sent, full = 0, false
    for _ = 1, 64 do  -- fill the client's output queue without draining it
      local last, err = c:send(chunk)
      if not last then assert.equal("wantwrite", err); full = true; break end
      sent = sent + #chunk
    end
    assert.is_true(full, "the output queue never filled")
    assert.is_true(c:close())
    s:feed(c:drain())
    local got = s:receive("*a")  -- ends cleanly only if close_notify arrived
    assert.is_string(got)
    assert.is_true(#got >= sent)
  end)
end)
