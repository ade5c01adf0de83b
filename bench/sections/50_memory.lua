-- Memory per idle established connection: a client opens BENCH_CONNS
-- connections (after a few warm-up ones) and holds them; the growth of the
-- server's and the client's resident set, divided by the count. The client
-- verifies against the system-sized trust directory; both ends are the
-- same implementation.
return {
  name = "memory",
  title = "memory per idle connection (KiB, RSS growth / connections)",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    local impls = { "module", "c" }
    if lib.luasec_available() then impls[#impls + 1] = "luasec" end
    local server, client = {}, {}
    for _, impl in ipairs(impls) do
      local cmd = lib.impls[impl].cmd
      local port = lib.free_port()
      local srv = lib.spawn(("%s hold-server %d %s %s tlsv1.3"):format(cmd, port, pki.ecdsa.cert,
        pki.ecdsa.key), true)
      local res, out = lib.run(("%s hold-client 127.0.0.1 %d tlsv1.3 %d %d path:%s %d"):format(
        cmd, port, S.conns, S.warm, pki.trust_dir, srv.peer_pid))
      srv.stop()
      if not res or res.held ~= S.conns then error(impl .. " hold-client failed: " .. out) end
      server[impl] = res.server_kib / S.conns
      client[impl] = res.client_kib / S.conns
    end
    b.note(("%d connections held, ECDSA P-256 TLS 1.3"):format(S.conns))
    b.row { case = "server side, per connection", unit = "KiB", better = "lower",
      module = server.module, c = server.c, luasec = server.luasec, target_luasec = 1.0 }
    b.row { case = "client side, per connection", unit = "KiB", better = "lower",
      module = client.module, c = client.c, luasec = client.luasec, target_luasec = 1.0 }
  end,
}
