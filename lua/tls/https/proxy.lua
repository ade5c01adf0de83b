-- HTTP CONNECT proxies for tls.https: which proxy a URL goes through
-- (options, or https_proxy / no_proxy from the environment), and the
-- CONNECT exchange on the proxy's socket. TLS to the server then runs
-- through the tunnel, end to end (tls.https's tunnel()).

local urlmod = require "tls.https.url"
local quote = require("tls.https.response").quote

local proxy = {}

local function no_proxy_match(u, list)
  for entry in list:gmatch("[^,%s]+") do
    entry = entry:lower()
    if entry == "*" then return true end
    local host, port = entry:match("^%[?([^%]]-)%]?:(%d+)$")
    if not host then host = entry:gsub("^%[(.*)%]$", "%1") end
    host = host:gsub("^%*?%.", "")
    if (not port or tonumber(port) == u.port)
      and (u.host == host or u.host:sub(-#host - 1) == "." .. host) then
      return true
    end
  end
  return false
end

-- The proxy for URL u, from the options proxy and no_proxy (nil: from the
-- environment): parsed proxy URL | nil | nil, message
function proxy.for_url(u, p, np)
  if p == false or u.scheme ~= "https" then return nil end
  if p == nil then
    p = os.getenv("https_proxy") or os.getenv("HTTPS_PROXY")
    if not p or p == "" then return nil end
    if np == nil then np = os.getenv("no_proxy") or os.getenv("NO_PROXY") end
  end
  if np and no_proxy_match(u, np) then return nil end
  local text = p
  if not p:match("^%a[%w+.-]*://") then p = "http://" .. p end
  if p:match("^https://") then
    return nil, "proxy: https:// proxy URLs are not supported (" .. text
      .. "); give the proxy as http://host:port (CONNECT still carries TLS end to end)"
  end
  local pu, err = urlmod.parse(p)
  if not pu then return nil, "proxy: " .. err end
  return pu
end

-- Ask proxy socket s (its timeout set) for a tunnel to u: true | nil, err
function proxy.send_connect(s, u, pu, useragent)
  local auth = urlmod.authority(u, true)
  local req = { "CONNECT " .. auth .. " HTTP/1.1", "Host: " .. auth, "User-Agent: " .. useragent }
  if pu.user then
    local b64 = require "tls.base64"
    req[#req + 1] = "Proxy-Authorization: Basic " .. b64.encode(pu.user .. ":" .. (pu.password or ""))
  end
  req[#req + 1] = "\r\n"
  local ok, err = s:send(table.concat(req, "\r\n"))
  if not ok then return nil, err == "timeout" and "timeout" or ("proxy: " .. tostring(err)) end
  return true
end

-- The proxy's answer to CONNECT, read through tls.https.reader r within
-- the limits st.max_header_size and st.max_headers: true | nil, err
function proxy.read_connect_answer(r, u, pu, st)
  local line, err = r:line(st.max_header_size)
  if not line then
    if err == "timeout" then return nil, "timeout" end
    return nil, "proxy: no answer to CONNECT (" .. tostring(err) .. ")"
  end
  local code, reason = line:match("^HTTP/%d%.%d (%d%d%d)%s?(.*)$")
  if not code then return nil, "proxy: malformed answer to CONNECT: " .. quote(line) end
  local total, count = #line, 0
  repeat
    count = count + 1
    if count > st.max_headers + 1 then
      return nil, "proxy: over " .. st.max_headers .. " header lines in the answer to CONNECT (option max_headers)"
    end
    line, err = r:line(st.max_header_size)
    if not line then
      return nil, err == "timeout" and "timeout" or ("proxy: truncated answer to CONNECT (" .. tostring(err) .. ")")
    end
    total = total + #line + 2
    if total > st.max_header_size then
      return nil, "proxy: header block over " .. st.max_header_size .. " bytes"
    end
  until line == ""
  if code ~= "200" then
    if code == "407" then
      return nil, ("proxy: authentication required (407 %s)%s"):format(reason,
        pu.user and "; the proxy refused the credentials" or "; give them as http://user:pass@host:port")
    end
    return nil, ("proxy: CONNECT %s refused: %s %s"):format(urlmod.authority(u, true), code, reason)
  end
  if r:buffered() > 0 then return nil, "proxy: sent data after its answer to CONNECT" end
  return true
end

return proxy
