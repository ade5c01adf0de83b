-- The linked libtls (tls.core.library) and the detail texts it words its own
-- way. Specs assert the module's words and prefixes exactly; where a message
-- carries the TLS library's detail, they expect that library's detail, so each
-- library's real behaviour is pinned down (make test on LibreTLS,
-- make test-libressl on LibreSSL).
local core = require "tls.core"

local M = { name = core.library.name }
M.libressl = M.name == "LibreSSL"

-- Lua patterns for the detail each library gives.
local details = {
  -- a self-signed peer certificate
  self_signed = { LibreTLS = "self%-signed certificate", LibreSSL = "self signed certificate" },
  -- a record longer than 16 KiB + 2048
  record_overflow = { LibreTLS = "packet length too long", LibreSSL = "record overflow" },
  -- a TLS 1.1 ClientHello at a TLS 1.2+ server
  old_protocol = { LibreTLS = "unsupported protocol", LibreSSL = "wrong version number" },
}

-- libtls.detail(kind) -> the pattern the linked library's text matches
function M.detail(kind)
  local d = assert(details[kind], "spec/support/libtls: no detail named " .. tostring(kind))
  return d[M.name] or error("spec/support/libtls: no " .. kind .. " text known for " .. M.name)
end

return M
