-- tls.luasec.https: LuaSec's ssl.https.request on tls.https, with LuaSec's
-- returns (body, code, headers, status; 1, code, headers, status for a
-- request table). A request table's LuaSec TLS parameters (cafile, verify,
-- protocol, ...) are translated; as in tls.luasec, the server is verified
-- unless verify = "none" is given.

local https = require "tls.https"
local params = require "tls.luasec.params"

local M = { PORT = 443, TIMEOUT = 60 }

-- The keys a request table shares with LuaSocket's http.request, kept as
-- they are; the rest are LuaSec's TLS parameters.
local http_keys = {
  url = true, sink = true, method = true, headers = true, source = true,
  step = true, proxy = true, redirect = true, create = true, maxredirects = true,
}

function M.request(reqt, body)
  if type(reqt) ~= "table" then
    return https.request(reqt, body)
  end
  local tlsparams, req = { mode = "client" }, {}
  for k, v in pairs(reqt) do
    if http_keys[k] then req[k] = v else tlsparams[k] = v end
  end
  if req.maxredirects then req.max_redirects, req.maxredirects = req.maxredirects, nil end
  local opts, err = params.translate(tlsparams, "tls.luasec.https.request")
  if not opts then return nil, err end
  for k, v in pairs(opts) do req[k] = v end
  if req.timeout == nil then req.timeout = M.TIMEOUT end
  return https.request(req)
end

return M
