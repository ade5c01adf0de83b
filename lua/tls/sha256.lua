-- SHA-256 (FIPS 180-4) in pure Lua, for Lua 5.1/LuaJIT to 5.4.
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
--
-- Before 5.3 there are no integers nor bitwise operators (this file must parse
-- there too, so the 5.3 code above exists only as generated text). There the
-- same rounds are generated as calls to a bit library: LuaJIT's `bit`, 5.2's
-- `bit32`, or (plain 5.1) arithmetic on doubles, exact below 2^53.

local sha256 = {}

local sbyte, schar, srep, sformat, concat = string.byte, string.char, string.rep, string.format, table.concat
local floor = math.floor

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
-- 64-byte block of s (len is a multiple of 64), for 5.3+'s 64-bit integers.
local function generate_native()
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

-- The same function as calls to the 32-bit operations BXOR, BAND, ROR, SHR and
-- N (reduce a sum to 32 bits), which `ops()` provides on Lua 5.1, LuaJIT and 5.2.
local function generate_calls()
  local src = {}
  local function emit(line) src[#src + 1] = line end
  emit("local BXOR, BAND, ROR, SHR, N, sbyte = ...")
  emit("return function(s, len, h1, h2, h3, h4, h5, h6, h7, h8)")
  emit("for pos = 1, len, 64 do")
  local b, w = {}, {}
  for j = 1, 64 do b[j] = "b" .. j end
  emit("local " .. concat(b, ", ") .. " = sbyte(s, pos, pos + 63)")
  for j = 0, 15 do
    emit(("local w%d = ((b%d * 256 + b%d) * 256 + b%d) * 256 + b%d")
      :format(j, 4 * j + 1, 4 * j + 2, 4 * j + 3, 4 * j + 4))
    w[#w + 1] = "w" .. j
  end
  for j = 16, 63 do
    emit(("local w%d = N(w%d + w%d + BXOR(BXOR(ROR(w%d, 7), ROR(w%d, 18)), SHR(w%d, 3)) " ..
          "+ BXOR(BXOR(ROR(w%d, 17), ROR(w%d, 19)), SHR(w%d, 10)))")
      :format(j, j - 16, j - 7, j - 15, j - 15, j - 15, j - 2, j - 2, j - 2))
  end
  emit("local v0, v1, v2, v3, v4, v5, v6, v7 = h1, h2, h3, h4, h5, h6, h7, h8")
  emit("local m0, m1 = BXOR(v1, v2), 0")
  for j = 0, 63 do
    local function v(role) return "v" .. ((role - j) % 8) end
    local a, b_, c, d, e, f, g, h = v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)
    local bc, ab = "m" .. (j % 2), "m" .. ((j + 1) % 2)
    emit(("do local t1 = %s + BXOR(BXOR(ROR(%s, 6), ROR(%s, 11)), ROR(%s, 25)) " ..
          "+ BXOR(%s, BAND(%s, BXOR(%s, %s))) + %d + w%d " ..
          "%s = N(%s + t1) %s = BXOR(%s, %s) " ..
          "%s = N(t1 + BXOR(BXOR(ROR(%s, 2), ROR(%s, 13)), ROR(%s, 22)) + BXOR(%s, BAND(%s, %s))) end")
      :format(h, e, e, e, g, e, f, g, K[j + 1], j, d, d, ab, a, b_, h, a, a, a, b_, ab, bc))
  end
  emit("h1, h2, h3, h4 = N(h1 + v0), N(h2 + v1), N(h3 + v2), N(h4 + v3)")
  emit("h5, h6, h7, h8 = N(h5 + v4), N(h6 + v5), N(h7 + v6), N(h8 + v7)")
  emit("end")
  emit("return h1, h2, h3, h4, h5, h6, h7, h8")
  emit("end")
  return concat(src, "\n")
end

-- BXOR, BAND, ROR, SHR, N for generate_calls, from the best library there is.
local function ops()
  local bit32 = rawget(_G, "bit32")
  if bit32 then
    -- Results are unsigned; sums are reduced modulo 2^32.
    return bit32.bxor, bit32.band, bit32.rrotate, bit32.rshift,
      function(x) return x % 4294967296 end
  end
  local ok, bit = pcall(require, "bit")
  if ok and type(bit) == "table" and bit.tobit then
    -- LuaJIT's bit (or LuaBitOp): results are signed 32-bit values.
    return bit.bxor, bit.band, bit.ror, bit.rshift, bit.tobit
  end
  -- Plain Lua 5.1: words are doubles in [0, 2^32). xor goes a byte at a
  -- time through a 256x256 table; a & b = (a + b - (a ~ b)) / 2.
  local X = {}
  for a = 0, 255 do
    for b = 0, 255 do
      local r, m, x, y = 0, 1, a, b
      while x > 0 or y > 0 do
        if x % 2 ~= y % 2 then r = r + m end
        x, y, m = floor(x / 2), floor(y / 2), m * 2
      end
      X[a * 256 + b] = r
    end
  end
  local function bxor(a, b)
    local a1, b1 = a % 256, b % 256
    a, b = (a - a1) / 256, (b - b1) / 256
    local a2, b2 = a % 256, b % 256
    a, b = (a - a2) / 256, (b - b2) / 256
    local a3, b3 = a % 256, b % 256
    a, b = (a - a3) / 256, (b - b3) / 256
    return X[a1 * 256 + b1] + X[a2 * 256 + b2] * 256 + X[a3 * 256 + b3] * 65536
      + X[a * 256 + b] * 16777216
  end
  local function band(a, b) return (a + b - bxor(a, b)) / 2 end
  local function ror(x, n)
    local lo = x % 2 ^ n
    return (x - lo) / 2 ^ n + lo * 2 ^ (32 - n)
  end
  local function shr(x, n) return (x - x % 2 ^ n) / 2 ^ n end
  return bxor, band, ror, shr, function(x) return x % 4294967296 end
end

local blocks
if (loadstring or load)("return 1 >> 1") then
  -- Lua 5.3+: the generated text uses the integer operators.
  blocks = assert(load(generate_native(), "=sha256-compress", "t", {string = string}))()
else
  local chunk = assert((loadstring or load)(generate_calls(), "=sha256-compress"))
  local bxor, band, ror, shr, norm = ops()
  blocks = chunk(bxor, band, ror, shr, norm, sbyte)
end

-- The 4 big-endian bytes of 32-bit word x (signed or unsigned).
local function be32(x)
  x = x % 4294967296
  return schar(floor(x / 16777216), floor(x / 65536) % 256, floor(x / 256) % 256, x % 256)
end

--- Returns the 32-byte binary SHA-256 digest of string `s`.
function sha256.digest(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'digest' (string expected, got " .. type(s) .. ")", 2)
  end
  -- Padding: 0x80, zeros up to 56 mod 64, then the bit length as 64-bit big-endian.
  local n = #s
  local bits = n * 8
  local m = s .. "\128" .. srep("\0", (55 - n) % 64)
    .. be32(floor(bits / 4294967296)) .. be32(bits % 4294967296)
  local h1, h2, h3, h4, h5, h6, h7, h8 = blocks(m, #m,
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
  return be32(h1) .. be32(h2) .. be32(h3) .. be32(h4) .. be32(h5) .. be32(h6) .. be32(h7) .. be32(h8)
end

--- Returns the digest of `s` as 64 lowercase hex characters.
function sha256.hex(s)
  return (sha256.digest(s):gsub(".", function(c) return sformat("%02x", c:byte()) end))
end

return sha256
