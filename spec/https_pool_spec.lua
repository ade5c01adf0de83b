-- tls.https.pool, the keep-alive pool of tls.https, on its own: bounds per
-- key and in total, idle expiry and the liveness check on get. The
-- connections are stand-ins that record what the pool did to them, and the
-- clock is a variable, so expiry needs no sleeping (the pool over real
-- connections is covered in https_spec.lua).

local pool = require "tls.https.pool"

-- A connection the pool can check and close: receive() answers as an idle
-- TLS connection does ("wantread"), as one the peer closed, or with bytes
-- nobody asked for. The pool must never wait on an idle connection: both
-- calls insist on settimeout(0) first, where a real one would block.
local function fake_conn(name)
  local c = { name = name, closed = false, peer_closed = false }
  function c:settimeout(t) self.timeout = t end
  function c:close()
    assert(self.timeout == 0, "the pool closed a connection without settimeout(0)")
    self.closed = true
    return true
  end
  function c:receive()
    assert(self.timeout == 0, "the pool read an idle connection without settimeout(0)")
    if self.peer_closed then return nil, "closed" end
    if self.unread then return self.unread:sub(1, 1) end
    return nil, "wantread"
  end
  return c
end

describe("tls.https.pool", function()
  local t, p
  local function clock() return t end

  before_each(function()
    t = 1000
    p = pool.new({}, clock)
  end)

  it("has bounded defaults", function()
    local s = p:snapshot()
    assert.equal(6, s.max_per_host)
    assert.equal(64, s.max_idle)
    assert.equal(30, s.idle_timeout)
    assert.equal(0, s.idle)
  end)

  it("hands back the most recently used live connection for a key, and only for that key", function()
    local a, b = fake_conn("a"), fake_conn("b")
    p:put("k", a)
    t = t + 1
    p:put("k", b)
    assert.is_nil(p:get("other"))
    assert.equal(b, p:get("k"))
    assert.equal(a, p:get("k"))
    assert.is_nil(p:get("k"))
    assert.is_false(a.closed or b.closed)
    assert.equal(2, p:snapshot().reused)
    assert.equal(0, p:snapshot().idle)
  end)

  it("keeps at most max_per_host idle connections per key, closing the oldest", function()
    p:configure { max_per_host = 2 }
    local c = {}
    for i = 1, 3 do
      c[i] = fake_conn(i)
      p:put("k", c[i])
      t = t + 1
    end
    assert.is_true(c[1].closed)
    assert.is_false(c[2].closed)
    assert.is_false(c[3].closed)
    assert.equal(2, p:snapshot().idle)
    -- another key has its own allowance
    p:put("k2", fake_conn("x"))
    assert.equal(3, p:snapshot().idle)
    assert.equal(c[3], p:get("k"))
    assert.equal(c[2], p:get("k"))
    assert.is_nil(p:get("k"))
  end)

  it("keeps at most max_idle across all keys, closing the oldest anywhere", function()
    p:configure { max_idle = 3 }
    local c = {}
    for i = 1, 4 do
      c[i] = fake_conn(i)
      p:put("host" .. i, c[i])
      t = t + 1
    end
    assert.equal(3, p:snapshot().idle)
    assert.is_true(c[1].closed)
    assert.is_nil(p:get("host1"))
    for i = 2, 4 do
      assert.is_false(c[i].closed)
      assert.equal(c[i], p:get("host" .. i))
    end
  end)

  it("keeps nothing with max_idle = 0 or max_per_host = 0", function()
    p:configure { max_idle = 0 }
    local a = fake_conn("a")
    p:put("k", a)
    assert.is_true(a.closed)
    assert.equal(0, p:snapshot().idle)
    p:configure { max_idle = 64, max_per_host = 0 }
    local b = fake_conn("b")
    p:put("k", b)
    assert.is_true(b.closed)
    assert.is_nil(p:get("k"))
  end)

  it("closes a connection idle longer than idle_timeout when it is asked for", function()
    p:configure { idle_timeout = 10 }
    local old, fresh = fake_conn("old"), fake_conn("fresh")
    p:put("k", old)
    t = t + 5
    p:put("k2", fresh)
    t = t + 6          -- old: 11 s idle, fresh: 6 s
    assert.is_nil(p:get("k"))
    assert.is_true(old.closed)
    assert.equal(1, p:snapshot().expired)
    assert.equal(fresh, p:get("k2"))
    assert.is_false(fresh.closed)
    assert.equal(0, p:snapshot().idle)
  end)

  it("skips an expired connection and returns a live one behind it", function()
    p:configure { idle_timeout = 10 }
    local a, b = fake_conn("a"), fake_conn("b")
    p:put("k", a)
    t = t + 8
    p:put("k", b)
    t = t + 3          -- a: 11 s idle, b: 3 s
    assert.equal(b, p:get("k"))   -- the most recent one first
    assert.equal(0, p:snapshot().expired)
    assert.is_nil(p:get("k"))
    assert.is_true(a.closed)
    assert.equal(1, p:snapshot().expired)
  end)

  it("discards a connection the peer closed while it waited", function()
    local a = fake_conn("a")
    p:put("k", a)
    a.peer_closed = true
    assert.is_nil(p:get("k"))
    assert.is_true(a.closed)
    local s = p:snapshot()
    assert.equal(1, s.discarded)
    assert.equal(0, s.reused)
  end)

  it("discards a connection with bytes waiting that no request asked for", function()
    local a = fake_conn("a")
    p:put("k", a)
    a.unread = "HTTP/1.1 408 Request Timeout\r\n"
    assert.is_nil(p:get("k"))
    assert.is_true(a.closed)
    assert.equal(1, p:snapshot().discarded)
  end)

  it("applies new bounds to what is already idle", function()
    local c = {}
    for i = 1, 4 do
      c[i] = fake_conn(i)
      p:put("k", c[i])
      t = t + 1
    end
    p:configure { max_per_host = 1 }
    assert.equal(1, p:snapshot().idle)
    assert.is_true(c[1].closed and c[2].closed and c[3].closed)
    assert.equal(c[4], p:get("k"))
    -- and a shorter idle_timeout sweeps at once
    local d = fake_conn("d")
    p:put("k", d)
    t = t + 5
    p:configure { idle_timeout = 2 }
    assert.is_true(d.closed)
    assert.equal(0, p:snapshot().idle)
  end)

  it("clear() closes every idle connection", function()
    local a, b = fake_conn("a"), fake_conn("b")
    p:put("k", a)
    p:put("k2", b)
    p:clear()
    assert.is_true(a.closed and b.closed)
    assert.equal(0, p:snapshot().idle)
    assert.is_nil(p:get("k"))
  end)

  it("rejects a bad bound, naming it", function()
    assert.has_error(function() p:configure { max_idle = -1 } end,
      "tls.https.pool_options: 'max_idle' must be a non-negative number")
    assert.has_error(function() p:configure { idle_timeout = "soon" } end,
      "tls.https.pool_options: 'idle_timeout' must be a non-negative number")
  end)
end)
