-- Trust on first use: the first time a host is seen, the SHA-256 pin of its
-- leaf's public key is written to a file; later connections must show the
-- same key. Like ssh's known_hosts, for servers without a CA you trust.
--
--   local known = tls.tofu(os.getenv("HOME") .. "/.config/myapp/known_pins")
--   tls.connect("device.lan", 8443, { insecure_noverifycert = true, policy = known })
--
-- The file has one "<host>:<port> sha256//<pin>" line per host. Updates go
-- to a temporary file in the same directory that is then renamed over the
-- old one, so a reader never sees half a file. Lua's io can neither create
-- that file exclusively nor choose its mode, so tls.core writes it
-- (core.replace_file: mkstemp, mode 0600, fsync, rename); missing parent
-- directories are made with mode 0700 (core.mkdir).

local policy = require "tls.policy"
local core = require "tls.core"

local tofu = {}

local sformat, concat = string.format, table.concat

local HEADER = "# lua-tls trust-on-first-use pins: <host>:<port> sha256//<SHA-256 of the public key>\n"

-- Reads the file into a list of {key, pin} (in file order) and a map.
-- A missing file is an empty one; anything else unreadable is an error.
local function load(path)
  local f, err, code = io.open(path, "rb")
  if not f then
    if code == 2 then return {}, {} end -- ENOENT
    return nil, "cannot read " .. tostring(err)
  end
  local text = f:read("*a")
  f:close()
  if not text then return nil, "cannot read " .. path end
  local list, map, n = {}, {}, 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    if not line:find("^%s*$") and not line:find("^%s*#") then
      local key, pin = line:match("^%s*(%S+)%s+sha256//(%S+)%s*$")
      if not key or not policy.normalize_pin(pin) then
        return nil, sformat("%s line %d is not '<host>:<port> sha256//<pin>': %q", path, n, line)
      end
      if not map[key] then list[#list + 1] = key end
      map[key] = pin
    end
  end
  return list, map
end

local ENOENT = 2

-- Makes the directories above path that are missing, each with mode 0700,
-- outermost first; -> true | nil, err (the innermost one's error).
local function make_parents(path)
  local ok, err = true, nil
  local i = 1
  while true do
    local j = path:find("/", i + 1, true)
    if not j then return ok, err end
    local dir = path:sub(1, j - 1)
    if dir ~= "" and dir ~= "." and dir ~= ".." then ok, err = core.mkdir(dir) end
    i = j
  end
end

-- Writes the pins atomically (see the top of this file).
local function save(path, list, map)
  local lines = { HEADER }
  for _, key in ipairs(list) do
    if map[key] then lines[#lines + 1] = key .. " sha256//" .. map[key] .. "\n" end
  end
  local text = concat(lines)
  local ok, err, code = core.replace_file(path, text)
  if not ok and code == ENOENT then
    -- a fresh home has no ~/.config/myapp yet
    local made, merr = make_parents(path)
    if not made then return nil, merr end
    ok, err = core.replace_file(path, text)
  end
  if not ok then return nil, err end
  return true
end

-- A short printable form of a name, for error messages.
local function quote(s)
  return '"' .. s:sub(1, 80):gsub("[%c\128-\255\"\\]", function(c)
    return ("\\x%02x"):format(c:byte())
  end) .. '"'
end

-- The name a pin is kept under: host:port when the connection was made by
-- tls.connect, else the server name (tls.wrap, engines).
local function key_of(conn, ctx)
  local host, port = ctx and ctx.host, ctx and ctx.port
  if not host then
    host = ctx and ctx.servername
    if not host then
      local ok, info = pcall(conn.info, conn)
      host = ok and info and info.servername or nil
    end
  end
  if not host or host == "" then return nil end
  host = host:lower()
  -- only name and address characters: the key is a word of a line in the
  -- file, and anything else (a newline, a space) would corrupt it
  if not (host:find("^[%w%-_.]+$") or host:find("^[%x:.]+$") or host:find("^%[[%x:.]+%]$")) then
    return nil, sformat("policy: tofu: refusing to record a pin under the host name %s "
      .. "(only letters, digits, '-', '_', '.' and IP addresses can be keys)", quote(host))
  end
  if host:find(":", 1, true) and not host:find("^%[") then host = "[" .. host .. "]" end
  if port then
    port = tostring(port)
    if not port:find("^%d+$") then
      return nil, sformat("policy: tofu: refusing to record a pin under the port %s", quote(port))
    end
    return host .. ":" .. port
  end
  return host
end

local Tofu = {}
Tofu.__index = Tofu
Tofu.__name = "tls.tofu"

function Tofu:__tostring()
  return "tls.tofu (" .. self.path .. ")"
end

-- Whether the check runs on the server side of a connection.
local function on_server(conn, ctx)
  if ctx and ctx.mode then return ctx.mode == "server" end
  local ok, mode = pcall(function() return conn:mode() end)
  return ok and mode == "server"
end

-- tofu(conn [, ctx]) -> true | nil, "policy: ..."
function Tofu:__call(conn, ctx)
  -- On a server the only name is the one the client sent (SNI): any client
  -- could pick a new one and always be "first", and grow the file at will.
  if on_server(conn, ctx) then
    return nil, "policy: tofu: pins the keys of servers a client connects to; on a server the "
      .. "only name is the one the client chose (SNI), which proves nothing: verify client "
      .. "certificates with a CA (verify_client, ca) or pin them with tls.policy{pins = ...}"
  end
  local chain, err = policy.peer_chain(conn)
  if not chain then return nil, "policy: " .. err end
  if self.base then
    local ok, why = self.base:check_chain(chain, conn, ctx)
    if not ok then return nil, why end
  end
  local key, kerr = key_of(conn, ctx)
  if kerr then return nil, kerr end
  if not key then
    return nil, "policy: tofu: no host name to record the pin under (give the connection a servername)"
  end
  local pin = chain[1].spki_sha256
  local list, map = load(self.path)
  if not list then return nil, "policy: tofu: " .. map end
  local known = map[key]
  if known == pin then return true end
  if known then
    return nil, sformat("policy: tofu: the public key of %s has changed: %s recorded "
      .. "sha256//%s, the server now shows sha256//%s. If the change is expected, delete "
      .. "the line for %s from %s (or call tofu:forget(%q)) and connect again",
      key, self.path, known, pin, key, self.path, key)
  end
  list[#list + 1], map[key] = key, pin
  local ok, werr = save(self.path, list, map)
  if not ok then return nil, "policy: tofu: cannot record the pin of " .. key .. ": " .. werr end
  if self.on_new then pcall(self.on_new, key, pin) end
  return true
end

-- tofu:lookup(key) -> "sha256//<pin>" | nil (or nil, err for a bad file)
function Tofu:lookup(key)
  local list, map = load(self.path)
  if not list then return nil, map end
  return map[key] and "sha256//" .. map[key] or nil
end

-- tofu:forget(key) -> true | nil, err. The next connection records anew.
function Tofu:forget(key)
  local list, map = load(self.path)
  if not list then return nil, map end
  if not map[key] then return true end
  map[key] = nil
  return save(self.path, list, map)
end

-- tls.tofu(path [, opts]) -> a policy. opts:
--   policy = tls.policy{...} | false   checks run first (default tls.policy.default)
--   on_new = function(key, pin)        told when a host is recorded
local function build(path, opts)
  if type(path) ~= "string" or path == "" then
    error("tls.tofu: path must be a file name, got " .. (type(path) == "string" and '""' or type(path)), 3)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("tls.tofu: options must be a table, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if k ~= "policy" and k ~= "on_new" then
      error("tls.tofu: unknown option '" .. tostring(k) .. "' (known: policy, on_new)", 3)
    end
  end
  local base = opts.policy
  if base == nil then base = policy.default end
  if base ~= false and getmetatable(base) ~= getmetatable(policy.default) then
    error("tls.tofu: option 'policy' must be a tls.policy or false, got " .. type(base), 3)
  end
  if opts.on_new ~= nil and type(opts.on_new) ~= "function" then
    error("tls.tofu: option 'on_new' must be a function, got " .. type(opts.on_new), 3)
  end
  return setmetatable({ path = path, base = base or nil, on_new = opts.on_new }, Tofu)
end

-- (build raises at the caller's line: keep both at the same call depth)
-- (no tail calls: the frame must stay for the error level)
function tofu.new(path, opts) local t = build(path, opts); return t end

return setmetatable(tofu, {
  __call = function(_, path, opts) local t = build(path, opts); return t end,
})
