-- The module on every Lua it supports, side by side in one run: the 5.1,
-- LuaJIT, 5.2 and 5.3 builds (make build-all) against the 5.4 build, on
-- server handshakes per server CPU second (ECDSA P-256, TLS 1.3, a raw
-- libtls client) and one-way bulk transfer per CPU second of both ends
-- (16 KiB writes, both ends on the same Lua). The target (issue 14): each
-- within 10% of 5.4 (ratio >= 0.9). CPU time moves with the machine's load;
-- the best of BENCH_REPEAT interleaved runs is kept, each long enough
-- (settings versions_hs, versions_mib) that a ratio is not scheduling noise.
--
-- The transfer is measured twice: as a user runs it, and with glibc's heap
-- kept (GLIBC_TUNABLES trim_threshold), which takes the allocator's
-- give-back out of the figure. Lua 5.2's collector once made the reader
-- give its heap back to the kernel and fault it in again for every few
-- 16 KiB strings (src/compat.h now steps it where 5.3+ do; the bench
-- peer's bulk-server reports its minor page "faults"): where the two rows
-- of a build differ, the allocator is at work, not the module.
local VERSIONS = { "5.4", "5.1", "jit", "5.2", "5.3" }
local LABEL = { jit = "LuaJIT" }

return {
  name = "versions",
  title = "Lua 5.1, LuaJIT, 5.2, 5.3 builds against the 5.4 build (per CPU second)",
  run = function(b)
    local lib, S = b.lib, b.settings
    local pki = lib.pki()
    local cmd, keys = {}, {}
    for _, v in ipairs(VERSIONS) do
      local lua = v == "jit" and "luajit" or "lua" .. v
      local dir = lib.root .. (v == "5.4" and "/build" or "/build/" .. v)
      local has_lua = os.execute("command -v " .. lua .. " >/dev/null 2>&1")
      if (has_lua == true or has_lua == 0) and lib.exists(dir .. "/tls/core.so") then
        keys[#keys + 1] = v
        cmd[v] = ("env LUA_CPATH='%s/?.so;;' %s %s/bench/peer_module.lua"):format(dir, lua, lib.root)
      else
        b.note(("Lua %s: no %s or no %s/tls/core.so (make build-all): skipped"):format(v, lua, dir))
      end
    end
    if not cmd["5.4"] then error("the Lua 5.4 build is missing (make build)") end

    local hs = lib.best(keys, function(v)
      local port = lib.free_port()
      local sres = lib.serve(
        ("%s server-hs %d %s %s tlsv1.3 %d %d"):format(cmd[v], port, pki.ecdsa.cert, pki.ecdsa.key,
          S.versions_hs, S.warm),
        function()
          return ("%s client-hs 127.0.0.1 %d tlsv1.3 %d %d insecure"):format(lib.ctls, port,
            S.versions_hs, S.warm)
        end)
      if not sres or sres.ok ~= S.versions_hs then
        error(("Lua %s server: %d of %d handshakes"):format(v, sres and sres.ok or 0, S.versions_hs))
      end
      return sres.ok / sres.cpu
    end)

    -- heap_kept: both ends run with glibc's trim threshold above anything
    -- the transfer frees, so no heap is returned to the kernel mid-run
    local total = S.versions_mib * 1048576
    local KEEP = "env GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824 "
    local function transfer(v, heap_kept)
      local prefix = heap_kept and KEEP or ""
      local port = lib.free_port()
      local sres, cres = lib.serve(
        ("%s%s bulk-server %d %s %s tlsv1.3 1"):format(prefix, cmd[v], port, pki.ecdsa.cert, pki.ecdsa.key),
        function()
          return ("%s%s bulk-client 127.0.0.1 %d tlsv1.3 sink %d 16384"):format(prefix, cmd[v], port, total)
        end)
      if cres.bytes ~= total or not sres or sres.bytes ~= total then
        error("Lua " .. v .. ": short transfer")
      end
      return total / (sres.cpu + cres.cpu) / 1048576
    end
    local bulk = lib.best(keys, function(v) return transfer(v, false) end, "higher", S.bulk_repeats)
    local kept = lib.best(keys, function(v) return transfer(v, true) end, "higher", S.bulk_repeats)

    for _, v in ipairs(keys) do
      local name = "Lua " .. (LABEL[v] or v)
      local target = v ~= "5.4" and 0.9 or nil
      b.row { case = "server hs ECDSA P-256 tlsv1.3, " .. name, unit = "hs/CPU s",
        module = hs[v], lua54 = hs["5.4"], target_lua54 = target }
      b.row { case = "one way 16 KiB writes, " .. name, unit = "MiB/CPU s",
        module = bulk[v], lua54 = bulk["5.4"], target_lua54 = target }
      b.row { case = "one way 16 KiB writes, " .. name .. ", glibc heap kept", unit = "MiB/CPU s",
        module = kept[v], lua54 = kept["5.4"] }
    end
    b.note(("%d server handshakes and %d MiB per build and run; the 5.4 interpreter (lua.c) "
      .. "collects in generational mode, 5.1 to 5.3 and LuaJIT incrementally; "
      .. "\"glibc heap kept\" rows: the same transfer under GLIBC_TUNABLES="
      .. "glibc.malloc.trim_threshold=1073741824 (see the section's header)"):format(S.versions_hs, S.versions_mib))
  end,
}
