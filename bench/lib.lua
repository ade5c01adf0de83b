-- Helpers for the benchmark driver (bench/run.lua) and its sections:
-- settings from the environment, the throwaway PKI and trust store, peer
-- processes, and the result table.

local socket = require "socket"

local lib = {}

lib.root = os.getenv("BENCH_ROOT") or "."
lib.lua = os.getenv("LUA") or "lua5.4"
-- raw libtls, built against the same library as the module (make bench-libressl)
lib.ctls = os.getenv("BENCH_CTLS") or lib.root .. "/build/bench/ctls"

--- Settings: every count and duration is bounded and can be set from the
--- environment. BENCH_SMOKE=1 shrinks them all to prove the code runs.

local smoke = os.getenv("BENCH_SMOKE") == "1"
lib.smoke = smoke

local function setting(name, default, smoke_value)
  local v = tonumber(os.getenv(name))
  if v then return math.floor(v) end
  if smoke then return smoke_value end
  return default
end

lib.settings = {
  hs = setting("BENCH_HS", 200, 6),                -- handshakes per measurement
  hs_bundle = setting("BENCH_HS_BUNDLE", 40, 2),   -- ... when the CA bundle is re-parsed each time
  warm = setting("BENCH_WARM", 20, 1),             -- untimed warm-up handshakes
  repeats = setting("BENCH_REPEAT", 3, 1),         -- best of N, interleaved
  bulk_repeats = setting("BENCH_BULK_REPEAT", 5, 1),  -- best of N for the (short) transfers
  bulk_mib = setting("BENCH_BULK_MIB", 64, 1),     -- MiB per one-way transfer (16 KiB writes)
  -- the versions section compares builds by ratio: 200 handshakes or 64 MiB
  -- are 0.06 CPU s, where scheduling noise alone moves a ratio by 5%
  versions_hs = setting("BENCH_VERSIONS_HS", 1000, 6),     -- server handshakes per build
  versions_mib = setting("BENCH_VERSIONS_MIB", 256, 1),    -- MiB per build's one-way transfer
  echo_mib = setting("BENCH_ECHO_MIB", 16, 1),     -- MiB per echo transfer (16 KiB writes)
  small_mib = setting("BENCH_SMALL_MIB", 8, 1),    -- MiB per transfer with 1 KiB writes
  conns = setting("BENCH_CONNS", 1000, 20),        -- idle connections held open
  engines = setting("BENCH_ENGINES", 1000, 20),    -- engine pairs held open
  gets = setting("BENCH_GETS", 200, 5),            -- HTTPS GETs
  cg_pairs = setting("BENCH_CALLGRIND_N", 8, 1),   -- handshakes counted under callgrind
  timeout = setting("BENCH_TIMEOUT", 180, 60),     -- seconds any one peer may run
}

-- BENCH_ONLY="server,bulk" runs only the sections whose names contain one of these.
function lib.wanted(name)
  local only = os.getenv("BENCH_ONLY")
  if not only or only == "" then return true end
  for word in only:gmatch("[^,%s]+") do
    if name:find(word, 1, true) then return true end
  end
  return false
end

--- Shell and files

function lib.sh(cmd)
  local ok = os.execute("( " .. cmd .. " ) >/dev/null 2>&1")
  if not ok then error("bench: command failed: " .. cmd, 2) end
end

function lib.capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

function lib.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function lib.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function lib.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function lib.has_module(name)
  return (pcall(require, name))
end

lib.now = socket.gettime
lib.sleep = socket.sleep

-- "a=1 b=x" -> {a = 1, b = "x"}
function lib.kv(line)
  local t = {}
  for k, v in (line or ""):gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

-- The last line of text with key=value pairs, parsed.
function lib.result(text)
  local last
  for line in (text or ""):gmatch("[^\n]+") do
    if line:find("^%w+=") then last = line end
  end
  return last and lib.kv(last)
end

function lib.free_port()
  local core = require "tls.core"
  local l = assert(core.listen("127.0.0.1", "0"))
  local _, port = l:getsockname()
  l:close()
  return port
end

--- Temporary directory, removed at exit by the driver.

local tmp
function lib.tmpdir()
  if not tmp then
    tmp = (lib.capture("mktemp -d /tmp/lua-tls-bench.XXXXXX")):match("%S+")
  end
  return tmp
end

function lib.remove_tmpdir()
  if tmp then os.execute("rm -rf " .. tmp) end
  tmp, lib._pki = nil, nil
end

--- Processes

