-- An opt-in cookie jar for tls.https (RFC 6265): https.cookiejar([file])
-- makes one, cookies = jar on a request uses it (every hop, redirects
-- included, stores what Set-Cookie says and sends what matches).
--
--   jar:header_for(url_table [, now]) -> "a=1; b=2" | nil
--   jar:store(url_table, set_cookie_values [, now])
--   jar:list() -> { {name, value, domain, path, host_only, secure, http_only, expires}, ... }
--   jar:save([file]) / jar:load(file) -> true | nil, err ; jar:clear()
--
-- Rules kept: host-only cookies (no Domain attribute) go back only to
-- their host; a Domain must domain-match the host, and may not be a bare
-- top-level name ("com") or, for an IP address, anything but the address;
-- the default path is the request path's directory; Secure cookies are
-- neither set by nor sent over plain http, nor shadowed or deleted from it
-- (RFC 6265bis); Max-Age wins over Expires, and a
-- past date deletes. HttpOnly is kept (there is no script here to hide it
-- from). Limits: 4096 bytes per cookie, 180 per domain, 3000 in a jar (the
-- oldest go first).

local compat = require "tls.compat"
local core = require "tls.core"

local cookies = {}

local MAX_COOKIE = 4096
local MAX_COOKIES = 3000
local MAX_PER_DOMAIN = 180
-- RFC 6265bis 5.6.1/5.6.2: a cookie lives at most 400 days. It also keeps
-- expiry times whole numbers the jar file can hold (a Max-Age of 20
-- digits was 1e+20, a line the loader refused).
local MAX_LIFETIME = 400 * 86400

local ENOENT = 2  -- (errno, the same on Linux, the BSDs and macOS)

local J = {}
J.__index = J

function cookies.new(file)
  local jar = setmetatable({ entries = {}, count = 0, per_domain = {}, file = file, seq = 0 }, J)
  if file then
    -- only a missing file starts an empty jar: one that exists but cannot
    -- be read would be replaced, cookies lost, by the next save
    local f, err, code = io.open(file, "rb")
    if f then
      f:close()
      local ok, lerr = jar:load(file)
      if not ok then error("tls.https.cookiejar: " .. lerr, 2) end
    elseif code ~= ENOENT then
      error("tls.https.cookiejar: cannot read the jar file (" .. tostring(err)
        .. "): fix it or name another file", 2)
    end
  end
  return jar
end

local months = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
  sep = 9, oct = 10, nov = 11, dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- RFC 6265 5.1.1's lenient date parser: the time, day, month and year
-- tokens in any order. -> seconds since the epoch | nil
function cookies.parse_date(s)
  local h, mi, sec, day, month, year
  for tok in s:gmatch("[^%s,;%-/]+") do
    local a, b, c = tok:match("^(%d%d?):(%d%d?):(%d%d?)")
    if not h and a then
      h, mi, sec = tonumber(a), tonumber(b), tonumber(c)
    elseif not day and tok:match("^%d%d?$") then
      day = tonumber(tok)
    elseif not month and months[tok:sub(1, 3):lower()] then
      month = months[tok:sub(1, 3):lower()]
    elseif not year and tok:match("^%d%d%d?%d?$") then
      year = tonumber(tok)
    end
  end
  if not (h and day and month and year) then return nil end
  if year >= 70 and year <= 99 then year = year + 1900 elseif year < 70 then year = year + 2000 end
  if day < 1 or day > 31 or year < 1601 or h > 23 or mi > 59 or sec > 59 then return nil end
  return days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- host domain-matches domain (RFC 6265 5.1.3)
local function domain_match(host, domain)
  if host == domain then return true end
  return not is_ip(host) and #host > #domain and host:sub(-#domain - 1) == "." .. domain
end

local function default_path(u)
  local path = (u.target or "/"):match("^[^?]*")
  if path:sub(1, 1) ~= "/" then return "/" end
  local dir = path:match("^(.*)/")
  if not dir or dir == "" then return "/" end
  return dir
end

