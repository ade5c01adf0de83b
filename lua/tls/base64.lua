-- Base64 (RFC 4648, standard alphabet, with padding).
--
-- Needed for PEM bodies and for SPKI pins in the form curl and HPKP use
-- ("sha256//<base64>"). Decoding is strict: PEM that is not clean base64 is a
-- damaged certificate, and guessing at it would hide that.

local base64 = {}

local sbyte, schar, concat, floor = string.byte, string.char, table.concat, math.floor

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
-- Plain arithmetic (no bitwise operators), so it runs on Lua 5.1 to 5.4 alike.
-- enc maps 0..63 to a character; dec maps a byte to its 6-bit value, and
-- dec12/dec18 are the same values already shifted left by 12 and 18 bits.
local enc, dec, dec18, dec12 = {}, {}, {}, {}
for i = 1, 64 do
  local c = sbyte(alphabet, i)
  enc[i - 1] = schar(c)
  dec[c], dec12[c], dec18[c] = i - 1, (i - 1) * 4096, (i - 1) * 262144
end

--- Encodes binary string `s`; returns the base64 text with '=' padding.
function base64.encode(s)
  local out, n = {}, #s
  local full = n - n % 3
  for i = 1, full, 3 do
    local a, b, c = sbyte(s, i, i + 2)
    out[#out + 1] = enc[floor(a / 4)] .. enc[a % 4 * 16 + floor(b / 16)]
      .. enc[b % 16 * 4 + floor(c / 64)] .. enc[c % 64]
  end
  local rest = n - full
  if rest == 1 then
    local a = sbyte(s, n)
    out[#out + 1] = enc[floor(a / 4)] .. enc[a % 4 * 16] .. "=="
  elseif rest == 2 then
    local a, b = sbyte(s, n - 1, n)
    out[#out + 1] = enc[floor(a / 4)] .. enc[a % 4 * 16 + floor(b / 16)] .. enc[b % 16 * 4] .. "="
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
  -- One scan for a character outside the alphabet, so the loops below need
  -- no checks ('=' only remains as the final padding, checked above).
  if s:find("[^A-Za-z0-9+/=]") then return invalid(s) end
  local body = pad and n - 4 or n
  local out = {}
  -- 16 characters (12 bytes) per step: fewer iterations and table appends are
  -- most of the speed here.
  local big = body - body % 16
  for i = 1, big, 16 do
    local a, b, c, d, e, f, g, h, i1, j, k, l, m, o, p, q = sbyte(s, i, i + 15)
    local v1 = dec18[a] + dec12[b] + dec[c] * 64 + dec[d]
    local v2 = dec18[e] + dec12[f] + dec[g] * 64 + dec[h]
    local v3 = dec18[i1] + dec12[j] + dec[k] * 64 + dec[l]
    local v4 = dec18[m] + dec12[o] + dec[p] * 64 + dec[q]
    out[#out + 1] = schar(floor(v1 / 65536), floor(v1 / 256) % 256, v1 % 256,
      floor(v2 / 65536), floor(v2 / 256) % 256, v2 % 256,
      floor(v3 / 65536), floor(v3 / 256) % 256, v3 % 256,
      floor(v4 / 65536), floor(v4 / 256) % 256, v4 % 256)
  end
  for i = big + 1, body - 3, 4 do
    local a, b, c, d = sbyte(s, i, i + 3)
    local v = dec18[a] + dec12[b] + dec[c] * 64 + dec[d]
    out[#out + 1] = schar(floor(v / 65536), floor(v / 256) % 256, v % 256)
  end
  if pad then
    local a, b, c = sbyte(s, n - 3, n - 1)
    if pad == n then
      local v = dec18[a] + dec12[b] + dec[c] * 64
      out[#out + 1] = schar(floor(v / 65536), floor(v / 256) % 256)
    else
      out[#out + 1] = schar(floor((dec18[a] + dec12[b]) / 65536))
    end
  end
  return concat(out)
end

return base64
