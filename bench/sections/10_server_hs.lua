-- Server full handshakes per second of server CPU time: the server under test
-- accepts, handshakes and closes; a raw-libtls client (no verification, so
-- it costs the server nothing extra) connects one at a time. Counting the
-- server's own CPU time keeps the other side and the machine's other load
-- out of the figure.
-- No target marks: time on a shared machine moves by more than the
-- targets' margins. The callgrind section holds these cases to them.
return {
  name = "server_hs",
  title = "server full handshakes/s (per server CPU second)",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    local impls = { "module", "c" }
    if lib.luasec_available() then impls[#impls + 1] = "luasec"
    else b.note("LuaSec (lua-sec) is not installed: its column is empty") end
    for _, kind in ipairs { "ecdsa", "rsa" } do
      for _, proto in ipairs { "tlsv1.3", "tlsv1.2" } do
        local best = lib.best(impls, function(impl)
          local port = lib.free_port()
          local sres = lib.serve(
            ("%s server-hs %d %s %s %s %d %d"):format(lib.impls[impl].cmd, port,
              pki[kind].cert, pki[kind].key, proto, S.hs, S.warm),
            function()
              return ("%s client-hs 127.0.0.1 %d %s %d %d insecure"):format(lib.ctls, port,
                proto, S.hs, S.warm)
            end)
          if not sres or sres.ok ~= S.hs then
            error(("%s server: %d of %d handshakes"):format(impl, sres and sres.ok or 0, S.hs))
          end
          return sres.ok / sres.cpu
        end)
        b.row { case = ("%s %s"):format(kind == "rsa" and "RSA-2048" or "ECDSA P-256", proto),
          unit = "hs/s", module = best.module, c = best.c, luasec = best.luasec }
      end
    end
  end,
}
