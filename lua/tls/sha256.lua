-- SHA-256 (FIPS 180-4) in pure Lua 5.4.
--
-- Certificate fingerprints and SPKI pins need a hash, and this layer must load
-- without the C core, so the hash lives here.
--
-- Speed matters (a CA bundle means hundreds of hashes), so the compression
-- function is generated once at load time as straight-line code: the 64 rounds
-- unrolled, the message schedule in locals, the round constants as literals.
-- Lua 5.4 integers are 64 bits: a 32-bit word x rotates right by n as
-- (x | x << 32) >> n, whose low 32 bits are the rotation. Bits above 32 are
-- left as garbage in intermediate values and masked off whenever a word is
-- stored, since carries and xors never move high bits down.

local sha256 = {}

local spack, srep, sformat, concat = string.pack, string.rep, string.format, table.concat

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

-- Builds the source of `function(s, len, h1..h8) -> h1..h8` that processes every
-- 64-byte block of s (len is a multiple of 64).
local function generate()
  local src = {}
  local function emit(line) src[#src + 1] = line end
  emit("local sunpack = string.unpack")
  emit("return function(s, len, h1, h2, h3, h4, h5, h6, h7, h8)")
  emit("for pos = 1, len, 64 do")
  local w = {}
  for j = 0, 15 do w[#w + 1] = "w" .. j end
  emit("local " .. concat(w, ", ") .. " = sunpack('>" .. srep("I4", 16) .. "', s, pos)")
  for j = 16, 63 do
    -- s0 = ror7 ^ ror18 ^ shr3 of w[j-15]; s1 = ror17 ^ ror19 ^ shr10 of w[j-2].
    emit(("local w%d do local x, y = w%d * 0x100000001, w%d * 0x100000001 " ..
          "w%d = (w%d + w%d + ((x >> 7) ~ (x >> 18) ~ (w%d >> 3)) " ..
          "+ ((y >> 17) ~ (y >> 19) ~ (w%d >> 10))) & 0xffffffff end")
      :format(j, j - 15, j - 2, j, j - 16, j - 7, j - 15, j - 2))
  end
  -- Eight slots v0..v7 hold a..h; instead of shifting all eight each round,
  -- the names rotate: round j reads a from slot -j mod 8, b from 1-j mod 8, ...
  -- and writes the new e over d and the new a over h.
  -- Maj(a, b, c) is computed as b ~ ((a ~ b) & (b ~ c)); this round's a ~ b is
  -- the next round's b ~ c, so it is kept (alternating between m0 and m1).
  emit("local v0, v1, v2, v3, v4, v5, v6, v7 = h1, h2, h3, h4, h5, h6, h7, h8")
  emit("local m0, m1 = v1 ~ v2, 0")
  for j = 0, 63 do
    local function v(role) return "v" .. ((role - j) % 8) end
    local a, b, c, d, e, f, g, h = v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)
    local bc, ab = "m" .. (j % 2), "m" .. ((j + 1) % 2)
    emit(("do local x = %s * 0x100000001 " ..
          "local t1 = %s + ((x >> 6) ~ (x >> 11) ~ (x >> 25)) + (%s ~ (%s & (%s ~ %s))) + %d + w%d " ..
          "%s = (%s + t1) & 0xffffffff " ..
          "x = %s * 0x100000001 %s = %s ~ %s " ..
          "%s = (t1 + ((x >> 2) ~ (x >> 13) ~ (x >> 22)) + (%s ~ (%s & %s))) & 0xffffffff end")
      :format(e, h, g, e, f, g, K[j + 1], j, d, d, a, ab, a, b, h, b, ab, bc))
  end
  -- After 64 rounds (a multiple of 8) the names are back in their slots.
  emit("h1, h2, h3, h4 = (h1 + v0) & 0xffffffff, (h2 + v1) & 0xffffffff, (h3 + v2) & 0xffffffff, (h4 + v3) & 0xffffffff")
  emit("h5, h6, h7, h8 = (h5 + v4) & 0xffffffff, (h6 + v5) & 0xffffffff, (h7 + v6) & 0xffffffff, (h8 + v7) & 0xffffffff")
  emit("end")
  emit("return h1, h2, h3, h4, h5, h6, h7, h8")
  emit("end")
  return concat(src, "\n")
end

local blocks = assert(load(generate(), "=sha256-compress", "t", {string = string}))()

--- Returns the 32-byte binary SHA-256 digest of string `s`.
function sha256.digest(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'digest' (string expected, got " .. type(s) .. ")", 2)
  end
  -- Padding: 0x80, zeros up to 56 mod 64, then the bit length as 64-bit big-endian.
  local n = #s
  local m = s .. "\128" .. srep("\0", (55 - n) % 64) .. spack(">I8", n * 8)
  return spack(">I4I4I4I4I4I4I4I4", blocks(m, #m,
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19))
end

--- Returns the digest of `s` as 64 lowercase hex characters.
function sha256.hex(s)
  return (sha256.digest(s):gsub(".", function(c) return sformat("%02x", c:byte()) end))
end

return sha256