local function path_match(req_path, path)
  if req_path == path then return true end
  if req_path:sub(1, #path) == path then
    return path:sub(-1) == "/" or req_path:sub(#path + 1, #path + 1) == "/"
  end
  return false
end

local function key(domain, path, name) return domain .. "\0" .. path .. "\0" .. name end

local function now_s(now) return now or os.time() end

-- Parse one Set-Cookie value for URL u; -> cookie | nil (ignored)
local function parse(u, s, now)
  if #s > MAX_COOKIE then return nil end
  local pair, attrs = s:match("^([^;]*)(.*)$")
  local name, value = pair:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
  if not name or name == "" then return nil end
  if name:find("[%c]") or value:find("[%c]") then return nil end
  local host = u.host:lower()
  local c = { name = name, value = value, secure = false, http_only = false }
  local max_age, expires, domain, path
  for attr in attrs:gmatch(";([^;]*)") do
    local k, v = attr:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if not k then k, v = attr:match("^%s*(.-)%s*$"), "" end
    k = k:lower()
    if k == "expires" then
      expires = cookies.parse_date(v)
    elseif k == "max-age" then
      if v:match("^%-?%d+$") then
        local n = tonumber(v)
        max_age = n <= 0 and -1 or n
      end
    elseif k == "domain" and v ~= "" then
      domain = v:gsub("^%.", ""):lower()
    elseif k == "path" then
      -- (control characters: a tab would split the cookie's line in the
      -- jar file, which would then not load)
      if v:find("%c") then return nil end
      path = v
    elseif k == "secure" then
      c.secure = true
    elseif k == "httponly" then
      c.http_only = true
    end
  end
  if max_age then
    c.expires = max_age < 0 and 0 or now_s(now) + math.min(max_age, MAX_LIFETIME)
  elseif expires then
    c.expires = math.min(expires, now_s(now) + MAX_LIFETIME)
  end
  if domain then
    if is_ip(host) or not domain:find(".", 1, true) then
      -- an IP address, or a bare top-level name: only the host itself
      if domain ~= host then return nil end
      c.host_only = true
    else
      if not domain_match(host, domain) then return nil end
      c.host_only = false
    end
    c.domain = domain
  else
    c.domain, c.host_only = host, true
  end
  if not path or path:sub(1, 1) ~= "/" then path = default_path(u) end
  c.path = path
  if c.secure and u.scheme ~= "https" then return nil end
  return c
end

local function remove(self, k)
  local c = self.entries[k]
  self.entries[k] = nil
  self.count = self.count - 1
  self.per_domain[c.domain] = self.per_domain[c.domain] - 1
end

-- The oldest cookie (of domain, or of all): its key.
local function oldest(self, domain)
  local ok, oc
  for k, c in pairs(self.entries) do
    if (not domain or c.domain == domain) and (not oc or c.created < oc.created) then ok, oc = k, c end
  end
  return ok
end

-- RFC 6265 5.3 step 12: a full jar makes room by evicting the oldest
-- cookies, first of the same domain. (Refusing new cookies instead let one
-- site fill the jar and lock every other site's out for as long as its
-- cookies lived, 400 days in a saved jar.)
function J:put(c, now)
  local k = key(c.domain, c.path, c.name)
  local old = self.entries[k]
  if c.expires and c.expires <= now_s(now) then
    if old then remove(self, k) end
    return
  end
  if old then
    c.created = old.created
  else
    if (self.per_domain[c.domain] or 0) >= MAX_PER_DOMAIN then remove(self, oldest(self, c.domain)) end
    if self.count >= MAX_COOKIES then remove(self, oldest(self)) end
    self.seq = self.seq + 1
    c.created = self.seq
    self.count = self.count + 1
    self.per_domain[c.domain] = (self.per_domain[c.domain] or 0) + 1
  end
  self.entries[k] = c
end

-- RFC 6265bis 5.7 (step 16): plain http may not set (nor delete) a cookie
-- that would shadow a Secure one: whoever answers for an http:// URL
-- (anyone on the path) could fix the https session's cookie otherwise.
local function shadows_secure(self, c)
  for _, old in pairs(self.entries) do
    if old.secure and old.name == c.name and path_match(c.path, old.path)
        and (domain_match(c.domain, old.domain) or domain_match(old.domain, c.domain)) then
      return true
    end
  end
  return false
end

function J:store(u, values, now)
  for _, s in ipairs(values) do
    local c = parse(u, s, now)
    if c and not (u.scheme ~= "https" and shadows_secure(self, c)) then self:put(c, now) end
  end
end

function J:header_for(u, now)
  now = now_s(now)
  local host, req_path = u.host:lower(), (u.target or "/"):match("^[^?]*")
  local list = {}
  for k, c in pairs(self.entries) do
    if c.expires and c.expires <= now then
      remove(self, k)
    elseif (c.host_only and host == c.domain or not c.host_only and domain_match(host, c.domain))
        and path_match(req_path, c.path) and (not c.secure or u.scheme == "https") then
      list[#list + 1] = c
    end
  end
  if #list == 0 then return nil end
  table.sort(list, function(a, b)
    if #a.path ~= #b.path then return #a.path > #b.path end
    return a.created < b.created
  end)
  local out = {}
  for i, c in ipairs(list) do out[i] = c.name .. "=" .. c.value end
  return table.concat(out, "; ")
end

function J:list()
  local out = {}
  for _, c in pairs(self.entries) do
    out[#out + 1] = { name = c.name, value = c.value, domain = c.domain, path = c.path,
      host_only = c.host_only, secure = c.secure, http_only = c.http_only, expires = c.expires }
  end
  table.sort(out, function(a, b) return a.domain .. a.path .. a.name < b.domain .. b.path .. b.name end)
  return out
end

function J:clear()
  self.entries, self.count, self.per_domain = {}, 0, {}
end

local function flag(b) return b and "1" or "0" end

-- One cookie a line, tab-separated: domain, host_only, path, secure,
-- http_only, expires (0: session), name, value. Session cookies are kept too.
-- Cookies are credentials: the file is written as tls.tofu writes its pins
-- (core.replace_file: a new file of mode 0600, never through a symlink,
-- renamed over the old one once complete).
function J:save(file)
  file = file or self.file
  if not file then error("tls.https: jar:save() needs a file name (none was given to cookiejar)", 2) end
  local lines = { "# tls.https cookie jar\n" }
  for _, c in ipairs(self:list()) do
    lines[#lines + 1] = table.concat({ c.domain, flag(c.host_only), c.path, flag(c.secure),
      flag(c.http_only),
      -- whole seconds, as the loader reads them (a caller's `now` may be fractional)
      compat.number_text(math.floor(c.expires or 0)), c.name, c.value }, "\t") .. "\n"
  end
  local ok, err = core.replace_file(file, table.concat(lines))
  if not ok then return nil, "cookies: " .. tostring(err) end
  return true
end

function J:load(file, now)
  local f, err = io.open(file, "rb")
  if not f then return nil, "cookies: cannot read " .. tostring(err) end
  -- read whole (a file the user owns, as large as they made it): a
  -- directory opens, then fails here with an error value instead of
  -- raising from an iterator
  local text, rerr = f:read("*a")
  f:close()
  if not text then return nil, ("cookies: cannot read %s: %s"):format(file, tostring(rerr)) end
  local n = 0
  for line in text:gmatch("([^\n]*)\n?") do
    n = n + 1
    line = line:gsub("\r$", "")  -- (a file saved with CR LF line ends)
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local d, ho, p, sec, ho2, exp, name, value =
        line:match("^([^\t]+)\t([01])\t([^\t]+)\t([01])\t([01])\t(%d+)\t([^\t]+)\t([^\t]*)$")
      -- a CR or another control character in a field would go out in a
      -- Cookie header (a bare CR ends a header line for some servers)
      if d and (d .. p .. name .. value):find("%c") then d = nil end
      if not d then
        return nil, ("cookies: %s line %d is not a cookie line"):format(file, n)
      end
      local expires = tonumber(exp)
      self:put({ domain = d, host_only = ho == "1", path = p, secure = sec == "1",
        http_only = ho2 == "1", expires = expires ~= 0 and expires or nil,
        name = name, value = value }, now)
    end
  end
  return true
end

return cookies
