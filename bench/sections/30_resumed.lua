-- Resumed client handshakes per second of client CPU time: TLS 1.2 with a
-- session file (libtls's session_fd) against `openssl s_server -tls1_2`.
-- LuaSec has no client session resumption.
-- No target marks: time on a shared machine moves by more than the
-- targets' margins. The callgrind section holds these cases to them.
return {
  name = "resumed",
  title = "resumed client handshakes/s (TLS 1.2, session_file, vs openssl s_server)",
  run = function(b)
    local lib, S = b.lib, b.settings
    if not lib.have("openssl") then return b.note("skipped: openssl is not installed") end
    local pki = lib.pki()
    for _, kind in ipairs { "ecdsa", "rsa" } do
      local best = lib.best({ "module", "c" }, function(impl)
        local port = lib.free_port()
        local srv = lib.s_server(port, pki[kind])
        local session = lib.tmpdir() .. "/session-" .. impl .. "-" .. kind
        os.remove(session)
        -- one config for every connection, as the C reference does: options
        -- naming files (ca_file, session_file) are not cached by tls.connect
        local env = impl == "module" and "env BENCH_REUSE_CONFIG=1 " or ""
        local res, out = lib.run(("%s%s client-hs 127.0.0.1 %d tlsv1.2 %d %d file:%s %s"):format(
          env, lib.impls[impl].cmd, port, S.hs, S.warm, pki[kind].ca, session))
        srv.stop()
        os.remove(session)
        if not res or res.ok ~= S.hs then error(impl .. " resumed client failed: " .. out) end
        if res.resumed < res.ok then
          b.note(("%s %s: only %d of %d handshakes resumed"):format(impl, kind, res.resumed, res.ok))
        end
        return res.ok / res.cpu
      end)
      b.row { case = ("%s tlsv1.2 resumed"):format(kind == "rsa" and "RSA-2048" or "ECDSA P-256"),
        unit = "hs/s", module = best.module, c = best.c, luasec = "n/a" }
    end
  end,
}
