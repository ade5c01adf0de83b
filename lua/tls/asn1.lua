-- A small DER reader: enough ASN.1 to take certificates apart.
--
-- Input is untrusted (certificates come off the network), so every function
-- checks bounds before reading, refuses indefinite lengths, caps the nesting
-- depth of full decodes, and reports problems as `nil, message` instead of
-- raising. Nothing here loops more than once per input byte.
--
-- A node is a table {class, constructed, tag, pos, vpos, vend, s}: `pos` is the
-- index of the first header byte, the value is s:sub(vpos, vend) (inclusive;
-- vend = vpos - 1 for an empty value). Nodes point into the original string, so
-- reading is cheap and `asn1.der(node)` gives back the exact encoding.

local asn1 = {}

local sbyte, ssub, schar, sformat, concat = string.byte, string.sub, string.char, string.format, table.concat
local floor, sfind = math.floor, string.find

-- The UTF-8 encoding of code point c (0..0x10ffff), as utf8.char gives on 5.3+.
local function utf8char(c)
  if c < 0x80 then return schar(c) end
  if c < 0x800 then return schar(0xc0 + floor(c / 0x40), 0x80 + c % 0x40) end
  if c < 0x10000 then
    return schar(0xe0 + floor(c / 0x1000), 0x80 + floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
  end
  return schar(0xf0 + floor(c / 0x40000), 0x80 + floor(c / 0x1000) % 0x40,
    0x80 + floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
end

-- True if s is well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at
-- most U+10FFFF), the rule Lua 5.4's utf8.len applies; same answer on every version.
local function valid_utf8(s)
  local i, n = 1, #s
  while true do
    i = sfind(s, "[\128-\255]", i)
    if not i then return true end
    local b = sbyte(s, i)
    local len, lo, hi = 0, 0x80, 0xbf -- lo/hi bound the second byte
    if b >= 0xc2 and b <= 0xdf then len = 2
    elseif b >= 0xe0 and b <= 0xef then
      len = 3
      if b == 0xe0 then lo = 0xa0 elseif b == 0xed then hi = 0x9f end
    elseif b >= 0xf0 and b <= 0xf4 then
      len = 4
      if b == 0xf0 then lo = 0x90 elseif b == 0xf4 then hi = 0x8f end
    else
      return false
    end
    if i + len - 1 > n then return false end
    local b2 = sbyte(s, i + 1)
    if b2 < lo or b2 > hi then return false end
    for j = i + 2, i + len - 1 do
      local c = sbyte(s, j)
      if c < 0x80 or c > 0xbf then return false end
    end
    i = i + len
  end
end

asn1.UNIVERSAL, asn1.APPLICATION, asn1.CONTEXT, asn1.PRIVATE = 0, 1, 2, 3

-- Universal tag numbers used by certificates.
asn1.BOOLEAN = 1
asn1.INTEGER = 2
asn1.BIT_STRING = 3
asn1.OCTET_STRING = 4
asn1.NULL = 5
asn1.OID = 6
asn1.UTF8String = 12
asn1.SEQUENCE = 16
asn1.SET = 17
asn1.PrintableString = 19
asn1.T61String = 20
asn1.IA5String = 22
asn1.UTCTime = 23
asn1.GeneralizedTime = 24
asn1.VisibleString = 26
asn1.UniversalString = 28
asn1.BMPString = 30

-- How deep asn1.decode will go. Certificates nest about ten levels; anything
-- much deeper is an attack on recursive decoders.
asn1.MAX_DEPTH = 64

--- Reads one TLV starting at index `pos` of `s`, not reading past index `last`
-- (default #s). Returns node, next_pos; or nil, message.
function asn1.read(s, pos, last)
  last = last or #s
  if pos > last then
    return nil, sformat("asn1: expected a value at offset %d, found end of data", pos - 1)
  end
  local b = sbyte(s, pos)
  local class, constructed, tag = floor(b / 0x40), b % 0x40 >= 0x20, b % 0x20
  local p = pos + 1
  if tag == 0x1f then
    -- High tag number form: base-128, at most 4 bytes (28 bits) of tag.
    tag = 0
    local n = 0
    repeat
      if p > last then
        return nil, sformat("asn1: truncated tag at offset %d", pos - 1)
      end
      b = sbyte(s, p)
      if n == 0 and b == 0x80 then
        return nil, sformat("asn1: non-minimal tag at offset %d", pos - 1)
      end
      n = n + 1
      if n > 4 then
        return nil, sformat("asn1: tag number too large at offset %d", pos - 1)
      end
      tag = tag * 0x80 + b % 0x80
      p = p + 1
    until b < 0x80
  end
  if p > last then
    return nil, sformat("asn1: truncated length at offset %d", pos - 1)
  end
  local len = sbyte(s, p)
  p = p + 1
  if len >= 0x80 then
    local n = len % 0x80
    if n == 0 then
      return nil, sformat("asn1: indefinite length at offset %d (not DER)", pos - 1)
    elseif n > 4 then
      return nil, sformat("asn1: length of %d bytes at offset %d is too large", n, pos - 1)
    elseif p + n - 1 > last then
      return nil, sformat("asn1: truncated length at offset %d", pos - 1)
    end
    len = 0
    for i = p, p + n - 1 do
      len = len * 0x100 + sbyte(s, i)
    end
    if len < 0x80 or len < 0x100 ^ (n - 1) then
      return nil, sformat("asn1: non-minimal length at offset %d (not DER)", pos - 1)
    end
    p = p + n
  end
  local vend = p + len - 1
  if vend > last then
    return nil, sformat("asn1: value at offset %d claims %d bytes, only %d available",
      pos - 1, len, last - p + 1)
  end
  return { class = class, constructed = constructed, tag = tag,
           pos = pos, vpos = p, vend = vend, s = s }, vend + 1
end

--- Returns the value bytes of `node`.
function asn1.value(node)
  return ssub(node.s, node.vpos, node.vend)
end

--- Returns the complete encoding (header and value) of `node`.
function asn1.der(node)
  return ssub(node.s, node.pos, node.vend)
end

--- True if `node` is universal with tag number `tag`.
function asn1.is(node, tag)
  return node.class == 0 and node.tag == tag
end

--- Lists the direct children of constructed `node`.
-- Returns a list of nodes, or nil and a message.
function asn1.children(node)
  if not node.constructed then
    return nil, sformat("asn1: value at offset %d is not constructed", node.pos - 1)
  end
  local list, pos, last = {}, node.vpos, node.vend
  while pos <= last do
    local child, nxt = asn1.read(node.s, pos, last)
    if not child then return nil, nxt end
    list[#list + 1] = child
    pos = nxt
  end
  return list
end

--- Decodes `s` completely into a tree: constructed nodes get a `children` list.
-- The whole string must be one value. Refuses nesting deeper than `max_depth`
-- (default asn1.MAX_DEPTH). Returns the root node, or nil and a message.
function asn1.decode(s, max_depth)
  if type(s) ~= "string" then
    return nil, "asn1: expected a string, got " .. type(s)
  end
  max_depth = max_depth or asn1.MAX_DEPTH
  local root, nxt = asn1.read(s, 1)
  if not root then return nil, nxt end
  if nxt <= #s then
    return nil, sformat("asn1: %d bytes of trailing data after the value", #s - nxt + 1)
  end
  -- Explicit stack rather than recursion, so depth is checked before it grows.
  local stack = { root }
  local depth = { 1 }
  while #stack > 0 do
    local node, d = stack[#stack], depth[#depth]
    stack[#stack], depth[#depth] = nil, nil
    if node.constructed then
      if d >= max_depth then
        return nil, sformat("asn1: nesting deeper than %d levels", max_depth)
      end
      local kids, err = asn1.children(node)
      if not kids then return nil, err end
      node.children = kids
      for i = 1, #kids do
        stack[#stack + 1] = kids[i]
        depth[#depth + 1] = d + 1
      end
    end
  end
  return root
end

--- Returns `bytes` as lowercase hex.
local function hex(bytes)
  local out = {}
  -- string.byte returns values on the C stack, so go 64 bytes at a time.
  for i = 1, #bytes, 64 do
    local j = i + 63 < #bytes and i + 63 or #bytes
    out[#out + 1] = sformat(("%02x"):rep(j - i + 1), sbyte(bytes, i, j))
  end
  return concat(out)
end
asn1.hex = hex

--- Decodes an INTEGER as lowercase hex of its magnitude, with no leading zero
-- bytes and a '-' sign if negative ("00" for zero). This is how openssl prints
-- serial numbers. Returns the string, or nil and a message.
function asn1.integer_hex(node)
  local v = asn1.value(node)
  if #v == 0 then
    return nil, "asn1: empty INTEGER"
  end
  local sign = ""
  if sbyte(v, 1) >= 0x80 then
    -- Two's complement: magnitude = (not v) + 1.
    local bytes, carry = {}, 1
    for i = #v, 1, -1 do
      local x = 0xff - sbyte(v, i) + carry
      bytes[i] = schar(x % 0x100)
      carry = floor(x / 0x100)
    end
    v, sign = concat(bytes), "-"
  end
  v = v:gsub("^%z+", "")
  if v == "" then return "00" end
  return sign .. hex(v)
end

--- Decodes a small INTEGER (up to 6 bytes) as a Lua integer.
-- Returns the number, or nil and a message.
function asn1.integer(node)
  local n = node.vend - node.vpos + 1
  if n < 1 then return nil, "asn1: empty INTEGER" end
  if n > 6 then return nil, "asn1: INTEGER too large" end
  local v = 0
  for i = node.vpos, node.vend do
    v = v * 0x100 + sbyte(node.s, i)
  end
  if sbyte(node.s, node.vpos) >= 0x80 then
    v = v - floor(0x100 ^ n)
  end
  return v
end

--- Decodes a BOOLEAN. Returns true/false, or nil and a message.
function asn1.boolean(node)
  if node.vend ~= node.vpos then
    return nil, "asn1: BOOLEAN must be one byte"
  end
  return sbyte(node.s, node.vpos) ~= 0
end

-- Certificates repeat a few dozen OIDs, so decoded OIDs are remembered by
-- their encoding. The cache is emptied when it grows large, so hostile input
-- full of distinct OIDs cannot make it grow without bound.
local oid_cache, oid_cache_size = {}, 0

--- Decodes an OBJECT IDENTIFIER as a dotted string ("2.5.4.3").
-- Returns the string, or nil and a message.
function asn1.oid(node)
  local s, vpos, vend = node.s, node.vpos, node.vend
  if vend < vpos then
    return nil, "asn1: empty OBJECT IDENTIFIER"
  end
  local raw = ssub(s, vpos, vend)
  local cached = oid_cache[raw]
  if cached then return cached end
  local arcs, v, n = {}, 0, 0
  for i = 1, #raw do
    local b = sbyte(raw, i)
    if n == 0 and b == 0x80 then
      return nil, "asn1: non-minimal OBJECT IDENTIFIER arc"
    end
    n = n + 1
    -- Seven 7-bit groups (49 bits) is far beyond any real arc and keeps v
    -- exact even where numbers are doubles (Lua 5.1, LuaJIT).
    if n > 7 then
      return nil, "asn1: OBJECT IDENTIFIER arc too large"
    end
    v = v * 0x80 + b % 0x80
    if b < 0x80 then
      if #arcs == 0 then
        local first = v < 80 and floor(v / 40) or 2
        arcs[1], arcs[2] = sformat("%d", first), sformat("%d", v - 40 * first)
      else
        -- %d, not tostring: a double prints large arcs in exponent form.
        arcs[#arcs + 1] = sformat("%d", v)
      end
      v, n = 0, 0
    end
  end
  if n ~= 0 then
    return nil, "asn1: truncated OBJECT IDENTIFIER"
  end
  local dotted = concat(arcs, ".")
  if oid_cache_size >= 4096 then
    oid_cache, oid_cache_size = {}, 0
  end
  oid_cache[raw], oid_cache_size = dotted, oid_cache_size + 1
  return dotted
end

--- Decodes a BIT STRING. Returns the bytes (without the unused-bits octet) and
-- the number of unused bits in the last byte; or nil and a message.
function asn1.bit_string(node)
  local s, vpos, vend = node.s, node.vpos, node.vend
  if vend < vpos then
    return nil, "asn1: empty BIT STRING"
  end
  local unused = sbyte(s, vpos)
  if unused > 7 or (unused > 0 and vend == vpos) then
    return nil, "asn1: bad unused-bits count in BIT STRING"
  end
  return ssub(s, vpos + 1, vend), unused
end

-- Converts a code point list to UTF-8, refusing surrogates and out-of-range values.
local function to_utf8(codes)
  for i = 1, #codes do
    local c = codes[i]
    if c > 0x10ffff or (c >= 0xd800 and c <= 0xdfff) then
      return nil, "asn1: invalid character in string"
    end
    codes[i] = utf8char(c)
  end
  return concat(codes)
end

--- Decodes any of the ASN.1 string types to UTF-8 text.
-- T61String is read as Latin-1 (as openssl does); BMPString as UTF-16BE;
-- UniversalString as UTF-32BE. Returns the text, or nil and a message.
function asn1.string(node)
  local tag, v = node.tag, asn1.value(node)
  if node.class ~= 0 then
    return nil, "asn1: not a string type"
  end
  if tag == asn1.UTF8String then
    if not valid_utf8(v) then
      return nil, "asn1: invalid UTF-8 in UTF8String"
    end
    return v
  elseif tag == asn1.PrintableString or tag == asn1.IA5String or tag == asn1.VisibleString
      or tag == 18 --[[NumericString]] then
    if v:find("[\128-\255]") then
      return nil, "asn1: non-ASCII byte in ASCII string"
    end
    return v
  elseif tag == asn1.T61String then
    -- Latin-1: every byte is its own code point. (Not through a table of
    -- sbyte(v, 1, -1): that raises on a value of a million bytes.)
    return (v:gsub("[\128-\255]", function(c) return utf8char(sbyte(c)) end))
  elseif tag == asn1.BMPString then
    if #v % 2 ~= 0 then
      return nil, "asn1: odd length BMPString"
    end
    local codes = {}
    for i = 1, #v, 2 do
      local hi, lo = sbyte(v, i, i + 1)
      codes[#codes + 1] = hi * 0x100 + lo
    end
    return to_utf8(codes)
  elseif tag == asn1.UniversalString then
    if #v % 4 ~= 0 then
      return nil, "asn1: UniversalString length not a multiple of 4"
    end
    local codes = {}
    for i = 1, #v, 4 do
      local b1, b2, b3, b4 = sbyte(v, i, i + 3)
      codes[#codes + 1] = ((b1 * 0x100 + b2) * 0x100 + b3) * 0x100 + b4
    end
    return to_utf8(codes)
  end
  return nil, sformat("asn1: tag %d is not a string type", tag)
end

-- Days from 1970-01-01 to year-month-day in the proleptic Gregorian calendar
-- (Howard Hinnant's days_from_civil): no os.time, so no local time zone.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- Decodes a UTCTime or GeneralizedTime (DER forms: seconds present, 'Z'
-- zone) to seconds since the Unix epoch. UTCTime years 50..99 are 19xx, as
-- RFC 5280 says. Returns the number, or nil and a message.
function asn1.time(node)
  local v = asn1.value(node)
  local Y, M, D, h, m, sec
  if asn1.is(node, asn1.UTCTime) then
    local yy
    yy, M, D, h, m, sec = v:match("^(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)Z$")
    if not yy then
      return nil, "asn1: malformed UTCTime '" .. v:gsub("[^%w]", "?") .. "'"
    end
    Y = tonumber(yy)
    Y = Y + (Y < 50 and 2000 or 1900)
  elseif asn1.is(node, asn1.GeneralizedTime) then
    Y, M, D, h, m, sec = v:match("^(%d%d%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)Z$")
    if not Y then
      return nil, "asn1: malformed GeneralizedTime '" .. v:gsub("[^%w]", "?") .. "'"
    end
    Y = tonumber(Y)
  else
    return nil, "asn1: not a time value"
  end
  M, D, h, m, sec = tonumber(M), tonumber(D), tonumber(h), tonumber(m), tonumber(sec)
  local leap = Y % 4 == 0 and (Y % 100 ~= 0 or Y % 400 == 0)
  if M < 1 or M > 12 or D < 1 or D > (M == 2 and leap and 29 or mdays[M])
      or h > 23 or m > 59 or sec > 59 then
    return nil, "asn1: time value out of range"
  end
  return days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec
end

return asn1
