-- tls.luasec.params: LuaSec's ssl.newcontext parameters turned into lua-tls
-- options. One translation, used by tls.luasec (contexts) and
-- tls.luasec.https (request tables). Where LuaSec's default is insecure (no
-- verification unless `verify` says so), lua-tls's secure default stays:
-- only an explicit verify = "none" turns checks off, as its name says.

local params = {}

local protocols = {
  any = "tlsv1.2,tlsv1.3", sslv23 = "tlsv1.2,tlsv1.3",
  tlsv1_2 = "tlsv1.2", tlsv1_3 = "tlsv1.3",
}
local old_protocols = { sslv2 = true, sslv3 = true, tlsv1 = true, tlsv1_1 = true }

-- Parameters LuaSec takes that lua-tls has no use for: its defaults already
-- do what they ask (options such as "no_sslv3"), or it never offers what
-- they tune (DHE parameters; TLS 1.3 suites are all AEAD and all offered).
local ignored = { options = true, dhparam = true, ciphersuites = true }

local function list_of(v)
  if type(v) == "table" then return v end
  return { v }
end

-- translate(p, where) -> opts, info | nil, message. opts holds lua-tls
-- option names; info = { mode =, verify_none = }. Misuse raises.
function params.translate(p, where)
  if type(p) ~= "table" then
    error(where .. ": parameters must be a table, got " .. type(p), 3)
  end
  local o, info = {}, { mode = p.mode }
  for k, v in pairs(p) do
    if k == "mode" then
      if v ~= "client" and v ~= "server" then
        error(where .. ": mode must be \"client\" or \"server\", got " .. tostring(v), 3)
      end
    elseif k == "protocol" then
      if old_protocols[v] then
        return nil, where .. ": protocol '" .. tostring(v) .. "' is not offered: lua-tls "
          .. "speaks TLS 1.2 and 1.3 only (use \"tlsv1_2\", \"tlsv1_3\" or \"any\")"
      end
      o.protocols = protocols[v]
      if not o.protocols then
        error(where .. ": unknown protocol '" .. tostring(v) .. "'", 3)
      end
    elseif k == "key" then o.key_file = v
    elseif k == "certificate" then o.cert_file = v
    elseif k == "password" then
      if type(v) == "function" then v = v() end
      o.key_password = v
    elseif k == "cafile" then o.ca_file = v
    elseif k == "capath" then o.ca_path = v
    elseif k == "depth" then o.verify_depth = v
    elseif k == "ciphers" then o.ciphers = v
    elseif k == "curve" or k == "curveslist" then o.ecdhecurves = (tostring(v):gsub(":", ","))
    elseif k == "alpn" then
      if type(v) == "function" then
        error(where .. ": alpn as a function (LuaSec's server-side selector) is not supported; "
          .. "give the list of protocols in preference order", 3)
      end
      o.alpn = list_of(v)
    elseif k == "verify" then
      local set = {}
      for _, flag in ipairs(list_of(v)) do set[flag] = true end
      info.verify = set
    elseif ignored[k] then -- luacheck: ignore
    else
      error(where .. ": unknown parameter '" .. tostring(k) .. "' (tls.luasec takes LuaSec's "
        .. "mode, protocol, key, certificate, password, cafile, capath, verify, options, "
        .. "ciphers, ciphersuites, depth, dhparam, curve, curveslist, alpn)", 3)
    end
  end
  local verify = info.verify or {}
  if verify.none and not verify.peer then
    -- named, as LuaSec's: no chain and no name checks
    info.verify_none = true
    if p.mode == "client" then
      o.insecure_noverifycert, o.insecure_noverifyname = true, true
    end
  elseif p.mode == "server" and verify.peer then
    o.verify_client = verify.fail_if_no_peer_cert and true or "optional"
  end
  return o, info
end

return params
