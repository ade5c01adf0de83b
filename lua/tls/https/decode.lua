-- Content decoding for tls.https: gzip and deflate bodies (RFC 9110,
-- 8.4.1) inflated through lua-zlib when it is installed (Debian package
-- lua-zlib; an optional dependency: without it nothing is advertised and
-- bodies arrive as sent).
--
-- The inflater is fed the compressed bytes in small pieces, so one call
-- yields at most ~1000 times a piece (deflate's largest ratio): the decoded
-- size is then bounded between pieces by the body limit (max_body), and a
-- decompression bomb stops at the limit without ever being held in memory.

local ok, zlib = pcall(require, "zlib")
if not (ok and type(zlib) == "table" and type(zlib.inflate) == "function") then zlib = nil end

local decode = {}

decode.available = zlib ~= nil
decode.ACCEPT = "gzip, deflate"
decode.PIECE = 4096

local codings = { gzip = "gzip", ["x-gzip"] = "gzip", deflate = "deflate" }

-- The coding of a response body we can decode, or nil ("identity", none,
-- several codings, or one we do not know: the body is left as sent).
function decode.coding(res)
  local ce = res.headers["content-encoding"]
  if not ce then return nil end
  return codings[ce:lower():match("^%s*(.-)%s*$")]
end

local D = {}
D.__index = D

-- decode.new(coding) -> decoder with :feed(piece) -> decoded | nil, err and
-- :finish() -> true | nil, err
function decode.new(coding)
  -- windowBits 15 + 32: zlib or gzip header, detected
  return setmetatable({ coding = coding, inflate = zlib.inflate(47), started = false,
    finished = false }, D)
end

local function bad(self, msg)
  msg = tostring(msg):gsub("^.-: ", ""):gsub(" at [%w_]+%.c line %d+", "")
  return nil, ("content decoding: bad %s data (%s)"):format(self.coding, msg)
end

-- One piece through the inflater: the decoded bytes | nil, err. A piece
-- may hold the end of one gzip member and the start of the next (RFC 1952,
-- 2.2): what the member's end left of the piece starts the next one.
function D:feed(piece)
  local outs = {}
  while piece ~= "" do
    if self.finished then
      -- bytes after the end of the stream: a next gzip member, or junk
      if self.coding == "gzip" and piece:byte(1) == 0x1f then
        self.inflate, self.finished, self.total_in = zlib.inflate(47), false, 0
      else
        break
      end
    end
    local okf, out, eof, total_in = pcall(self.inflate, piece)
    if not okf and self.coding == "deflate" and not self.started then
      -- "deflate" sent as a raw stream without the zlib header (common)
      self.inflate = zlib.inflate(-15)
      okf, out, eof, total_in = pcall(self.inflate, piece)
    end
    if not okf then return bad(self, out) end
    self.started = true
    outs[#outs + 1] = out or ""
    -- lua-zlib counts the input of the whole stream: this piece's share
    local before = self.total_in or 0
    self.total_in = total_in
    if not eof then break end
    self.finished = true
    piece = type(total_in) == "number" and piece:sub(total_in - before + 1) or ""
  end
  return table.concat(outs)
end

function D:finish()
  if self.started and not self.finished then
    -- a raw deflate stream has no trailer to say it is complete; a final
    -- empty feed flushes and reports the end if there is one
    local okf, _, eof = pcall(self.inflate, "")
    if not (okf and eof) then
      return nil, ("content decoding: the %s body ended before its compressed stream did"):format(self.coding)
    end
  end
  return true
end

return decode
