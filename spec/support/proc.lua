-- Background peers for the specs: start a command, wait until its port
-- answers, stop it. Output goes to a log file the spec can read.

local socket_ok, socket = pcall(require, "socket")

local proc = {}

local function sleep(s)
  if socket_ok then socket.sleep(s) else os.execute("sleep " .. s) end
end
proc.sleep = sleep

-- A port nobody listens on right now.
function proc.free_port()
  local core = require "tls.core"
  local l = assert(core.listen("127.0.0.1", "0"))
  local _, port = l:getsockname()
  l:close()
  return port
end

local function port_open(port, host)
  if not socket_ok then return true end
  local s = socket.tcp()
  s:settimeout(0.2)
  local ok = s:connect(host or "127.0.0.1", port)
  s:close()
  return ok
end

-- The Lua interpreter running the suite (busted --lua=...): child Lua
-- processes run the same one, so `make test-all` tests each version
-- throughout. /proc gives the binary even when busted re-executed itself.
do
  local p = io.popen("readlink -f /proc/$PPID/exe 2>/dev/null")
  local exe = p and p:read("*l")
  if p then p:close() end
  proc.lua = (exe and exe:find("lua") and exe) or "lua5.4"
end

-- Child Lua processes find the module the way this one does, whether
-- the paths came from the environment (make test) or from .busted.
local function with_lua_paths(cmd)
  local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  return "export LUA_PATH=" .. q(package.path) .. " LUA_CPATH=" .. q(package.cpath) .. "; " .. cmd
end
proc.with_lua_paths = with_lua_paths

-- Whether process pid is alive (a zombie waiting to be reaped counts as gone).
function proc.running(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- The one way specs start a background process (a server, or a client
-- that runs while the spec serves it):
-- Module search paths (package.path form) with relative entries made
-- absolute, for a child that runs in another directory.
function proc.absolute_paths(paths)
  local root = os.getenv("PWD")
  return (paths:gsub("[^;]+", function(entry)
    if entry:sub(1, 1) == "/" then return entry end
    return root .. "/" .. entry:gsub("^%./", "")
  end))
end

-- proc.start(cmd, {port=, host=, wait=seconds, input=string}) -> handle
-- {pid, log, stop(), output(), wait([seconds])}. With `port`, returns once
-- something listens there. `input` is its standard input (default: none).
-- handle.wait() waits (bounded, default 10 s) for it to exit on its own,
-- then stops it and returns what it printed.
function proc.start(cmd, opts)
  opts = opts or {}
  local log, input = os.tmpname(), os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(opts.input or "")
  f:close()
  -- single quotes keep the command byte for byte (newlines included); exec
  -- makes pid the command itself, so stop() and running() reach it
  local quoted = "'" .. with_lua_paths("exec " .. cmd):gsub("'", "'\\''") .. "'"
  local p = io.popen(("exec sh -c %s > %s 2>&1 < %s & echo $!"):format(quoted, log, input))
  local pid = tonumber(p:read("*l"))
  p:close()
  local h = { pid = pid, log = log, cmd = cmd }
  function h.stop()
    if h.pid then
      os.execute("kill " .. h.pid .. " 2>/dev/null; sleep 0.05; kill -9 " .. h.pid .. " 2>/dev/null")
      h.pid = nil
    end
    os.remove(log)
    os.remove(input)
  end
  function h.output()
    local lf = io.open(log, "rb")
    if not lf then return "" end
    local s = lf:read("*a")
    lf:close()
    return s
  end
  function h.wait(seconds)
    local deadline = os.time() + (seconds or 10)
    while h.pid and proc.running(h.pid) and os.time() <= deadline do sleep(0.02) end
    local out = h.output()
    h.stop()
    return out
  end
  if opts.port then
    local deadline = os.time() + (opts.wait or 10)
    while not port_open(opts.port, opts.host) do
      if os.time() > deadline then
        local out = h.output()
        h.stop()
        error("peer did not start listening on port " .. opts.port .. ": " .. cmd .. "\n" .. out)
      end
      sleep(0.05)
    end
  end
  return h
end

-- Run a command to completion with stdin text; returns its output and status.
function proc.run(cmd, input)
  local inf = os.tmpname()
  local f = assert(io.open(inf, "wb"))
  f:write(input or "")
  f:close()
  local p = io.popen(with_lua_paths("{ " .. cmd .. "; }") .. " < " .. inf .. " 2>&1; echo \"__status=$?\"")
  local out = p:read("*a")
  p:close()
  os.remove(inf)
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return out:gsub("__status=%d+%s*$", ""), status
end

-- The descriptors this process holds now, after a full collection: their
-- count and a listing ("N -> target" lines). Pipes and /dev/null are left
-- out: they come and go with io.popen (the pipe this is read through shows
-- up once or twice depending on timing), not with the module.
-- proc.fds_now(): the same without collecting first, for a spec that checks
-- nothing was left to the collector (it stops it).
function proc.fds_now()
  local lines = {}
  local p = io.popen("ls -l /proc/" .. proc.my_pid() .. "/fd")
  for line in p:lines() do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if target and not target:find("^pipe:") and target ~= "/dev/null" then
      lines[#lines + 1] = fd .. " -> " .. target
    end
  end
  p:close()
  return #lines, table.concat(lines, "\n")
end

function proc.fds()
  collectgarbage()
  collectgarbage()
  return proc.fds_now()
end

local pid_cache
function proc.my_pid()
  if not pid_cache then
    -- /proc/self would be the reader; the parent of a child shell is us
    local p = io.popen("echo $PPID")
    pid_cache = tonumber(p:read("*l"))
    p:close()
  end
  return pid_cache
end

return proc
