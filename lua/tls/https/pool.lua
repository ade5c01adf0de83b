-- Idle keep-alive connections for tls.https, keyed by everything that makes
-- two connections interchangeable (scheme, host, port, proxy, TLS settings,
-- policy). Bounded per key and in total; connections idle longer than
-- idle_timeout are closed, and each one is checked for a peer close before
-- it is handed out again.

local pool = {}
local P = {}
P.__index = P

function pool.new(opts, now)
  local p = setmetatable({ idle = {}, count = 0, now = now }, P)
  p:configure(opts or {})
  p:reset_stats()
  return p
end

function P:configure(opts)
  local function num(name, default)
    local v = opts[name]
    if v == nil then return self[name] or default end
    if type(v) ~= "number" or v < 0 or v ~= v then
      error("tls.https.pool_options: '" .. name .. "' must be a non-negative number", 4)
    end
    return v
  end
  self.max_per_host = num("max_per_host", 6)
  self.max_idle = num("max_idle", 64)
  self.idle_timeout = num("idle_timeout", 30)
  self:sweep()
end

function P:reset_stats()
  self.stats = { connections_opened = 0, reused = 0, requests = 0, expired = 0,
    discarded = 0, retried = 0 }
end

local function shut(conn)
  conn:settimeout(0)   -- one close_notify attempt, never a wait
  conn:close()
end

-- Close what has been idle too long, and trim to the bounds.
function P:sweep()
  local now = self.now()
  for key, list in pairs(self.idle) do
    for i = #list, 1, -1 do
      if now - list[i].since > self.idle_timeout then
        shut(table.remove(list, i).conn)
        self.count = self.count - 1
        self.stats.expired = self.stats.expired + 1
      end
    end
    while #list > self.max_per_host do
      shut(table.remove(list, 1).conn)
      self.count = self.count - 1
    end
    if #list == 0 then self.idle[key] = nil end
  end
end

-- A connection the peer has not closed: a zero-timeout read must find
-- nothing (TLS: "wantread"; LuaSocket: "timeout"). A tls.over conn reads
-- nothing at timeout 0: it has probe() for this.
local function alive(conn)
  if conn.probe then return conn:probe() end
  conn:settimeout(0)
  local data, err, part = conn:receive(1)
  return data == nil and (part == nil or part == "")
    and (err == "wantread" or err == "wantwrite" or err == "timeout")
end

-- pool:get(key) -> conn | nil (the most recently used live one)
function P:get(key)
  local list = self.idle[key]
  local now = self.now()
  while list and #list > 0 do
    local entry = table.remove(list)
    self.count = self.count - 1
    if now - entry.since <= self.idle_timeout and alive(entry.conn) then
      if #list == 0 then self.idle[key] = nil end
      self.stats.reused = self.stats.reused + 1
      return entry.conn
    end
    if now - entry.since > self.idle_timeout then
      self.stats.expired = self.stats.expired + 1
    else
      self.stats.discarded = self.stats.discarded + 1
    end
    shut(entry.conn)
  end
  self.idle[key] = nil
  return nil
end

-- pool:put(key, conn): keep an idle connection (or close it when the pool is
-- full or keeps none).
function P:put(key, conn)
  if self.max_per_host < 1 or self.max_idle < 1 then
    shut(conn)
    return
  end
  local list = self.idle[key]
  if not list then list = {}; self.idle[key] = list end
  list[#list + 1] = { conn = conn, since = self.now() }
  self.count = self.count + 1
  if #list > self.max_per_host then
    shut(table.remove(list, 1).conn)
    self.count = self.count - 1
  end
  while self.count > self.max_idle do
    -- drop the oldest idle connection anywhere
    local okey, oi, osince
    for k, l in pairs(self.idle) do
      for i, e in ipairs(l) do
        if not osince or e.since < osince then okey, oi, osince = k, i, e.since end
      end
    end
    if not okey then break end
    shut(table.remove(self.idle[okey], oi).conn)
    if #self.idle[okey] == 0 then self.idle[okey] = nil end
    self.count = self.count - 1
  end
end

function P:clear()
  for _, list in pairs(self.idle) do
    for _, e in ipairs(list) do shut(e.conn) end
  end
  self.idle, self.count = {}, 0
end

function P:snapshot()
  local s = {}
  for k, v in pairs(self.stats) do s[k] = v end
  s.idle = self.count
  s.max_per_host, s.max_idle, s.idle_timeout = self.max_per_host, self.max_idle, self.idle_timeout
  return s
end

return pool
