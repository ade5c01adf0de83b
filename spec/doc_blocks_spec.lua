-- Every Lua block of README.md and doc/*.md works as written. Each ```lua
-- block carries a mark on the line before it saying how it is checked:
--
--   <!-- check: run [peer=https|echo] -->    run in a fresh lua5.4
--   <!-- check: serve [client=s_client|curl] -->  a server: started, then a
--        real client connects to it and must succeed, then it is stopped
--   <!-- check: internet -->   needs the internet: compiled only
--   <!-- check: fragment -->   a piece of a larger program (shown inside a
--        runnable one elsewhere): compiled only
--
-- A mark may span lines: the lines after the first, up to "-->", are Lua
-- run before the block (what the surrounding text assumes, such as an open
-- `conn`). Blocks run in a scratch directory holding the files the docs
-- name (ca.pem, server.crt, server.key for localhost, ...; see fixtures()),
-- with HOME set to a fresh empty directory. Port 8443 in a block (and its
-- prelude) becomes a free port, on which peer= starts a real server (the
-- module's HTTPS test server or its echo server) or serve's client connects.

local pki = require "support.pki"
local kit = require "support.server_kit"
local proc = require "support.proc"
local peers = require "support.peers"

local quote = peers.quote

local read = pki.read

local function pages()
  local list = { "README.md" }
  local p = io.popen("ls doc/*.md 2>/dev/null")
  for name in p:lines() do list[#list + 1] = name end
  p:close()
  return list
end

-- The Lua blocks of one page: {file, line, mode, opts, prelude, code}.
local function blocks_of(file)
  local lines = {}
  for l in (read(file) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local out, i = {}, 1
  while i <= #lines do
    if lines[i]:match("^```lua%s*$") then
      local start = i
      local code = {}
      i = i + 1
      while i <= #lines and not lines[i]:match("^```%s*$") do
        code[#code + 1] = lines[i]
        i = i + 1
      end
      -- the mark: the closest non-blank line above the fence
      local j = start - 1
      while j > 0 and lines[j]:match("^%s*$") do j = j - 1 end
      local mark = { file = file, line = start, code = table.concat(code, "\n") .. "\n" }
      if j > 0 and lines[j]:match("%-%->%s*$") then
        -- find where the comment starts
        local k = j
        while k > 0 and not lines[k]:match("^<!%-%- check:") do k = k - 1 end
        if k > 0 then
          local head = lines[k]:match("^<!%-%- check:%s*(.-)%s*$"):gsub("%s*%-%->$", "")
          mark.mode = head:match("^(%a+)")
          mark.opts = {}
          for key, value in head:gmatch("(%a+)=(%S+)") do mark.opts[key] = value end
          local prelude = {}
          for m = k + 1, j - 1 do prelude[#prelude + 1] = lines[m] end
          if k < j then
            local last = lines[j]:gsub("%s*%-%->%s*$", "")
            if last ~= "" then prelude[#prelude + 1] = last end
          end
          mark.prelude = table.concat(prelude, "\n") .. "\n"
        end
      end
      out[#out + 1] = mark
    end
    i = i + 1
  end
  return out
end

-- The files the runnable blocks name, in a scratch directory.
local scratch
local function fixtures()
  if scratch then return scratch end
  local made = kit.setup()
  local p = io.popen("mktemp -d /tmp/lua-tls-doc.XXXXXX")
  scratch = p:read("*l")
  p:close()
  local function copy(from, to) pki.write(scratch .. "/" .. to, read(from)) end
  copy(made.ca, "ca.pem")
  copy(made.server.cert, "server.crt")
  copy(made.server.key, "server.key")
  -- doc/server.md: a default keypair, an SNI alternative and a wildcard, with
  -- OCSP staples; a client CA and its CRL
  local default = pki.leaf("default.localhost", { san = "DNS:localhost,IP:127.0.0.1" })
  local api = pki.leaf("api.localhost", { san = "DNS:api.localhost" })
  local wild = pki.leaf("wildcard.localhost", { san = "DNS:*.localhost" })
  local new = pki.leaf("new.localhost", { san = "DNS:localhost,IP:127.0.0.1" })
  copy(default.cert, "default.crt") copy(default.key, "default.key")
  copy(kit.ocsp_response(default, "good"), "default.ocsp.der")
  copy(api.cert, "api.crt") copy(api.key, "api.key")
  copy(kit.ocsp_response(api, "good"), "api.ocsp.der")
  copy(wild.cert, "wildcard.crt") copy(wild.key, "wildcard.key")
  copy(new.cert, "new.crt") copy(new.key, "new.key")
  copy(kit.ocsp_response(new, "good"), "new.ocsp.der")
  copy(made.ca, "clients-ca.pem")
  copy(made.crl, "clients.crl")
  -- doc/https.md uploads a file
  pki.write(scratch .. "/big.iso", string.rep("0123456789abcdef", 4096))
  return scratch
end

local function start_peer(name, port)
  local dir = fixtures()
  local script = ({ https = "https_server.lua", echo = "echo_server.lua" })[name]
  assert(script, "unknown peer=" .. tostring(name))
  return peers.lua_server_on(port, script, { cert = dir .. "/server.crt", key = dir .. "/server.key" })
end

-- Write prelude + block with 8443 replaced by port; the chunk's path.
local function chunk_file(b, port)
  local dir = fixtures()
  local src = (b.prelude or "") .. b.code
  if port then src = src:gsub("8443", tostring(port)) end
  local path = ("%s/block-%s-%d.lua"):format(dir, b.file:gsub("[/.]", "_"), b.line)
  pki.write(path, src)
  return path
end

local absolute = proc.absolute_paths

-- How a block is run: in the fixtures, a fresh HOME, bounded (a hang guard).
local homes = 0
local function command(path, exec)
  local dir = fixtures()
  homes = homes + 1
  local home = dir .. "/home-" .. homes
  return ("mkdir -p %s && cd %s && export HOME=%s LUA_PATH=%s LUA_CPATH=%s && %stimeout 120 "
    .. "env --default-signal=PIPE %s %s"):format(quote(home), quote(dir), quote(home),
    quote(absolute(package.path)), quote(absolute(package.cpath)), exec and "exec " or "",
    proc.lua, quote(path))
end

local function run_block(b)
  local port = proc.free_port()
  local peer = b.opts.peer and start_peer(b.opts.peer, port)
  local out, status = proc.run(command(chunk_file(b, port)))
  if peer then peer.stop() end
  assert(status == 0, ("%s:%d: the block failed (exit %s):\n%s"):format(b.file, b.line,
    tostring(status), out))
end

local clients = {
  s_client = "echo | openssl s_client -connect 127.0.0.1:%d -servername localhost "
    .. "-verify_return_error -CAfile ca.pem -quiet",
  curl = "curl -sS --max-time 30 --cacert ca.pem https://localhost:%d/",
}

local function serve_block(b)
  local port = proc.free_port()
  local server = proc.start("sh -c " .. quote(command(chunk_file(b, port), true)), { port = port, wait = 60 })
  local client = clients[b.opts.client or "s_client"]
  assert(client, "unknown client=" .. tostring(b.opts.client))
  local out, status = proc.run("cd " .. quote(fixtures()) .. " && timeout 60 " .. client:format(port))
  local alive = proc.running(server.pid)
  local log = server.output()
  server.stop()
  assert(status == 0, ("%s:%d: a client could not talk to the server (exit %s):\n%s\nserver:\n%s")
    :format(b.file, b.line, tostring(status), out, log))
  assert(alive, ("%s:%d: the server died after one client:\n%s"):format(b.file, b.line, log))
end

describe("the Lua blocks of the README and doc/", function()
  teardown(function()
    if scratch then os.execute("rm -rf " .. quote(scratch)) end
    kit.teardown()
  end)

  local all = {}
  for _, file in ipairs(pages()) do
    for _, b in ipairs(blocks_of(file)) do all[#all + 1] = b end
  end

  it("are found (the pages exist and hold blocks)", function()
    assert.is_true(#all >= 10, "found only " .. #all .. " blocks")
  end)

  for _, b in ipairs(all) do
    local where = ("%s:%d"):format(b.file, b.line)
    it(where .. " is marked and compiles", function()
      assert(b.mode, where .. ": mark this lua block with <!-- check: run|serve|internet|fragment --> "
        .. "on the line before it (see spec/doc_blocks_spec.lua)")
      assert(({ run = true, serve = true, internet = true, fragment = true })[b.mode],
        where .. ": unknown check mode '" .. tostring(b.mode) .. "'")
      local fn, err = (loadstring or load)((b.prelude or "") .. b.code, "=" .. where)
      assert(fn, err)
    end)
    if b.mode == "run" then
      it(where .. " runs", function() run_block(b) end)
    elseif b.mode == "serve" then
      it(where .. " serves a real client", function() serve_block(b) end)
    end
  end
end)
