-- Base64 (RFC 4648, standard alphabet, with padding).
--
-- Needed for PEM bodies and for SPKI pins in the form curl and HPKP use
-- ("sha256//<base64>"). Decoding is strict: PEM that is not clean base64 is a
-- damaged certificate, and guessing at it would hide that.

local core = require "tls.core"

local base64 = {}
local decode = core.base64_decode

local sbyte, schar, concat, floor = string.byte, string.char, table.concat, math.floor

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
-- Plain arithmetic (no bitwise operators), so it runs on Lua 5.1 to 5.4 alike.
-- enc maps 0..63 to a character.
local enc = {}
for i = 1, 64 do enc[i - 1] = schar(sbyte(alphabet, i)) end

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

--- Decodes base64 text `s`, ignoring whitespace (PEM wraps lines).
-- Returns the binary string, or nil and a message if `s` is not valid base64.
-- (The C core's decoder, src/base64.c: the one the config's PEM OCSP staples
-- go through too.)
function base64.decode(s)
  if type(s) ~= "string" then
    return nil, "base64: expected a string, got " .. type(s)
  end
  return decode(s)
end

return base64
