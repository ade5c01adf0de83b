-- HPACK's Huffman coding (RFC 7541, 5.2 and Appendix B), in arithmetic only
-- (no bitwise operators: the Lua layer parses on 5.1/LuaJIT too).
--
--   huffman.encode(s) -> the code of s, padded with 1 bits
--   huffman.decode(s) -> the decoded string | nil, reason
--   huffman.length(s) -> bytes encode(s) would take

local code = require "tls.h2.huffman_code"

local CODES, LENGTHS = code.CODES, code.LENGTHS
local byte, char, concat, floor = string.byte, string.char, table.concat, math.floor
local unpack = table.unpack or unpack

-- bytes (numbers) -> string, in chunks: string.char takes a bounded number of arguments
local function bytes_to_string(t, n)
  local parts = {}
  for i = 1, n, 4096 do
    parts[#parts + 1] = char(unpack(t, i, math.min(n, i + 4095)))
  end
  return concat(parts)
end

local huffman = {}

-- Decoding walks a binary tree one bit at a time; a leaf holds its symbol.
-- Each node is { [0] = child, [1] = child } or a number (the symbol).
local root = {}
for sym = 0, 256 do
  local c, len = CODES[sym + 1], LENGTHS[sym + 1]
  local node = root
  for i = len - 1, 0, -1 do
    local bit = floor(c / 2 ^ i) % 2
    if i == 0 then
      node[bit] = sym
    else
      local nxt = node[bit]
      if not nxt then nxt = {}; node[bit] = nxt end
      node = nxt
    end
  end
end

-- Per node and input byte: where the 8 bits lead and what they emit, built
-- on first use (a header value then decodes a byte per table lookup):
-- steps[node][b] = { node_after, emitted string, depth_after, ones_after }
-- Only walks that emit a symbol are kept: after a symbol the padding state
-- (depth since the last symbol, all ones so far) depends on these bits
-- alone; without one it carries on from the state before.
local steps = {}

local function walk(node, depth, ones, b)
  local syms = {}
  for i = 7, 0, -1 do
    local bit = floor(b / 2 ^ i) % 2
    local nxt = node[bit]
    if nxt == nil then return nil end
    if type(nxt) == "number" then
      if nxt == 256 then return nil, "EOS" end
      syms[#syms + 1] = nxt
      node, depth, ones = root, 0, true
    else
      node, depth, ones = nxt, depth + 1, ones and bit == 1
    end
  end
  return { node, char(unpack(syms)), depth, ones }
end

function huffman.decode(s)
  local node, depth, ones = root, 0, true
  local out, n = {}, 0
  for i = 1, #s do
    local b = byte(s, i)
    local per = steps[node]
    if not per then per = {}; steps[node] = per end
    local st = per[b]
    if st == nil then
      local reason
      st, reason = walk(node, depth, ones, b)
      if not st then
        return nil, reason == "EOS" and "the EOS symbol inside a string"
          or "an invalid code"
      end
      if st[2] ~= "" then per[b] = st end
    end
    if st[2] ~= "" then
      n = n + 1
      out[n] = st[2]
      node, depth, ones = st[1], st[3], st[4]
    else
      node, depth, ones = st[1], depth + 8, ones and b == 255
    end
  end
  if node ~= root and (depth > 7 or not ones) then
    return nil, "padding longer than 7 bits or not all ones"
  end
  return concat(out)
end

function huffman.length(s)
  local bits = 0
  for i = 1, #s do bits = bits + LENGTHS[byte(s, i) + 1] end
  return floor((bits + 7) / 8)
end

function huffman.encode(s)
  local out, n = {}, 0
  local cur, nbits = 0, 0   -- pending bits (at most 7 + 30: exact in a double)
  for i = 1, #s do
    local sym = byte(s, i) + 1
    local len = LENGTHS[sym]
    cur = cur * 2 ^ len + CODES[sym]
    nbits = nbits + len
    while nbits >= 8 do
      nbits = nbits - 8
      local p = 2 ^ nbits
      local b = floor(cur / p)
      cur = cur - b * p
      n = n + 1
      out[n] = b
    end
  end
  if nbits > 0 then
    -- pad with the most significant bits of EOS (all ones)
    local pad = 8 - nbits
    n = n + 1
    out[n] = cur * 2 ^ pad + (2 ^ pad - 1)
  end
  return bytes_to_string(out, n)
end

return huffman
