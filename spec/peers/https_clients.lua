-- Many HTTPS clients at once, on cqueues through tls.cqueues, for the event
-- loop specs: lua5.4 spec/peers/https_clients.lua PORT COUNT CA_FILE [REQUESTS]
-- Every client opens its own connection (all at once), sends REQUESTS
-- keep-alive requests for /client/<i>/req/<k> and checks that each response
-- echoes exactly its own request. Prints "ok N" or one line per failure.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local cqueues = require "cqueues"
local tcq = require "tls.cqueues"

local port, count, ca, requests = tonumber(arg[1]), tonumber(arg[2]), arg[3], tonumber(arg[4] or 2)
local cq = cqueues.new()
local ok_count, failures = 0, {}
local condition = require "cqueues.condition"
local arrived, connected, all_arrived = 0, 0, condition.new()

-- hold every connection open until all have connected (or failed to):
-- they really are served at once
local function arrive()
  arrived = arrived + 1
  if arrived == count then all_arrived:signal() else all_arrived:wait(60) end
end

local function fail(i, what) failures[#failures + 1] = ("client %d: %s"):format(i, tostring(what)) end

local function read_response(c)
  local status, err = c:receive("*l")
  if not status then return nil, "status line: " .. err end
  local length
  while true do
    local line, herr = c:receive("*l")
    if not line then return nil, "header: " .. herr end
    if line == "" then break end
    local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)$")
    if n then length = tonumber(n) end
  end
  if not length then return nil, "no Content-Length" end
  local body, berr = c:receive(length)
  if not body then return nil, "body: " .. berr end
  return status, body
end

for i = 1, count do
  cq:wrap(function()
    local c, err = tcq.connect("127.0.0.1", port, { ca_file = ca, servername = "localhost",
      timeout = 60 })
    if not c then fail(i, "connect: " .. err); return arrive() end
    connected = connected + 1
    arrive()
    for k = 1, requests do
      local path = ("/client/%d/req/%d"):format(i, k)
      local last = k == requests
      local sent, serr = c:send(("GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n")
        :format(path, last and "Connection: close\r\n" or ""))
      if not sent then c:close(); return fail(i, "send: " .. serr) end
      local status, body = read_response(c)
      if not status then c:close(); return fail(i, body) end
      if status ~= "HTTP/1.1 200 OK" or body ~= "GET " .. path .. "\n" then
        c:close()
        return fail(i, ("wrong response to %s: %q %q"):format(path, status, body))
      end
    end
    c:close()
    ok_count = ok_count + 1
  end)
end

local ok, err = cq:loop()
if not ok then fail(0, "loop: " .. tostring(err)) end
for _, f in ipairs(failures) do print(f) end
print(("ok %d of %d, all %d connected at once"):format(ok_count, count, connected))
os.exit(#failures == 0 and ok_count == count and 0 or 1)
