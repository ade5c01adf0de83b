-- tls.core.library: which libtls the module was built for and which libcrypto
-- runs under it. make test-libressl sets TLS_EXPECT_LIBRARY=LibreSSL, and make
-- test the name pkg-config gives the system's libtls, so this spec fails if
-- a suite ran on another build of the module than the one it meant.
local core = require "tls.core"

describe("tls.core.library", function()
  local lib = core.library

  it("names the libtls the module is linked with and the libcrypto it runs on", function()
    assert.is_table(lib)
    if lib.name == "LibreSSL" then
      -- LibreSSL's libtls: its libcrypto is LibreSSL's own, of the same version
      assert.matches("^%d+%.%d+%.%d+$", lib.version)
      assert.equals("LibreSSL " .. lib.version, lib.crypto)
    else
      -- LibreTLS: libtls ported onto OpenSSL, whose version is what it reports
      assert.equals("LibreTLS", lib.name)
      assert.matches("^OpenSSL %d+%.%d+%.%d+", lib.crypto)
      assert.is_nil(lib.version)
    end
  end)

  it("is the library this run of the suite was meant to test", function()
    local want = os.getenv("TLS_EXPECT_LIBRARY")
    if not want or want == "" then
      pending("TLS_EXPECT_LIBRARY not set (make test and make test-libressl set it)")
      return
    end
    assert.equals(want, lib.name)
  end)

  -- nginx and HAProxy load OpenSSL 3 before any Lua module: a preloaded
  -- libssl stands for them
  it("loads into a process that loaded OpenSSL's libssl first only when it is built on it", function()
    local libssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
    local f = io.open(libssl, "rb")
    if not f then
      pending("no " .. libssl .. " here")
      return
    end
    f:close()
    local p = assert(io.popen(("LD_PRELOAD=%s LUA_CPATH='%s' " .. require("support.proc").lua .. " -e 'local core = require \"tls.core\"; "
      .. "print(\"loaded \" .. core.library.name)' 2>&1"):format(libssl, package.cpath)))
    local out = p:read("*a")
    p:close()
    if lib.name == "LibreSSL" then
      assert.matches("tls.core: libtls failed to initialise (this build is for LibreSSL; a process "
        .. "that already loaded OpenSSL's libssl", out, 1, true)
    else
      assert.equal("loaded LibreTLS\n", out)
    end
  end)
end)
