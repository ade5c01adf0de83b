-- Reading an HTTP/1.1 response for tls.https from a tls.https.reader: the
-- status line and header block (1xx interim answers skipped), then the body
-- as it is framed (Content-Length, chunked, or up to the close), each within
-- the request's limits (st: max_header_size, max_headers; a body's state:
-- max_body). Every error is a message for the caller of tls.https.

local compat = require "tls.compat"
local headers_mod = require "tls.https.headers"

local response = {}

local BLOCK = 65536

-- A short printable excerpt of what a peer sent, for error messages.
local function quote(s)
  local cut = #s > 60
  s = s:sub(1, 60):gsub("[%c\128-\255\"\\]", function(c)
    return ("\\x%02x"):format(c:byte())
  end)
  return '"' .. s .. (cut and '"...' or '"')
end

response.quote = quote

-- The connection ended: "closed" after the server's close_notify,
-- "truncated" when the TCP connection closed without one (tls.conn's
-- receive). Either ends a response that was not complete; only a clean
-- close completes a body that runs to the close.
local function ended(err)
  return err == "closed" or err == "truncated"
end

response.ended = ended

local function header_too_big(st)
  return ("response header block is over %d bytes (option max_header_size)"):format(st.max_header_size)
end

-- Status line and headers, skipping 1xx interim responses.
-- -> res | nil, err, nothing_received
function response.read_head(r, st)
  local left = st.max_header_size
  while true do
    local line, err = r:line(left)
    if not line then
      if err == "too long" then return nil, header_too_big(st) end
      if ended(err) then
        if r.received == 0 then
          return nil, "truncated response: the server closed the connection without answering", true
        end
        return nil, "truncated response: the connection closed in the status line"
      end
      return nil, err
    end
    left = left - #line - 2
    local version, code, reason = line:match("^HTTP/(%d%.%d) (%d%d%d)[ \t]?(.*)$")
    if not version then
      return nil, "malformed response: bad status line " .. quote(line)
    end
    local fields = {}
    while true do
      if left <= 0 then return nil, header_too_big(st) end
      line, err = r:line(left)
      if not line then
        if err == "too long" then return nil, header_too_big(st) end
        if ended(err) then
          return nil, "truncated response: the connection closed in the header block"
        end
        return nil, err
      end
      left = left - #line - 2
      if line == "" then break end
      if line:match("^[ \t]") then
        -- obsolete line folding: the line continues the previous value
        if #fields == 0 then return nil, "malformed response: bad header line " .. quote(line) end
        local f = fields[#fields]
        f[2] = f[2] .. " " .. line:match("^[ \t]*(.-)[ \t]*$")
      else
        local name, value = line:match("^([^:]+):[ \t]*(.-)[ \t]*$")
        if not name or not name:match(headers_mod.TOKEN) then
          return nil, "malformed response: bad header line " .. quote(line)
        end
        if #fields >= st.max_headers then
          return nil, ("response has over %d header lines (option max_headers)"):format(st.max_headers)
        end
        fields[#fields + 1] = { name, value }
      end
    end
    code = tonumber(code)
    if code == 101 then
      return nil, "malformed response: unexpected 101 Switching Protocols"
    end
    if code >= 200 or code < 100 then
      return { status = code, code = code, reason = reason, version = version,
        status_line = "HTTP/" .. version .. " " .. code .. (reason ~= "" and (" " .. reason) or ""),
        headers = headers_mod.new(fields) }
    end
  end
end

-- The limit's error names the way out that fits how the body is read
-- (state.reading: "kept" in memory, "sink", "stream" for stream = true,
-- "dropped" for a redirect's body).
local way_out = {
  kept = "give a sink or stream = true to read a larger body",
  sink = "math.huge for no limit",
  stream = "math.huge for no limit",
  dropped = "it bounds a followed redirect's body too: raise it, or redirect = false",
}
function response.body_too_big(state)
  local hint = way_out[state.reading or "kept"]
  return ("response body is over %d bytes (option max_body; %s)"):format(state.max_body, hint)
end
local body_too_big = response.body_too_big

-- Deliver (decoded) body bytes to the sink, within max_body; -> true | nil, err
local function deliver_plain(state, data)
  if data then
    state.received = state.received + #data
    if state.max_body and state.received > state.max_body then return nil, body_too_big(state) end
  end
  local ok, err = state.sink(data)
  if ok == false or (ok == nil and err ~= nil) then
    return nil, "sink: " .. tostring(err or "refused the data")
  end
  if data and state.progress then
    -- (the total is the Content-Length of the coded body: none when decoding)
    state.progress(state.received, not state.decoder and state.total or nil, state.res)
  end
  return true
end

-- Deliver body bytes as they arrived: through state.decoder (a
-- tls.https.decode decoder) when the body is content-coded, a piece at a
-- time so that max_body bounds what decoding makes. data nil: the end.
function response.deliver(state, data)
  local dec = state.decoder
  if not dec then return deliver_plain(state, data) end
  if data == nil then
    local ok, err = dec:finish()
    if not ok then return nil, err end
    return deliver_plain(state, nil)
  end
  local piece = state.decode_piece
  for i = 1, #data, piece do
    local out, err = dec:feed(#data <= piece and data or data:sub(i, i + piece - 1))
    if not out then return nil, err end
    if out ~= "" then
      local ok
      ok, err = deliver_plain(state, out)
      if not ok then return nil, err end
    end
  end
  return true
end

local function body_error(err, what)
  if ended(err) then return "truncated response: the connection closed " .. what end
  return err
end

local function read_length(r, state, n)
  local left = n
  while left > 0 do
    local d, err = r:some(left < BLOCK and left or BLOCK)
    if not d then
      return nil, body_error(err, ("after %d of %d body bytes"):format(n - left, n))
    end
    left = left - #d
    local ok, derr = response.deliver(state, d)
    if not ok then return nil, derr end
  end
  return true
end

local function read_chunked(r, st, state)
  while true do
    local line, err = r:line(1024)
    if not line then
      if err == "too long" then return nil, "bad chunk size: the chunk-size line is over 1024 bytes" end
      return nil, body_error(err, "in a chunked body")
    end
    local hex = line:match("^(%x+)[ \t]*;") or line:match("^(%x+)[ \t]*$")
    if not hex then return nil, "bad chunk size " .. quote(line) end
    hex = hex:gsub("^0+(%x)", "%1")
    if #hex > 12 then return nil, "bad chunk size " .. quote(line) .. " (too large)" end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    local ok
    ok, err = read_length(r, state, size)
    if not ok then
      if err:find("^truncated") then return nil, body_error("closed", "in a chunk") end
      return nil, err
    end
    line, err = r:line(0)
    if not line then
      if err == "too long" then return nil, "bad chunk: the data is longer than its chunk size" end
      return nil, body_error(err, "after a chunk")
    end
  end
  -- trailers: read and dropped, within the header limit
  local left = st.max_header_size
  while true do
    local line, err = r:line(left)
    if not line then
      if err == "too long" then return nil, header_too_big(st) end
      return nil, body_error(err, "in the trailers of a chunked body")
    end
    left = left - #line - 2
    if line == "" then return true end
    if left <= 0 then return nil, header_too_big(st) end
  end
end

local function read_until_close(r, state)
  while true do
    local d, err = r:some(BLOCK)
    if not d then
      if err == "closed" then return true end
      if err == "truncated" then
        -- anyone on the path can end a TCP connection: without the
        -- server's close_notify, the end of this body is not proven
        return nil, ("truncated response: the connection was cut off (closed without TLS "
          .. "close_notify) after %d body bytes, in a body delimited by the close"):format(state.received)
      end
      return nil, err
    end
    local ok, derr = response.deliver(state, d)
    if not ok then return nil, derr end
  end
end

-- Read the body as framed; -> true, reusable | nil, err
function response.read_body(r, st, res, method, state)
  local code, h = res.status, res.headers
  if method == "HEAD" or code == 204 or code == 304 or code < 200 then return true, true end
  local te, cl = h["transfer-encoding"], h["content-length"]
  local ok, err, reusable
  if te then
    -- the last coding decides; anything but chunked runs to the close
    if te:lower():match("([^,%s]+)[%s,]*$") == "chunked" then
      ok, err = read_chunked(r, st, state)
      reusable = true
    else
      ok, err = read_until_close(r, state)
    end
  elseif cl then
    local n
    for v in cl:gmatch("[^,]+") do
      local d = v:match("^%s*(%d+)%s*$")
      if not d or #d > 15 or (n and tonumber(d) ~= n) then n = nil; break end
      n = compat.tointeger(tonumber(d))
    end
    if not n then return nil, "malformed response: bad Content-Length " .. quote(cl) end
    state.total = n
    if state.max_body and n > state.max_body then
      return nil, body_too_big(state) .. ": the server announced " .. n
    end
    ok, err = read_length(r, state, n)
    reusable = true
  else
    ok, err = read_until_close(r, state)
  end
  if not ok then return nil, err end
  return true, reusable == true
end

return response
