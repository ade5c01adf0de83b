-- Instruction counts under callgrind, where wall and CPU time are too noisy
-- on a shared machine: each figure is the difference between two runs of
-- the measured process with different counts (start-up and warm-up cancel),
-- divided by the difference in counts. ECDSA P-256, TLS 1.3.
-- Figures are thousands of instructions (kIr) per operation: lower is better.
return {
  name = "callgrind",
  title = "instructions per operation (callgrind, kIr)",
  run = function(b)
    local lib, S = b.lib, b.settings
    if not lib.have("valgrind") then return b.note("skipped: valgrind is not installed") end
    local pki = lib.pki()
    local lo, hi = 2, 2 + S.cg_pairs
    if lib.smoke then lo, hi = 1, 2 end
    local luasec = lib.luasec_available()
    local function cgfile() return lib.tmpdir() .. "/callgrind." .. lib.free_port() end

    -- the server process under callgrind, a raw-libtls client driving it
    local function server_ir(impl, n)
      local out, port = cgfile(), lib.free_port()
      lib.serve(lib.callgrind_prefix(out) .. ("%s server-hs %d %s %s tlsv1.3 %d 0"):format(
        lib.impls[impl].cmd, port, pki.ecdsa.cert, pki.ecdsa.key, n),
        function()
          return ("%s client-hs 127.0.0.1 %d tlsv1.3 %d 0 insecure"):format(lib.ctls, port, n)
        end)
      return lib.callgrind_total(out)
    end
    -- the client process under callgrind against the raw-libtls server
    local function client_ir(impl, n)
      local out, port = cgfile(), lib.free_port()
      lib.serve(("%s server-hs %d %s %s tlsv1.3 %d 0"):format(lib.ctls, port, pki.ecdsa.cert,
        pki.ecdsa.key, n),
        function()
          return lib.callgrind_prefix(out) .. ("%s client-hs 127.0.0.1 %d tlsv1.3 %d 0 path:%s")
            :format(lib.impls[impl].cmd, port, n, pki.trust_dir)
        end)
      return lib.callgrind_total(out)
    end
    -- the client resuming TLS 1.2 sessions (session_file) from openssl s_server
    local function resumed_ir(impl, n)
      local out, port = cgfile(), lib.free_port()
      local srv = lib.spawn(("openssl s_server -tls1_2 -accept 127.0.0.1:%d -cert %s -key %s -www -quiet")
        :format(port, pki.ecdsa.cert, pki.ecdsa.key))
      local socket = require "socket"
      local deadline = lib.now() + 10
      repeat
        local s = socket.tcp()
        local up = s:connect("127.0.0.1", port)
        s:close()
        if not up then lib.sleep(0.02) end
      until up or lib.now() > deadline
      local session = lib.tmpdir() .. "/cg-session"
      os.remove(session)
      -- one untimed connection stores the session; every counted one resumes
      local env = impl == "module" and "env BENCH_REUSE_CONFIG=1 " or ""
      local res, text = lib.run(("%s%s%s client-hs 127.0.0.1 %d tlsv1.2 %d 1 file:%s %s"):format(
        env, lib.callgrind_prefix(out), lib.impls[impl].cmd, port, n, pki.ecdsa.ca, session))
      srv.stop()
      os.remove(session)
      if not res or res.resumed ~= n then error(impl .. ": resumption failed: " .. text) end
      return lib.callgrind_total(out)
    end
    local function engine_ir(impl, n)
      local out = cgfile()
      lib.run(lib.callgrind_prefix(out) .. ("%s engine-hs %s %s %s tlsv1.3 %d 0"):format(
        lib.impls[impl].cmd, pki.ecdsa.cert, pki.ecdsa.key, pki.ecdsa.ca, n))
      return lib.callgrind_total(out)
    end
    -- the receiving side of a one-way transfer with 1 KiB writes, per
    -- 1 KiB record; n in units of 128 KiB. "sink": the reader reads 16 KiB
    -- blocks; "sinkrec": one receive(1024) per record, which shows the
    -- per-call cost (a Lua call and a new string) no C reader pays.
    local function recv_ir_mode(mode)
      return function(impl, n)
        local out, port = cgfile(), lib.free_port()
        local total = n * 131072
        lib.serve(lib.callgrind_prefix(out) .. ("%s bulk-server %d %s %s tlsv1.3 1"):format(
          lib.impls[impl].cmd, port, pki.ecdsa.cert, pki.ecdsa.key),
          function()
            return ("%s bulk-client 127.0.0.1 %d tlsv1.3 %s %d 1024"):format(lib.ctls, port, mode, total)
          end)
        return lib.callgrind_total(out)
      end
    end
    local recv_ir, recv_per_call_ir = recv_ir_mode("sink"), recv_ir_mode("sinkrec")

    local function per_op(fn, impl, a, c)
      local ir_a, ir_c = fn(impl, a), fn(impl, c)
      if not ir_a or not ir_c then error(impl .. ": callgrind gave no totals") end
      local per = (ir_c - ir_a) / (c - a) / 1000
      if fn == recv_ir or fn == recv_per_call_ir then per = per / 128 end  -- per record
      return per
    end

    local cases = {
      { "server full handshake", server_ir, true, lo, hi },
      { "client full handshake, ca_path dir", client_ir, true, lo, hi },
      { "client resumed handshake (TLS 1.2)", resumed_ir, false, lo, hi },
      { "engine handshake pair", engine_ir, false, lo, hi },
      { "receive a 1 KiB record, read in 16 KiB blocks", recv_ir, true, 1, lib.smoke and 2 or 8 },
      { "receive a 1 KiB record with receive(1024)", recv_per_call_ir, true, 1, lib.smoke and 2 or 8 },
    }
    -- throughput's target is 0.9 of C, handshakes' 0.95; the per-call row
    -- has none: it measures what one Lua call per record costs
    local targets_c = { [server_ir] = 0.95, [client_ir] = 0.95, [resumed_ir] = 0.95,
      [engine_ir] = 0.95, [recv_ir] = 0.9 }
    for _, case in ipairs(cases) do
      local title, fn, with_luasec, a, c = table.unpack(case)
      if lib.smoke and fn ~= engine_ir then goto continue end
      local v = {}
      for _, impl in ipairs { "module", "c", "luasec" } do
        if impl ~= "luasec" or (with_luasec and luasec) then
          b.progress(("%s: %s"):format(title, impl))
          v[impl] = per_op(fn, impl, a, c)
        end
      end
      b.row { case = title, unit = "kIr/op", better = "lower", module = v.module, c = v.c,
        luasec = with_luasec and v.luasec or "n/a", target_c = targets_c[fn],
        target_luasec = with_luasec and 1.0 or nil }
      ::continue::
    end
  end,
}
