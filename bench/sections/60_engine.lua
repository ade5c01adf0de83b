-- In-memory engines: a client engine and a server engine pumped against each
-- other in one process (tls.engine vs libtls's tls_connect_cbs/tls_accept_cbs
-- over memory queues in C). Pairs per CPU second, and the memory one
-- established pair holds. LuaSec has no in-memory engine.
-- No target marks: time on a shared machine moves by more than the
-- targets' margins. The callgrind section holds these cases to them.
return {
  name = "engine",
  title = "engine handshake pairs/s and memory per engine",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    for _, kind in ipairs { "ecdsa", "rsa" } do
      for _, proto in ipairs { "tlsv1.3", "tlsv1.2" } do
        local best = lib.best({ "module", "c" }, function(impl)
          local res, out = lib.run(("%s engine-hs %s %s %s %s %d %d"):format(lib.impls[impl].cmd,
            pki[kind].cert, pki[kind].key, pki[kind].ca, proto, S.hs, S.warm))
          if not res or res.ok ~= S.hs then error(impl .. " engine-hs failed: " .. out) end
          return res.ok / res.cpu
        end)
        b.row { case = ("%s %s pairs"):format(kind == "rsa" and "RSA-2048" or "ECDSA P-256", proto),
          unit = "pairs/s", module = best.module, c = best.c, luasec = "n/a" }
      end
    end
    local mem = {}
    for _, impl in ipairs { "module", "c" } do
      local res, out = lib.run(("%s engine-hold %s %s %s tlsv1.3 %d %d"):format(lib.impls[impl].cmd,
        pki.ecdsa.cert, pki.ecdsa.key, pki.ecdsa.ca, S.engines, S.warm))
      if not res or res.held ~= S.engines then error(impl .. " engine-hold failed: " .. out) end
      mem[impl] = res.pair_kib / S.engines / 2
    end
    b.row { case = ("per engine (%d established pairs held)"):format(S.engines), unit = "KiB",
      better = "lower", module = mem.module, c = mem.c, luasec = "n/a" }
  end,
}
