-- Base64 (RFC 4648, standard alphabet, with padding).
--
-- Needed for PEM bodies and for SPKI pins in the form curl and HPKP use
-- ("sha256//<base64>"). Decoding is strict: PEM that is not clean base64 is a
-- damaged certificate, and guessing at it would hide that.

local base64 = {}

local sbyte, schar, spack, concat = string.byte, string.char, string.pack, table.concat

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
-- dec covers all 256 byte values so lookups stay in the array part; -1 marks
-- a byte outside the alphabet, which makes any word it is or-ed into negative.
local enc, dec = {}, {}
for i = 0, 255 do dec[i] = -1 end
for i = 1, 64 do
  local c = alphabet:sub(i, i)
  enc[i - 1] = c
  dec[sbyte(c)] = i - 1
end

--- Encodes binary string `s`; returns the base64 text with '=' padding.
function base64.encode(s)
  local out, n = {}, #s
  local full = n - n % 3
  for i = 1, full, 3 do
    local a, b, c = sbyte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. enc[v >> 6 & 63] .. enc[v & 63]
  end
  local rest = n - full
  if rest == 1 then
    local v = sbyte(s, n) << 16
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. "=="
  elseif rest == 2 then
    local a, b = sbyte(s, n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. enc[v >> 6 & 63] .. "="
  end
  return concat(out)
end

local function invalid(s)
  local bad = s:find("[^A-Za-z0-9+/=]") or s:find("=", 1, true)
  return nil, ("base64: invalid character at position %d"):format(bad)
end

--- Decodes base64 text `s`, ignoring whitespace (PEM wraps lines).
-- Returns the binary string, or nil and a message if `s` is not valid base64.
function base64.decode(s)
  if type(s) ~= "string" then
    return nil, "base64: expected a string, got " .. type(s)
  end
  -- Collecting the runs between whitespace is much faster than gsub("%s+", "")
  -- on long PEM text, which restarts the matcher at every byte.
  local parts = {}
  for run in s:gmatch("%S+") do parts[#parts + 1] = run end
  s = concat(parts)
  local n = #s
  if n % 4 ~= 0 then
    return nil, "base64: length is not a multiple of 4"
  end
  local pad = s:find("=", 1, true)
  if pad and not (pad >= n - 1 and s:sub(pad) == ("="):rep(n - pad + 1)) then
    return nil, "base64: padding in the middle of the data"
  end
  local body = pad and n - 4 or n
  local out = {}
  -- 16 characters (12 bytes) per step: fewer iterations and table appends are
  -- most of the speed here.
  local big = body - body % 16
  for i = 1, big, 16 do
    local a, b, c, d, e, f, g, h, i1, j, k, l, m, o, p, q = sbyte(s, i, i + 15)
    local v1 = dec[a] << 42 | dec[b] << 36 | dec[c] << 30 | dec[d] << 24
      | dec[e] << 18 | dec[f] << 12 | dec[g] << 6 | dec[h]
    local v2 = dec[i1] << 42 | dec[j] << 36 | dec[k] << 30 | dec[l] << 24
      | dec[m] << 18 | dec[o] << 12 | dec[p] << 6 | dec[q]
    if v1 | v2 < 0 then return invalid(s) end
    out[#out + 1] = spack(">I6I6", v1, v2)
  end
  for i = big + 1, body - 3, 4 do
    local a, b, c, d = sbyte(s, i, i + 3)
    local v = dec[a] << 18 | dec[b] << 12 | dec[c] << 6 | dec[d]
    if v < 0 then return invalid(s) end
    out[#out + 1] = schar(v >> 16, v >> 8 & 255, v & 255)
  end
  if pad then
    local a, b, c = sbyte(s, n - 3, n - 1)
    if pad == n then
      local v = dec[a] << 18 | dec[b] << 12 | dec[c] << 6
      if v < 0 then return invalid(s) end
      out[#out + 1] = schar(v >> 16, v >> 8 & 255)
    else
      local v = dec[a] << 18 | dec[b] << 12
      if v < 0 then return invalid(s) end
      out[#out + 1] = schar(v >> 16)
    end
  end
  return concat(out)
end

return base64
