-- `luarocks make` installs the module: the C core and every Lua file.

local read = require("support.pki").read

local function lua_files()
  local list = {}
  local p = io.popen("cd lua && find tls -name '*.lua' | sort")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

describe("installation with luarocks", function()
  it("lists every Lua module of lua/tls in the rockspec", function()
    local rockspec = read("rockspec/lua-tls-scm-1.rockspec")
    for _, file in ipairs(lua_files()) do
      local name = file:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.truthy(rockspec:find('["' .. name .. '"] = "lua/' .. file .. '"', 1, true),
        "rockspec lacks " .. name .. " = lua/" .. file)
    end
  end)

  it("lists every C source in the rockspec", function()
    local rockspec = read("rockspec/lua-tls-scm-1.rockspec")
    local p = io.popen("ls src/*.c")
    for file in p:lines() do
      assert.truthy(rockspec:find('"' .. file .. '"', 1, true), "rockspec lacks " .. file)
    end
    p:close()
  end)

  -- for the Lua running the suite: luarocks knows LuaJIT as 5.1 with its headers
  local proc = require "support.proc"
  local version = _VERSION:match("%d+%.%d+")
  local incdir = rawget(_G, "jit") and " LUA_INCDIR=/usr/include/luajit-2.1" or ""
  local function succeeded(cmd)
    local r = os.execute(cmd)
    return r == true or r == 0  -- 5.1 returns the status code
  end

  it("builds and installs into a tree that a fresh Lua of this version can require", function()
    if not succeeded("command -v luarocks >/dev/null 2>&1") then
      pending("luarocks is not installed")
      return
    end
    local tree = io.popen("mktemp -d /tmp/lua-tls-rock.XXXXXX"):read("*l")
    local copy = tree .. "/src-copy"
    -- build from a copy so the checkout stays clean of luarocks' objects
    assert.is_true(succeeded(("mkdir -p %s && cp -r src lua rockspec %s/"):format(copy, copy)))
    -- against the libtls under test: make test-libressl sets LIBTLS_DIR; the
    -- rpath has to reach the libssl that LibreSSL's libtls loads, too
    local dir = os.getenv("LIBTLS_DIR")
    local vars = (dir and ("LIBTLS_DIR=%s 'LIBFLAG=-shared -Wl,--disable-new-dtags'"):format(dir) or "")
      .. incdir
    local ok = succeeded(("cd %s && luarocks --lua-version %s --tree %s make "
      .. "rockspec/lua-tls-scm-1.rockspec %s > %s/build.log 2>&1"):format(copy, version, tree, vars, tree))
    local log = read(tree .. "/build.log")
    assert.is_true(ok, log)
    local p = io.popen(("cd / && LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' "
      .. "LUA_CPATH='%s/lib/lua/%s/?.so' %s -e 'local t = require \"tls\"; "
      -- the file require found (package.searchpath is missing on 5.1)
      .. "local f = package.cpath:match(\"[^;]+\"):gsub(\"?\", \"tls/core\"); "
      .. "print(type(t.config), type(t.core.api()), io.open(f) and f, t.core.library.name)' 2>&1")
      :format(tree, version, tree, version, tree, version, proc.lua))
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. tree)
    assert.matches("^function%s+number%s+" .. tree:gsub("%p", "%%%0") .. "/lib/lua/"
      .. version:gsub("%.", "%%.") .. "/tls/core%.so%s+" .. require("tls.core").library.name .. "\n$", out)
  end)
end)
