-- Mutation fuzzer for tls.x509.parse.
--
-- Usage: LUA_PATH='lua/?.lua;;' lua5.4 fuzz/x509_fuzz.lua [iterations] [seed] [corpus-dir] [regressions-dir]
--
-- FUZZ_SECONDS=n (as `make fuzz` sets it) runs for n seconds of CPU time
-- (os.clock); iterations, if also given and not 0, stops it earlier. With
-- neither, it runs 10,000 iterations. An empty seed means os.time().
-- Every file of regressions-dir (default fuzz/regressions/x509: past
-- failures, see spec/fuzz_regressions_spec.lua) is replayed first.
--
-- Takes the DER certificates in the corpus, mutates them (bit flips, byte
-- inserts and deletes, length tampering, truncation, splices) and checks that
-- x509.parse never raises, never runs away, and returns either a table or
-- nil plus a string; and that the C core's certificate checks (x509_issued,
-- as child and as issuer) and base64 decoder answer without raising. On failure it prints the input as hex and exits 1, so the
-- case can be replayed: lua5.4 -e 'print(require"tls.x509".parse((io.read"a":gsub("%x%x", function(h) return string.char(tonumber(h,16)) end))))'

local x509 = require "tls.x509"
local asn1 = require "tls.asn1"
local core = require "tls.core"
local base64 = require "tls.base64"

local seconds = tonumber(os.getenv("FUZZ_SECONDS") or "")
local iterations = tonumber(arg[1] or "")
if iterations == 0 then iterations = nil end
if not seconds and not iterations then iterations = 10000 end
local seed = tonumber(arg[2] or "") or os.time()
local corpus_dir = arg[3] or "fuzz/corpus/x509"
local regressions_dir = arg[4] or "fuzz/regressions/x509"

-- A parse that executes this many VM instructions is treated as a hang; a real
-- certificate needs well under a million.
local INSTRUCTION_LIMIT = 50000000