local running = {}

-- Start cmd in the background; wait for "READY" on its output when
-- ready is true. Returns {pid, log, stop(), wait(), output()}.
function lib.spawn(cmd, ready)
  local log = os.tmpname()
  local p = assert(io.popen(("sh -c %q & echo $!"):format(
    ("exec timeout -s KILL %d %s > %s 2>&1 < /dev/null"):format(lib.settings.timeout, cmd, log))))
  local pid = tonumber(p:read("*l"))
  p:close()
  local h = { pid = pid, log = log, cmd = cmd }
  running[h] = true
  function h.output() return lib.read(log) or "" end
  function h.alive()
    local stat = lib.read("/proc/" .. h.pid .. "/stat")
    return stat ~= nil and not stat:match("^%d+ %b() Z")
  end
  function h.wait(seconds)
    local deadline = lib.now() + (seconds or lib.settings.timeout)
    while h.alive() and lib.now() < deadline do lib.sleep(0.02) end
    return not h.alive()
  end
  function h.stop()
    if h.pid then
      os.execute("kill " .. h.pid .. " 2>/dev/null")
      h.wait(2)
      os.execute("kill -9 " .. h.pid .. " 2>/dev/null")
      h.pid = nil
    end
    running[h] = nil
    os.remove(log)
  end
  if ready then
    local deadline = lib.now() + 20
    while not h.output():find("READY", 1, true) do
      if not h.alive() or lib.now() > deadline then
        local out = h.output()
        h.stop()
        error("bench: peer did not start: " .. cmd .. "\n" .. out, 2)
      end
      lib.sleep(0.01)
    end
    -- timeout(1) forks the command: the peer says its own pid
    h.peer_pid = tonumber(h.output():match("READY pid=(%d+)"))
  end
  return h
end

function lib.stop_all()
  for h in pairs(running) do h.stop() end
end

-- Run cmd to completion (bounded); returns the parsed result line and the output.
function lib.run(cmd)
  local out = lib.capture(("timeout -s KILL %d %s"):format(lib.settings.timeout, cmd))
  return lib.result(out), out
end

-- Start a server (waits for READY), run a client against it to completion,
-- give the server a moment to finish; returns both parsed result lines.
function lib.serve(server_cmd, client_cmd)
  local srv = lib.spawn(server_cmd, true)
  local ok, cres, cout = pcall(lib.run, client_cmd(srv))
  if not ok then srv.stop() error(cres, 0) end
  srv.wait(15)
  local sout = srv.output()
  local sres = lib.result(sout)
  srv.stop()
  if not cres then
    error(("bench: client gave no result: %s\n%s\nserver: %s"):format(
      client_cmd(srv), cout, sout), 0)
  end
  return sres, cres, sout
end

