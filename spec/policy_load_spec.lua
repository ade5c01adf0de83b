-- The default policy is never switched off by accident: a tls.policy that
-- fails to load raises at the first client connection instead.
local proc = require "support.proc"

describe("the default policy's loading", function()
  it("raises when tls.policy is broken, rather than connecting without it", function()
    local out, status = proc.run(proc.lua .. [[ -e '
      package.preload["tls.policy"] = function() error("tls.policy: broken on purpose") end
      local tls = require "tls"
      local ok, err = pcall(tls.engine, { servername = "localhost" })
      print(ok, err)']])
    assert.equal(0, status, out)
    assert.matches("^false\t.*broken on purpose", out)
  end)

  it("runs without a policy only when tls.policy is not installed at all", function()
    -- a searcher that reports tls.policy as missing, as Lua itself would
    local out, status = proc.run(proc.lua .. [[ -e '
      table.insert(package.searchers or package.loaders, 1, function(name)
        if name == "tls.policy" then error("module '"'"'tls.policy'"'"' not found: hidden", 0) end
      end)
      local tls = require "tls"
      print(pcall(tls.engine, { servername = "localhost" }))']])
    assert.equal(0, status, out)
    assert.matches("^true\ttls%.engine", out)
  end)
end)