local corpus = {}
do
  local p = assert(io.popen("ls " .. corpus_dir .. "/*.der 2>/dev/null"))
  for path in p:lines() do
    local f = assert(io.open(path, "rb"))
    corpus[#corpus + 1] = f:read("*a")
    f:close()
  end
  p:close()
end
if #corpus == 0 then
  io.stderr:write("no corpus files in ", corpus_dir, "\n")
  os.exit(2)
end

math.randomseed(seed)
local random, char, byte = math.random, string.char, string.byte

-- Positions of every header in a certificate, for the length mutations.
local headers = {}
for i, der in ipairs(corpus) do
  local list, stack = {}, { assert(asn1.decode(der)) }
  while #stack > 0 do
    local n = table.remove(stack)
    list[#list + 1] = n
    for _, c in ipairs(n.children or {}) do stack[#stack + 1] = c end
  end
  headers[i] = list
end

local lengths = {
  "\128", "\129\255", "\130\255\255", "\132\255\255\255\255", "\132\127\255\255\255",
  "\137\1\0\0\0\0\0\0\0\0", "\0", "\1", "\129\0", "\130\0\1",
}

local mutators = {
  function(s) -- flip one bit
    if #s == 0 then return s end
    local p = random(#s)
    local b, k = byte(s, p), 2 ^ random(0, 7)
    b = math.floor(b / k) % 2 == 1 and b - k or b + k
    return s:sub(1, p - 1) .. char(b) .. s:sub(p + 1)
  end,
  function(s) -- set one byte to a random value
    if #s == 0 then return s end
    local p = random(#s)
    return s:sub(1, p - 1) .. char(random(0, 255)) .. s:sub(p + 1)
  end,
  function(s) -- insert bytes
    local p = random(#s + 1)
    local t = {}
    for i = 1, random(1, 4) do t[i] = char(random(0, 255)) end
    return s:sub(1, p - 1) .. table.concat(t) .. s:sub(p)
  end,
  function(s) -- delete bytes
    if #s == 0 then return s end
    local p = random(#s)
    return s:sub(1, p - 1) .. s:sub(p + random(1, 8))
  end,
  function(s) -- truncate
    return s:sub(1, random(0, #s))
  end,
  function(s) -- duplicate a chunk
    if #s == 0 then return s end
    local a = random(#s)
    local b = math.min(#s, a + random(0, 64))
    return s:sub(1, b) .. s:sub(a, b) .. s:sub(b + 1)
  end,
}

-- Length tampering needs the original structure, so it works on a corpus entry.
local function tamper_length(k)
  local der, list = corpus[k], headers[k]
  local n = list[random(#list)]
  return der:sub(1, n.pos) .. lengths[random(#lengths)] .. der:sub(n.vpos)
end

local function splice()
  local a, b = corpus[random(#corpus)], corpus[random(#corpus)]
  return a:sub(1, random(#a)) .. b:sub(random(#b))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

local function fail(input, why)
  io.stderr:write(("FAIL (seed %d): %s\ninput (%d bytes):\n%s\n"):format(seed, why, #input, hex(input)))
  os.exit(1)
end

local accepted, rejected = 0, 0

local function check_core(input)
  local other = corpus[random(#corpus)]
  for _, pair in ipairs({ { input, other }, { other, input } }) do
    local ok, issued, why = pcall(core.x509_issued, pair[1], pair[2])
    if not ok then fail(input, "core.x509_issued raised: " .. tostring(issued)) end
    if issued ~= true and (issued ~= false or type(why) ~= "string") then
      fail(input, "core.x509_issued answered " .. tostring(issued) .. ", " .. tostring(why))
    end
  end
  local ok, text, why = pcall(core.base64_decode, input)
  if not ok or (text == nil and type(why) ~= "string") then
    fail(input, "core.base64_decode: " .. tostring(text) .. ", " .. tostring(why))
  end
  if core.base64_decode(base64.encode(input)) ~= input then fail(input, "base64 round trip") end
end

local function check(input)
  check_core(input)
  debug.sethook(function() error("instruction limit exceeded (hang?)") end, "", INSTRUCTION_LIMIT)
  local ok, cert, err = pcall(x509.parse, input)
  debug.sethook()
  if not ok then
    fail(input, "x509.parse raised: " .. tostring(cert))
  elseif cert == nil then
    if type(err) ~= "string" then fail(input, "nil without a message string") end
    -- x509.parse catches its own bugs as a last resort; the fuzzer wants to see them.
    if err:find("internal error", 1, true) then fail(input, err) end
    rejected = rejected + 1
  elseif type(cert) ~= "table" or type(cert.der) ~= "string" then
    fail(input, "returned " .. type(cert) .. " instead of a certificate table")
  else
    accepted = accepted + 1
  end
end

-- Past failures first (README and .gitkeep are not inputs).
local replayed = 0
do
  local p = assert(io.popen("ls " .. regressions_dir .. " 2>/dev/null"))
  for name in p:lines() do
    if name ~= "README" and name ~= ".gitkeep" then
      local f = io.open(regressions_dir .. "/" .. name, "rb")
      if f then
        check(f:read("*a"))
        f:close()
        replayed = replayed + 1
      end
    end
  end
  p:close()
end

local t0 = os.clock()
local deadline = seconds and t0 + seconds or math.huge
local i = 0
while (not iterations or i < iterations) and os.clock() < deadline do
  i = i + 1
  local k = random(#corpus)
  local input
  local r = random(10)
  if r == 1 then
    input = tamper_length(k)
  elseif r == 2 then
    input = splice()
  else
    input = corpus[k]
  end
  for _ = 1, random(1, 3) do
    input = mutators[random(#mutators)](input)
  end
  check(input)
  if i % 10000 == 0 then
    io.stderr:write(("%d iterations, %d accepted, %d rejected\n"):format(i, accepted, rejected))
  end
end

print(("ok: %d regressions replayed, %d iterations (seed %d) in %.1f s: %d parsed, %d rejected with a message")
  :format(replayed, i, seed, os.clock() - t0, accepted, rejected))
