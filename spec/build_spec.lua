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
end)
