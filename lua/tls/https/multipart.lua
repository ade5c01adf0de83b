-- multipart/form-data request bodies for tls.https (RFC 7578): the
-- multipart = { name = value, ... } option. A value is a string (or
-- number), or a file: { file = "/path" [, filename =, content_type =] }
-- (or { data = "bytes", filename =, content_type = }). Files are streamed
-- from disk in 64 KiB reads (each its own open: nothing stays open between
-- calls); the total length is known up front, so the
-- body goes with a Content-Length (and over HTTP/2 as DATA frames).

local compat = require "tls.compat"

local multipart = {}

local BLOCK = 65536
local counter = 0

-- Bytes nobody can guess for the boundary: whoever supplies a file's
-- content and could predict the boundary could end the part in it and add
-- fields of their own. (math.random alone is not seeded on Lua 5.1.)
local function unpredictable()
  local f = io.open("/dev/urandom", "rb")
  if not f then return "" end
  local bytes = f:read(16) or ""
  f:close()
  return bytes
end

local function boundary()
  counter = counter + 1
  local seed = table.concat({ unpredictable(), tostring(os.time()), tostring(os.clock()),
    tostring(counter), tostring({}), tostring(math.random()) }, "|")
  return "----lua-tls-" .. require("tls.sha256").hex(seed):sub(1, 32)
end

-- The size of the regular file at path: size | nil, err. A directory
-- opens and "seeks" to 2^63-1, which went out as a negative Content-Length.
local function file_size(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "multipart: cannot open " .. tostring(err) end
  local probe, perr = f:read(0)
  local size = f:seek("end")
  f:close()
  if probe == nil and perr then
    return nil, ("multipart: cannot read %s: %s"):format(path, tostring(perr))
  end
  if type(size) ~= "number" or size < 0 or size >= 2 ^ 53 then
    return nil, ("multipart: %s has no size to send (not a regular file)"):format(path)
  end
  return size
end

-- quotes and line breaks in a name or file name, as browsers escape them
local function quoted(s)
  return (tostring(s):gsub('[\r\n"]', { ["\r"] = "%0D", ["\n"] = "%0A", ['"'] = "%22" }))
end

-- multipart.body(fields) -> source, length, content_type | nil, err
-- (raises on misuse: a value of the wrong type)
function multipart.body(fields, level)
  local names = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then
      error(("tls.https: option 'multipart': field names must be strings, got %s"):format(type(k)), level)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local b = boundary()
  local pieces, length = {}, 0   -- strings, or { path, size } for a file
  local function add(s) pieces[#pieces + 1] = s; length = length + #s end
  for _, name in ipairs(names) do
    local v = fields[name]
    local head = "--" .. b .. '\r\nContent-Disposition: form-data; name="' .. quoted(name) .. '"'
    if type(v) == "string" or type(v) == "number" then
      add(head .. "\r\n\r\n" .. (type(v) == "number" and compat.number_text(v) or v) .. "\r\n")
    elseif type(v) == "table" and (type(v.file) == "string" or type(v.data) == "string") then
      local filename = v.filename or (v.file and v.file:match("([^/]*)$")) or name
      local ctype = v.content_type or "application/octet-stream"
      if type(ctype) ~= "string" or ctype:find("[\r\n]") then
        error("tls.https: option 'multipart': content_type must be a string without CR or LF", level)
      end
      add(head .. '; filename="' .. quoted(filename) .. '"\r\nContent-Type: ' .. ctype .. "\r\n\r\n")
      if v.data then
        add(v.data)
      else
        local size, err = file_size(v.file)
        if not size then return nil, err end
        pieces[#pieces + 1] = { v.file, size }
        length = length + size
      end
      add("\r\n")
    else
      error(("tls.https: option 'multipart': field '%s' must be a string, a number or "
        .. "{ file = path } / { data = bytes }, got %s"):format(name, type(v)), level)
    end
  end
  add("--" .. b .. "--\r\n")
  -- A file is opened for each read and closed at once: a request that
  -- fails half way (the server closed, a timeout) never calls the source
  -- again, and must not leave a descriptor open until the collector runs.
  local i, file, offset, left = 0, nil, 0, 0
  local function source()
    while true do
      if file then
        local f, err = io.open(file, "rb")
        if not f then file = nil; return nil, "multipart: cannot open " .. tostring(err) end
        local chunk = f:seek("set", offset) and f:read(math.min(BLOCK, left))
        f:close()
        if not chunk or #chunk == 0 then
          file = nil
          return nil, "multipart: a file got shorter while it was sent"
        end
        offset, left = offset + #chunk, left - #chunk
        if left <= 0 then file = nil end
        return chunk
      end
      i = i + 1
      local p = pieces[i]
      if p == nil then return nil end
      if type(p) == "string" then return p end
      if p[2] > 0 then file, offset, left = p[1], 0, p[2] end
    end
  end
  return source, length, "multipart/form-data; boundary=" .. b
end

return multipart
