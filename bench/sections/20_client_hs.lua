-- Client full handshakes per second of client CPU time, verifying the server
-- against a trust store the size of the system's: the system's hashed
-- directory mirrored with the bench roots added (how lua-tls loads its
-- default, ca_path=/etc/ssl/certs), and the same roots as one bundle file
-- (libtls's own default, and LuaSec's usual cafile). The peer is the raw
-- libtls server. LuaSec reuses one SSL context and checks no host name;
-- libtls builds a context per connection and checks the name.
-- No target marks: time on a shared machine moves by more than the
-- targets' margins. The callgrind section holds these cases to them.
return {
  name = "client_hs",
  title = "client full handshakes/s (per client CPU second), trust store loaded",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    b.note(("trust store: %d system roots + 2 bench roots; as a hashed directory "
      .. "and as a %d-certificate bundle file"):format(pki.system_roots, pki.bundle_certs))
    local impls = { "module", "c" }
    if lib.luasec_available() then impls[#impls + 1] = "luasec" end
    local function measure(kind, proto, trust, count)
      return lib.best(impls, function(impl)
        local port = lib.free_port()
        local _, cres = lib.serve(
          ("%s server-hs %d %s %s %s %d %d"):format(lib.ctls, port, pki[kind].cert,
            pki[kind].key, proto, count, S.warm),
          function()
            return ("%s client-hs 127.0.0.1 %d %s %d %d %s"):format(lib.impls[impl].cmd,
              port, proto, count, S.warm, trust)
          end)
        if cres.ok ~= count then
          error(("%s client: %d of %d handshakes"):format(impl, cres.ok or 0, count))
        end
        return cres.ok / cres.cpu
      end)
    end
    for _, kind in ipairs { "ecdsa", "rsa" } do
      for _, proto in ipairs { "tlsv1.3", "tlsv1.2" } do
        local best = measure(kind, proto, "path:" .. pki.trust_dir, S.hs)
        b.row { case = ("%s %s, ca_path dir"):format(kind == "rsa" and "RSA-2048" or "ECDSA P-256", proto),
          unit = "hs/s", module = best.module, c = best.c, luasec = best.luasec }
      end
    end
    local best = measure("ecdsa", "tlsv1.3", "file:" .. pki.bundle, S.hs_bundle)
    b.row { case = "ECDSA P-256 tlsv1.3, CA bundle file (libtls default)", unit = "hs/s",
      module = best.module, c = best.c, luasec = best.luasec }
  end,
}
