-- The Makefile rebuilds the module when the libtls it is built against
-- changes (LIBTLS_DIR, an upgraded libtls-dev: build/libtls.id records it),
-- and only then. Builds into a scratch BUILD dir, without optimisation.

local function make(args)
  local p = assert(io.popen("make --no-print-directory build CFLAGS=-O0 " .. args .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  assert(ok, out)
  return out
end

local function compiled(out)
  local n = 0
  for _ in out:gmatch("%-c %-o [^\n]*%.o src/") do n = n + 1 end
  return n
end

describe("make build", function()
  -- one scratch dir per Lua version: make test-versions runs two suites at once
  local dir = "build/spec-rebuild-" .. (rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+"))
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("rebuilds the module when the libtls it is built against changes, and only then", function()
    os.execute("rm -rf " .. dir)
    local sources = 0
    for _ in io.popen("ls src/*.c"):lines() do sources = sources + 1 end
    assert.equal(sources, compiled(make("BUILD=" .. dir)))
    assert.equal(0, compiled(make("BUILD=" .. dir)))
    -- another libtls: other flags (as LIBTLS_DIR=... gives) change the record
    local other = "TLS_CFLAGS='$(shell pkg-config --cflags libtls libcrypto) -DLTLS_SPEC_OTHER_LIBTLS'"
    assert.equal(sources, compiled(make("BUILD=" .. dir .. " " .. other)))
    assert.equal(0, compiled(make("BUILD=" .. dir .. " " .. other)))
    assert.equal(sources, compiled(make("BUILD=" .. dir)))
  end)

  -- test-portable and test-libressl build into one BUILD dir whatever
  -- LUA_VERSION says: a 5.4 module there must not serve another Lua
  it("rebuilds the module when the Lua it is built for changes", function()
    local other
    for _, v in ipairs({ "5.3", "5.2", "5.1" }) do
      local r = os.execute("pkg-config --exists lua" .. v)
      if r == true or r == 0 then  -- 5.1 returns the status code
        other = v
        break
      end
    end
    if not other then
      pending("no Lua other than 5.4 has its headers installed (make deps ALL=1)")
      return
    end
    os.execute("rm -rf " .. dir)
    local sources = 0
    for _ in io.popen("ls src/*.c"):lines() do sources = sources + 1 end
    -- LUA_VERSION=5.4 given: make test-versions exports the suite's own version
    assert.equal(sources, compiled(make("BUILD=" .. dir .. " LUA_VERSION=5.4")))
    assert.equal(sources, compiled(make("BUILD=" .. dir .. " LUA_VERSION=" .. other)))
    assert.equal(0, compiled(make("BUILD=" .. dir .. " LUA_VERSION=" .. other)))
    assert.equal(sources, compiled(make("BUILD=" .. dir .. " LUA_VERSION=5.4")))
  end)
end)

describe("make install", function()
  local function dry(args)
    local p = assert(io.popen("make -n --no-print-directory install " .. args .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    return out:match("(luarocks [^\n]*)") or out
  end

  -- it used to install for 5.4 whatever LUA_VERSION said, against the system's libtls
  it("installs for LUA_VERSION's Lua and against LIBTLS_DIR's libtls", function()
    -- (LUA_VERSION=5.4 given: make test-versions exports another version to this suite)
    assert.matches("^luarocks %-%-lua%-version 5%.4 make ", dry("LUA_VERSION=5.4"))
    assert.matches("^luarocks %-%-lua%-version 5%.1 make ", dry("LUA_VERSION=5.1"))
    local jit = dry("LUA_VERSION=jit LIBTLS_DIR=/opt/libressl")
    assert.matches("^luarocks %-%-lua%-version 5%.1 make .* LUA_INCDIR=/usr/include/luajit%-2%.1", jit)
    assert.matches("LIBTLS_DIR=/opt/libressl 'LIBFLAG=-shared -Wl,--disable-new-dtags'", jit, 1, true)
  end)
end)
