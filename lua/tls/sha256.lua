-- SHA-256 (FIPS 180-4) through the C core's libcrypto: certificate
-- fingerprints, SPKI pins and config cache keys. There is no pure-Lua
-- fallback: every user of this module loads the C core anyway.

local core = require "tls.core"

local sha256 = {}

local sformat, sbyte, gsub = string.format, string.byte, string.gsub
local digest = core.sha256

--- Returns the 32-byte binary SHA-256 digest of string `s`.
function sha256.digest(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'digest' (string expected, got " .. type(s) .. ")", 2)
  end
  return digest(s)
end

local function hex_byte(c) return sformat("%02x", sbyte(c)) end

--- Returns the digest of `s` as 64 lowercase hex characters.
function sha256.hex(s)
  return (gsub(sha256.digest(s), ".", hex_byte))
end

return sha256