-- For a peer that prints no READY line (openssl s_server, nginx): wait
-- until 127.0.0.1:port accepts a TCP connection. If it does not within
-- 10 s, or srv (a lib.spawn handle) exits first, stop srv and raise with
-- its output and `detail` (more output, such as a log file's).
function lib.wait_port(port, srv, what, detail)
  local deadline = lib.now() + 10
  while true do
    local s = socket.tcp()
    local up = s:connect("127.0.0.1", port)
    s:close()
    if up then return end
    if not srv.alive() or lib.now() > deadline then
      local out = srv.output() .. (detail and detail() or "")
      srv.stop()
      error(("bench: %s did not start on port %d:\n%s"):format(what, port, out), 2)
    end
    lib.sleep(0.02)
  end
end

-- openssl s_server for TLS 1.2 resumption on pair (pki.ecdsa or pki.rsa),
-- answering HTTP (-www); returns its lib.spawn handle once it listens.
function lib.s_server(port, pair)
  local srv = lib.spawn(("openssl s_server -tls1_2 -accept 127.0.0.1:%d -cert %s -key %s -www -quiet")
    :format(port, pair.cert, pair.key))
  lib.wait_port(port, srv, "openssl s_server")
  return srv
end

-- Interleave measurements: `repeats` rounds over keys, keep the best value
-- (max for "higher", min for "lower") per key. fn(key) returns a number or nil.
function lib.best(keys, fn, better, repeats)
  local best = {}
  for _ = 1, repeats or lib.settings.repeats do
    for _, k in ipairs(keys) do
      local v = fn(k)
      if type(v) == "number" and v == v then
        if best[k] == nil or (better == "lower" and v < best[k]) or (better ~= "lower" and v > best[k]) then
          best[k] = v
        end
      elseif best[k] == nil then
        best[k] = v
      end
    end
  end
  return best
end

-- Total instructions (Ir) callgrind counts for cmd; nil when it failed.
-- valgrind counts every byte a `rep movsb` copies as one instruction, which
-- makes a memcpy look ~30 times dearer than it runs; glibc's vector copy
-- loop (forced for every size here) counts about one per 32 bytes.
function lib.callgrind_prefix(out)
  return ("env GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=2147483647 "
    .. "valgrind --tool=callgrind --callgrind-out-file=%s "):format(out)
end

function lib.callgrind_total(out)
  local text = lib.read(out) or ""
  os.remove(out)
  local total = text:match("\ntotals:%s*(%d+)") or text:match("\nsummary:%s*(%d+)")
  return tonumber(total)
end

function lib.have(tool)
  return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true
end

--- PKI: an ECDSA P-256 and an RSA-2048 chain, each leaf for localhost and
--- 127.0.0.1, and a trust store like the system's with both roots added.

function lib.pki()
  if lib._pki then return lib._pki end
  local dir = lib.tmpdir() .. "/pki"
  lib.sh("mkdir -p " .. dir)
  local function keygen(path, kind)
    if kind == "rsa" then
      lib.sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. path)
    else
      lib.sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. path)
    end
  end
  local pki = { dir = dir }
  for _, kind in ipairs { "ecdsa", "rsa" } do
    local k = kind == "rsa" and "rsa" or "ec"
    local ca, cakey = dir .. "/" .. kind .. "-ca.crt", dir .. "/" .. kind .. "-ca.key"
    local crt, key, csr = dir .. "/" .. kind .. ".crt", dir .. "/" .. kind .. ".key", dir .. "/" .. kind .. ".csr"
    keygen(cakey, k)
    lib.sh(("openssl req -x509 -new -key %s -out %s -days 30 -subj '/CN=lua-tls bench %s root' "
      .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
      :format(cakey, ca, kind))
    keygen(key, k)
    lib.sh(("openssl req -new -key %s -out %s -subj /CN=localhost"):format(key, csr))
    lib.write(dir .. "/ext.cnf", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
      .. "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    lib.sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 30 -extfile %s")
      :format(csr, ca, cakey, crt, dir .. "/ext.cnf"))
    pki[kind] = { cert = crt, key = key, ca = ca }
  end
  -- The system store's hashed directory, mirrored, plus both bench roots.
  local trust = dir .. "/trust"
  lib.sh("mkdir -p " .. trust)
  local system_dir = "/etc/ssl/certs"
  local n = 0
  local p = io.popen("cd " .. system_dir .. " && ls")
  for name in p:lines() do
    if name:match("^%x%x%x%x%x%x%x%x%.%d+$") then
      local target = (lib.capture("readlink -f " .. system_dir .. "/" .. name)):match("[^\n]+")
      if target then
        os.execute(("ln -s %q %q"):format(target, trust .. "/" .. name))
        n = n + 1
      end
    end
  end
  p:close()
  for _, kind in ipairs { "ecdsa", "rsa" } do
    local hash = (lib.capture("openssl x509 -hash -noout -in " .. pki[kind].ca)):match("%x+")
    local i = 0
    while lib.exists(trust .. "/" .. hash .. "." .. i) do i = i + 1 end
    lib.sh(("cp %s %s/%s.%d"):format(pki[kind].ca, trust, hash, i))
  end
  pki.trust_dir = trust
  pki.system_roots = n
  -- The bundle a user would name as ca_file/cafile: the system's plus ours.
  pki.bundle = dir .. "/bundle.pem"
  lib.sh(("cat /etc/ssl/certs/ca-certificates.crt %s %s > %s")
    :format(pki.ecdsa.ca, pki.rsa.ca, pki.bundle))
  local bundle = lib.read(pki.bundle) or ""
  local _, count = bundle:gsub("BEGIN CERTIFICATE", "")
  pki.bundle_certs = count
  lib._pki = pki
  return pki
end

--- Implementations: each is a command prefix taking the same role arguments.

lib.impls = {
  module = { name = "lua-tls", cmd = lib.lua .. " " .. lib.root .. "/bench/peer_module.lua" },
  c = { name = "libtls (C)", cmd = lib.ctls },
  luasec = { name = "LuaSec", cmd = lib.lua .. " " .. lib.root .. "/bench/peer_luasec.lua" },
}

function lib.luasec_available()
  return lib.has_module("ssl")
end

return lib
