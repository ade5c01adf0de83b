-- Bulk throughput in MiB/s of wall time, both ends the same implementation
-- (ECDSA P-256, TLS 1.3, AES-256-GCM): one direction (the client writes,
-- the server reads and acknowledges the end) and echo (the client writes a
-- chunk and reads it back), with 16 KiB and 1 KiB writes. The one-way
-- reader reads 16 KiB blocks whatever the write size, as a bulk reader
-- does; what one call per 1 KiB record costs is in the callgrind section.
-- No target marks: time on a shared machine moves by more than the
-- targets' margins. The callgrind section holds these cases to them.
return {
  name = "bulk",
  title = "bulk throughput MiB/s",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    local impls = { "module", "c" }
    if lib.luasec_available() then impls[#impls + 1] = "luasec" end
    local cases = {
      { "one way, 16 KiB writes", "sink", 16384, S.bulk_mib },
      { "one way, 1 KiB writes", "sink", 1024, S.small_mib },
      { "echo, 16 KiB writes", "echo", 16384, S.echo_mib },
      { "echo, 1 KiB writes", "echo", 1024, S.small_mib },
    }
    for _, case in ipairs(cases) do
      local title, mode, chunk, mib = table.unpack(case)
      local total = mib * 1024 * 1024
      local best = lib.best(impls, function(impl)
        local port = lib.free_port()
        local cmd = lib.impls[impl].cmd
        local _, cres = lib.serve(
          ("%s bulk-server %d %s %s tlsv1.3 1"):format(cmd, port, pki.ecdsa.cert, pki.ecdsa.key),
          function()
            return ("%s bulk-client 127.0.0.1 %d tlsv1.3 %s %d %d"):format(cmd, port, mode, total, chunk)
          end)
        if cres.bytes ~= total then error(impl .. ": short transfer") end
        return total / cres.wall / 1048576
      end, "higher", S.bulk_repeats)
      b.row { case = title, unit = "MiB/s", module = best.module, c = best.c, luasec = best.luasec }
    end
  end,
}
