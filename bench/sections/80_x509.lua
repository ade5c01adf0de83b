-- The pure-Lua X.509 parser on the system CA bundle, when it is there: runs
-- bench/x509_bench.lua (owned by the x509 work) and reports its line.
return {
  name = "x509",
  title = "x509 bundle parse time",
  run = function(b)
    local lib = b.lib
    local script = lib.root .. "/bench/x509_bench.lua"
    if not lib.exists(script) or not lib.exists(lib.root .. "/lua/tls/x509.lua") then
      return b.note("skipped: bench/x509_bench.lua or lua/tls/x509.lua is not there yet")
    end
    local out, ok = lib.capture(("timeout %d %s %s /etc/ssl/certs/ca-certificates.crt %d"):format(
      b.settings.timeout, lib.lua, script, lib.smoke and 1 or 5))
    local line = out:match("[^\n]*certificates[^\n]*")
    if not ok or not line then
      return b.note("x509_bench.lua did not run cleanly: " .. out:sub(1, 300))
    end
    local ms = tonumber(line:match("runs ([%d.]+) ms"))
    b.row { case = "parse the system CA bundle (tls.x509)", unit = "ms", better = "lower",
      module = ms, c = "n/a", luasec = "n/a" }
    b.note(line)
  end,
}
