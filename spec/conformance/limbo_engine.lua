-- The module's side of `make limbo`: each x509-limbo case as a handshake
-- between two tls.engine objects in this process, once with the default
-- policy and once with tls.policy.strict.
--
--   lua5.4 spec/conformance/limbo_engine.lua < cases.tsv
--
-- Input lines are the ones limbo_raw.c reads (id, kind, dir, servername,
-- depth); each case prints two lines: id <tab> default|strict <tab>
-- pass|fail|skip [<tab> error]. limbo.lua runs it under faketime at the
-- case's validation time.

local tls = require "tls"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Moves bytes both ways until the verifier is done or either side failed.
-- Returns true, or nil and the verifier's error (the other side's when the
-- verifier has none).
local function handshake(client, server, verifier)
  local done, errs = {}, {}
  for _ = 1, 1000 do
    for _, e in ipairs({ client, server }) do
      if not done[e] and not errs[e] then
        local ok, err = e:handshake()
        if ok then done[e] = true
        elseif err ~= "wantread" and err ~= "wantwrite" then errs[e] = err end
      end
    end
    local c2s, s2c = client:drain(), server:drain()
    if #c2s > 0 then server:feed(c2s) end
    if #s2c > 0 then client:feed(s2c) end
    if errs[client] or errs[server] then
      return nil, errs[verifier] or errs[client] or errs[server]
    end
    if done[client] and done[server] and #c2s == 0 and #s2c == 0 then return true end
  end
  return nil, "handshake did not finish"
end

local server_dir = os.getenv("LIMBO_SERVER_DIR")

local function run(kind, dir, servername, depth, policy)
  local ca, chain, key = slurp(dir .. "/ca.pem"), slurp(dir .. "/chain.pem"), slurp(dir .. "/key.pem")
  local verify = { ca = ca, crl = slurp(dir .. "/crl.pem"), verify_depth = depth, policy = policy }
  local present = { cert = chain, key = key, insecure_noverifycert = true,
    insecure_noverifyname = true, policy = false }
  local copts, sopts
  if kind == "SERVER" then
    copts, sopts = verify, present
    copts.mode, sopts.mode = "client", "server"
    if servername then copts.servername = servername else copts.insecure_noverifyname = true end
  else
    copts, sopts = present, verify
    copts.mode, sopts.mode, copts.servername = "client", "server", "localhost"
    sopts.verify_client = true
    sopts.cert, sopts.key = slurp(server_dir .. "/cert.pem"), slurp(server_dir .. "/key.pem")
  end
  local okc, client, cerr = pcall(tls.engine, copts)
  local oks, server, serr = pcall(tls.engine, sopts)
  -- A refused option (raise) or an unusable key (nil, message) means the
  -- module cannot express this case, not that it verified it.
  if not okc or not client then return "skip", "tls.engine refused the client options: " .. tostring(client or cerr) end
  if not oks or not server then return "skip", "tls.engine refused the server options: " .. tostring(server or serr) end
  local ok, err = handshake(client, server, kind == "SERVER" and client or server)
  client:close()
  server:close()
  if ok then return "pass" end
  return "fail", err
end

local policies = {
  { "default", nil },
  { "strict", tls.policy.strict },
}

for line in io.lines() do
  local id, kind, dir, servername, depth = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
  if not id then error("limbo_engine: bad input line: " .. line) end
  servername = servername ~= "-" and servername or nil
  depth = depth ~= "-" and tonumber(depth) or nil
  for _, p in ipairs(policies) do
    local result, err = run(kind, dir, servername, depth, p[2])
    io.write(id, "\t", p[1], "\t", result, err and ("\t" .. tostring(err):gsub("[\t\n]", " ")) or "", "\n")
  end
  io.flush()
end
