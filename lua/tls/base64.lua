-- Base64 (RFC 4648, standard alphabet, with padding).
--
-- Needed for PEM bodies and for SPKI pins in the form curl and HPKP use
-- ("sha256//<base64>"). Decoding is strict: PEM that is not clean base64 is a
-- damaged certificate, and guessing at it would hide that.

local base64 = {}

local sbyte, schar, concat = string.byte, string.char, table.concat

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc, dec = {}, {}
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

--- Decodes base64 text `s`, ignoring whitespace (PEM wraps lines).
-- Returns the binary string, or nil and a message if `s` is not valid base64.
function base64.decode(s)
  if type(s) ~= "string" then
    return nil, "base64: expected a string, got " .. type(s)
  end
  s = s:gsub("%s+", "")
  local bad = s:find("[^A-Za-z0-9+/=]")
  if bad then
    return nil, ("base64: invalid character at position %d"):format(bad)
  end
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
  for i = 1, body - 3, 4 do
    local a, b, c, d = sbyte(s, i, i + 3)
    local v = dec[a] << 18 | dec[b] << 12 | dec[c] << 6 | dec[d]
    out[#out + 1] = schar(v >> 16, v >> 8 & 255, v & 255)
  end
  if pad then
    local a, b, c = sbyte(s, n - 3, n - 1)
    if pad == n then
      local v = dec[a] << 18 | dec[b] << 12 | dec[c] << 6
      out[#out + 1] = schar(v >> 16, v >> 8 & 255)
    else
      local v = dec[a] << 18 | dec[b] << 12
      out[#out + 1] = schar(v >> 16)
    end
  end
  return concat(out)
end

return base64
