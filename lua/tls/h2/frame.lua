-- HTTP/2 frames (RFC 9113, 4 and 6): the frame header, the numbers in
-- payloads, and the names of types, settings and error codes. Arithmetic
-- only (no bitwise operators: the Lua layer parses on 5.1/LuaJIT too).

local byte, char, floor = string.byte, string.char, math.floor

local frame = {}

frame.PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
frame.HEADER_LENGTH = 9

frame.DATA, frame.HEADERS, frame.PRIORITY, frame.RST_STREAM = 0, 1, 2, 3
frame.SETTINGS, frame.PUSH_PROMISE, frame.PING, frame.GOAWAY = 4, 5, 6, 7
frame.WINDOW_UPDATE, frame.CONTINUATION = 8, 9

frame.TYPE_NAMES = { [0] = "DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
  "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION" }

-- flags
frame.END_STREAM, frame.ACK, frame.END_HEADERS, frame.PADDED, frame.PRIORITY_FLAG = 1, 1, 4, 8, 32

-- settings identifiers
frame.HEADER_TABLE_SIZE, frame.ENABLE_PUSH, frame.MAX_CONCURRENT_STREAMS = 1, 2, 3
frame.INITIAL_WINDOW_SIZE, frame.MAX_FRAME_SIZE, frame.MAX_HEADER_LIST_SIZE = 4, 5, 6

frame.ERRORS = { [0] = "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
  "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED" }
frame.CODES = {}
for code, name in pairs(frame.ERRORS) do frame.CODES[name] = code end

function frame.error_name(code)
  return frame.ERRORS[code] or ("error code 0x%x"):format(code)
end

function frame.has(flags, flag)
  return floor(flags / flag) % 2 == 1
end

function frame.u32(s, pos)
  local a, b, c, d = byte(s, pos, pos + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- a 31-bit number whose top (reserved) bit is ignored
function frame.u31(s, pos)
  return frame.u32(s, pos) % 2147483648
end

function frame.pack32(n)
  return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- The 9-byte header at s[pos]: length, type, flags, stream id
function frame.header(s, pos)
  pos = pos or 1
  local a, b, c, t, f = byte(s, pos, pos + 4)
  return (a * 256 + b) * 256 + c, t, f, frame.u31(s, pos + 5)
end

function frame.encode(ftype, flags, sid, payload)
  local n = #payload
  return char(floor(n / 65536), floor(n / 256) % 256, n % 256, ftype, flags)
    .. frame.pack32(sid) .. payload
end

-- SETTINGS payload from a list of { id, value }
function frame.settings(list)
  local out = {}
  for i, s in ipairs(list) do
    out[i] = char(floor(s[1] / 256), s[1] % 256) .. frame.pack32(s[2])
  end
  return table.concat(out)
end

return frame
