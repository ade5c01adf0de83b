-- HPACK (RFC 7541): header compression for HTTP/2, with the static table,
-- a bounded dynamic table on each side, and Huffman strings.
--
--   local d = hpack.decoder(max_table_size, max_list_size)
--   d:decode(block) -> { {name, value}, ... } | nil, reason
--   local e = hpack.encoder()
--   e:set_max_table_size(n)         (the peer's SETTINGS_HEADER_TABLE_SIZE)
--   e:encode({ {name, value [, never_index]}, ... }) -> block
--
-- A decoding error is fatal to the connection (COMPRESSION_ERROR): the
-- caller closes it. Every integer, string and table is bounded.

local huffman = require "tls.h2.huffman"

local byte, char, sub, floor = string.byte, string.char, string.sub, math.floor

local hpack = {}

hpack.STATIC = {
  { ":authority", "" }, { ":method", "GET" }, { ":method", "POST" }, { ":path", "/" },
  { ":path", "/index.html" }, { ":scheme", "http" }, { ":scheme", "https" },
  { ":status", "200" }, { ":status", "204" }, { ":status", "206" }, { ":status", "304" },
  { ":status", "400" }, { ":status", "404" }, { ":status", "500" },
  { "accept-charset", "" }, { "accept-encoding", "gzip, deflate" }, { "accept-language", "" },
  { "accept-ranges", "" }, { "accept", "" }, { "access-control-allow-origin", "" },
  { "age", "" }, { "allow", "" }, { "authorization", "" }, { "cache-control", "" },
  { "content-disposition", "" }, { "content-encoding", "" }, { "content-language", "" },
  { "content-length", "" }, { "content-location", "" }, { "content-range", "" },
  { "content-type", "" }, { "cookie", "" }, { "date", "" }, { "etag", "" }, { "expect", "" },
  { "expires", "" }, { "from", "" }, { "host", "" }, { "if-match", "" },
  { "if-modified-since", "" }, { "if-none-match", "" }, { "if-range", "" },
  { "if-unmodified-since", "" }, { "last-modified", "" }, { "link", "" }, { "location", "" },
  { "max-forwards", "" }, { "proxy-authenticate", "" }, { "proxy-authorization", "" },
  { "range", "" }, { "referer", "" }, { "refresh", "" }, { "retry-after", "" },
  { "server", "" }, { "set-cookie", "" }, { "strict-transport-security", "" },
  { "transfer-encoding", "" }, { "user-agent", "" }, { "vary", "" }, { "via", "" },
  { "www-authenticate", "" },
}
local STATIC = hpack.STATIC
local NSTATIC = #STATIC

-- lookups for the encoder: "name\0value" -> index, name -> first index
local static_pair, static_name = {}, {}
for i = NSTATIC, 1, -1 do
  local e = STATIC[i]
  static_pair[e[1] .. "\0" .. e[2]] = i
  static_name[e[1]] = i
end

local ENTRY_OVERHEAD = 32   -- RFC 7541, 4.1

--- The dynamic table (newest entry first), shared by both directions.

local function new_table(max)
  return { entries = {}, size = 0, max = max }
end

local function evict(t, max)
  local entries = t.entries
  while t.size > max do
    local e = table.remove(entries)
    t.size = t.size - #e[1] - #e[2] - ENTRY_OVERHEAD
  end
end

local function insert(t, name, value)
  local size = #name + #value + ENTRY_OVERHEAD
  if size > t.max then
    -- larger than the table: the table empties (RFC 7541, 4.4)
    t.entries, t.size = {}, 0
    return
  end
  evict(t, t.max - size)
  table.insert(t.entries, 1, { name, value })
  t.size = t.size + size
end

--- Decoding

local D = {}
D.__index = D

-- max_table_size: our SETTINGS_HEADER_TABLE_SIZE (the bound for the peer's
-- size updates); max_list_size: the bound on the decoded header list
-- (names + values + 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts).
function hpack.decoder(max_table_size, max_list_size)
  return setmetatable({ table = new_table(max_table_size), limit = max_table_size,
    max_list_size = max_list_size }, D)
end

-- An integer with an n-bit prefix at s[pos]: value, next pos | nil, reason
local function read_int(s, pos, n)
  local b = byte(s, pos)
  if not b then return nil, "a truncated integer" end
  local max = 2 ^ n
  local v = b % max
  pos = pos + 1
  if v < max - 1 then return v, pos end
  local m = 1
  while true do
    b = byte(s, pos)
    if not b then return nil, "a truncated integer" end
    pos = pos + 1
    v = v + (b % 128) * m
    m = m * 128
    if v > 2 ^ 31 or m > 2 ^ 35 then return nil, "an integer over 2^31" end
    if b < 128 then return v, pos end
  end
end

-- Huffman strings seen lately -> decoded (servers repeat most values);
-- emptied when full
local decoded, ndecoded = {}, 0

local function read_string(s, pos)
  local b = byte(s, pos)
  if not b then return nil, "a truncated string" end
  local huff = b >= 128
  local len
  len, pos = read_int(s, pos, 7)
  if not len then return nil, pos end
  if pos + len - 1 > #s then return nil, "a string longer than its header block" end
  local str = sub(s, pos, pos + len - 1)
  pos = pos + len
  if huff then
    local dec = decoded[str]
    if not dec then
      local why
      dec, why = huffman.decode(str)
      if not dec then return nil, "a bad Huffman string (" .. why .. ")" end
      if len <= 128 then
        if ndecoded >= 1024 then decoded, ndecoded = {}, 0 end
        decoded[str], ndecoded = dec, ndecoded + 1
      end
    end
    str = dec
  end
  return str, pos
end

function D:entry(i)
  if i >= 1 and i <= NSTATIC then return STATIC[i] end
  local e = self.table.entries[i - NSTATIC]
  return e
end

function D:decode(s)
  local out, listsize, pos, n = {}, 0, 1, #s
  local t = self.table
  local seen_field = false
  while pos <= n do
    local b = byte(s, pos)
    local name, value, index, err
    if b >= 128 then
      index, pos = read_int(s, pos, 7)
      if not index then return nil, pos end
      if index == 0 then return nil, "index 0" end
      local e = self:entry(index)
      if not e then return nil, ("index %d is past the table (%d entries)"):format(index, NSTATIC + #t.entries) end
      name, value = e[1], e[2]
    elseif b >= 32 and b < 64 then
      -- a dynamic table size update: only before the first field
      local size
      size, pos = read_int(s, pos, 5)
      if not size then return nil, pos end
      if seen_field then return nil, "a table size update after a header field" end
      if size > self.limit then
        return nil, ("a table size update to %d, over our limit of %d"):format(size, self.limit)
      end
      t.max = size
      evict(t, size)
    else
      local prefix = (b >= 64) and 6 or 4
      index, pos = read_int(s, pos, prefix)
      if not index then return nil, pos end
      if index > 0 then
        local e = self:entry(index)
        if not e then return nil, ("name index %d is past the table"):format(index) end
        name = e[1]
      else
        name, pos = read_string(s, pos)
        if not name then return nil, pos end
      end
      value, err = read_string(s, pos)
      if not value then return nil, err end
      pos = err
      if b >= 64 then insert(t, name, value) end
    end
    if name then
      seen_field = true
      listsize = listsize + #name + #value + ENTRY_OVERHEAD
      if listsize > self.max_list_size then
        return nil, ("the header list is over %d bytes"):format(self.max_list_size), "too big"
      end
      out[#out + 1] = { name, value }
    end
  end
  return out
end

--- Encoding

local E = {}
E.__index = E

-- Our encoder's table holds at most 4096 bytes (the default) or less when
-- the peer asks for less.
local ENCODER_MAX = 4096

function hpack.encoder()
  return setmetatable({ table = new_table(ENCODER_MAX), pending_update = nil }, E)
end

function E:set_max_table_size(n)
  local size = n < ENCODER_MAX and n or ENCODER_MAX
  if size ~= self.table.max then
    self.table.max = size
    evict(self.table, size)
    -- the smallest since the last block must be signalled, then the last
    self.pending_update = math.min(self.pending_update or size, size)
    self.final_update = size
  end
end

local function int_bytes(v, n, first, out)
  local max = 2 ^ n - 1
  if v < max then
    out[#out + 1] = char(first + v)
    return
  end
  out[#out + 1] = char(first + max)
  v = v - max
  while v >= 128 do
    out[#out + 1] = char(v % 128 + 128)
    v = floor(v / 128)
  end
  out[#out + 1] = char(v)
end

local function string_bytes(s, out)
  local hl = huffman.length(s)
  if hl < #s then
    int_bytes(hl, 7, 128, out)
    out[#out + 1] = huffman.encode(s)
  else
    int_bytes(#s, 7, 0, out)
    out[#out + 1] = s
  end
end

function E:encode(list)
  local out = {}
  local t = self.table
  if self.pending_update then
    int_bytes(self.pending_update, 5, 32, out)
    if self.final_update ~= self.pending_update then int_bytes(self.final_update, 5, 32, out) end
    self.pending_update, self.final_update = nil, nil
  end
  for _, f in ipairs(list) do
    local name, value, never = f[1], f[2], f[3]
    local index = static_pair[name .. "\0" .. value]
    local name_index = static_name[name]
    if not index and not never then
      for i, e in ipairs(t.entries) do
        if e[1] == name then
          if e[2] == value then index = NSTATIC + i; break end
          name_index = name_index or (NSTATIC + i)
        end
      end
    end
    if index then
      int_bytes(index, 7, 128, out)
    else
      if never then
        int_bytes(name_index or 0, 4, 16, out)
      else
        int_bytes(name_index or 0, 6, 64, out)
      end
      if not name_index then string_bytes(name, out) end
      string_bytes(value, out)
      if not never then insert(t, name, value) end
    end
  end
  return table.concat(out)
end

return hpack
