-- tls.https cookie jars (RFC 6265): the matching rules on URL tables, and
-- a jar on requests to nginx over HTTP/1.1 and HTTP/2 (Set-Cookie on
-- answers and on redirects, deletion, save and load).

local pki = require "support.pki"
local ngx = require "support.https_nginx"
local https = require "tls.https"
local url = require "tls.https.url"

local function u(s) return assert(url.parse(s)) end

describe("tls.https cookie jar rules", function()
  it("keeps a cookie without Domain for its host only", function()
    local jar = https.cookiejar()
    jar:store(u("https://a.example.com/"), { "id=1" })
    assert.equal("id=1", jar:header_for(u("https://a.example.com/x")))
    assert.is_nil(jar:header_for(u("https://b.example.com/")))
    assert.is_nil(jar:header_for(u("https://example.com/")))
    assert.is_nil(jar:header_for(u("https://x.a.example.com/")))
  end)

  it("sends a Domain cookie to the domain and its subdomains; refuses foreign and bare top-level domains", function()
    local jar = https.cookiejar()
    jar:store(u("https://a.example.com/"), { "d=1; Domain=.Example.com", "f=1; Domain=other.org",
      "t=1; Domain=com", "s=1; Domain=b.example.com" })
    assert.equal("d=1", jar:header_for(u("https://example.com/")))
    assert.equal("d=1", jar:header_for(u("https://deep.b.example.com/")))
    assert.is_nil(jar:header_for(u("https://other.org/")))
    assert.is_nil(jar:header_for(u("https://com/")))
    assert.equal(1, #jar:list())
  end)

  it("takes an IP address's cookies only for that address", function()
    local jar = https.cookiejar()
    jar:store(u("https://10.1.2.3/"), { "ip=1; Domain=10.1.2.3", "no=1; Domain=1.2.3" })
    assert.equal("ip=1", jar:header_for(u("https://10.1.2.3/")))
    assert.is_nil(jar:header_for(u("https://1.2.3/")))
    assert.equal(1, #jar:list())
  end)

  it("matches paths: the default is the request's directory; longer paths first", function()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/dir/page?q=1"), { "p=1", "root=1; Path=/", "deep=1; Path=/dir/sub" })
    assert.equal("p=1; root=1", jar:header_for(u("https://h.test/dir/x")))
    assert.equal("deep=1; p=1; root=1", jar:header_for(u("https://h.test/dir/sub/y")))
    assert.equal("root=1", jar:header_for(u("https://h.test/dirx")))
    assert.equal("root=1", jar:header_for(u("https://h.test/")))
  end)

  it("never sends a Secure cookie over http, nor takes one from http", function()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "s=1; Secure; HttpOnly" })
    jar:store(u("http://h.test/"), { "t=1; Secure" })
    assert.equal("s=1", jar:header_for(u("https://h.test/")))
    assert.is_nil(jar:header_for(u("http://h.test/")))
    assert.is_true(jar:list()[1].http_only)
  end)

  it("lets plain http neither replace nor delete a Secure cookie (RFC 6265bis 5.7)", function()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "sid=good; Secure", "pref=1" })
    -- whoever answers on http:// (anyone on the path) tries to fix the session
    jar:store(u("http://h.test/"), { "sid=evil", "sid=evil2; Path=/app", "sid=evil3; Domain=h.test" })
    jar:store(u("http://www.h.test/"), { "sid=evil4; Domain=h.test" })
    jar:store(u("http://h.test/"), { "sid=; Max-Age=0" })
    assert.equal("sid=good; pref=1", jar:header_for(u("https://h.test/app")))
    -- other names are still taken from http, and replaced over it
    jar:store(u("http://h.test/"), { "pref=2", "other=3" })
    assert.equal("sid=good; pref=2; other=3", jar:header_for(u("https://h.test/")))
  end)

  it("expires cookies: Max-Age (which wins over Expires), past dates delete", function()
    local jar = https.cookiejar()
    local t = 1000000000
    jar:store(u("https://h.test/"), { "m=1; Max-Age=10; Expires=Wed, 09 Jun 2100 10:18:14 GMT",
      "e=1; Expires=Sun, 09 Sep 2001 02:46:40 GMT" }, t)
    assert.equal("m=1; e=1", jar:header_for(u("https://h.test/"), t))
    assert.equal("e=1", jar:header_for(u("https://h.test/"), t + 11))
    assert.is_nil(jar:header_for(u("https://h.test/"), t + 11 + 1000000))
    jar:store(u("https://h.test/"), { "x=1", "x=; Max-Age=0" }, t)
    assert.is_nil(jar:header_for(u("https://h.test/"), t + 11 + 1000000))
  end)

  -- a 20-digit Max-Age was saved as 1e+20 (a fractional now as 1764...5),
  -- and the loader then refused the whole file
  it("keeps the jar file loadable whatever lifetime the server asks for (at most 400 days)", function()
    local file = os.tmpname()
    local jar = https.cookiejar()
    local t = os.time() + 0.5
    jar:store(u("https://h.test/"), { "big=1; Max-Age=" .. ("9"):rep(20),
      "far=2; Expires=Fri, 31 Dec 9999 23:59:59 GMT" }, t)
    assert(jar:save(file))
    local again = https.cookiejar(file)
    os.remove(file)
    assert.equal("big=1; far=2", again:header_for(u("https://h.test/"), t + 399 * 86400))
    assert.is_nil(again:header_for(u("https://h.test/"), t + 401 * 86400))
  end)

  it("makes room in a full jar by evicting the oldest, first of the same domain", function()
    local jar = https.cookiejar()
    -- one host sets 500: it keeps its newest 180
    local many = {}
    for i = 1, 500 do many[i] = "c" .. i .. "=1" end
    jar:store(u("https://one.test/"), many)
    assert.equal(180, #jar:list())
    assert.matches("^c321=1; ", jar:header_for(u("https://one.test/")))
    assert.matches("; c500=1$", jar:header_for(u("https://one.test/")))
    -- a site fills the jar from many hosts: later cookies of others still go in
    jar:store(u("https://bank.test/"), { "old=1" })
    for h = 1, 3000 do jar:store(u("https://h" .. h .. ".evil.test/"), { "x=1" }) end
    assert.equal(3000, #jar:list())
    jar:store(u("https://bank.test/"), { "sid=2" })
    assert.equal("sid=2", jar:header_for(u("https://bank.test/")))
    assert.equal(3000, #jar:list())
  end)

  it("replaces a cookie of the same name, domain and path", function()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "a=1", "b=2" })
    jar:store(u("https://h.test/"), { "a=3" })
    assert.equal("a=3; b=2", jar:header_for(u("https://h.test/")))
  end)

  it("saves to a file and loads from it (an existing file is loaded by cookiejar(file))", function()
    local file = os.tmpname()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "a=1; Max-Age=3600", "s=2; Secure", "d=3; Domain=h.test; Path=/p" })
    assert(jar:save(file))
    local again = https.cookiejar(file)
    assert.same(jar:list(), again:list())
    assert.equal("d=3; a=1; s=2", again:header_for(u("https://h.test/p/x")))
    local f = io.open(file, "wb"); f:write("garbage\n"); f:close()
    assert.has_error(function() https.cookiejar(file) end)
    os.remove(file)
  end)

  it("saves the jar private (mode 0600) and whole, never through a symlink", function()
    local proc = require "support.proc"
    local dir = (proc.run("mktemp -d"):gsub("%s+$", ""))
    local file, victim = dir .. "/jar", dir .. "/victim"
    pki.write(victim, "precious\n")
    -- a planted link where a fixed temporary name would be written
    assert(os.execute(("ln -s %s %s.tmp"):format(victim, file)))
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "session=secret" })
    assert(jar:save(file))
    assert.equal("600", (proc.run("stat -c %a " .. file):gsub("%s+$", "")))
    assert.equal("precious\n", pki.read(victim))
    assert.equal("session=secret", https.cookiejar(file):header_for(u("https://h.test/")))
    -- the jar file is a link: the link is replaced, not what it points to
    os.remove(file)
    assert(os.execute(("ln -s %s %s"):format(victim, file)))
    assert(jar:save(file))
    assert.equal("precious\n", pki.read(victim))
    os.execute("rm -rf " .. dir)
  end)

  it("starts empty only when the jar file is missing, and says when it cannot be read", function()
    local proc = require "support.proc"
    local dir = (proc.run("mktemp -d"):gsub("%s+$", ""))
    finally(function() os.execute("rm -rf " .. dir) end)
    assert.same({}, https.cookiejar(dir .. "/missing"):list())
    -- a jar that cannot be read would be replaced, cookies lost, by the next save
    local ok, err = pcall(https.cookiejar, dir)
    assert.is_false(ok)
    assert.matches("^tls%.https%.cookiejar: cookies: cannot read " .. dir:gsub("%p", "%%%0") .. ": ", err)
    pki.write(dir .. "/file", "")
    ok, err = pcall(https.cookiejar, dir .. "/file/jar")   -- ENOTDIR, not a missing file
    assert.is_false(ok)
    assert.matches("^tls%.https%.cookiejar: cannot read the jar file %(.*%): fix it or name another file$", err)
    local jar = https.cookiejar()
    local lok, lerr = jar:load(dir)
    assert.is_nil(lok)
    assert.matches("^cookies: cannot read ", lerr)
  end)

  it("ignores a cookie whose Path holds a control character (its jar file line would not load)", function()
    local file = os.tmpname()
    local jar = https.cookiejar()
    jar:store(u("https://h.test/"), { "ok=1", "tab=1; Path=/a\tb", "bell=1; Path=/a\7" })
    assert.equal(1, #jar:list())
    assert(jar:save(file))
    assert.equal("ok=1", https.cookiejar(file):header_for(u("https://h.test/a")))
    os.remove(file)
  end)

  it("loads a jar file with CR LF line ends, and refuses one with a CR inside a value", function()
    local file = os.tmpname()
    pki.write(file, "# tls.https cookie jar\r\nh.test\t1\t/\t0\t0\t0\ta\t1\r\n")
    assert.equal("a=1", https.cookiejar(file):header_for(u("https://h.test/")))
    -- a bare CR ends a header line for some servers: "X-Injected: 1" would be a header
    pki.write(file, "h.test\t1\t/\t0\t0\t0\ta\t1\rX-Injected: 1\n")
    local ok, err = pcall(https.cookiejar, file)
    assert.is_false(ok)
    assert.matches("line 1 is not a cookie line", err)
    os.remove(file)
  end)
end)

describe("tls.https cookies = jar against nginx", function()
  local srv

  ngx.fixture(function(s)
    srv = s
  end)

  for _, v in ipairs { "1.1", "2" } do
    it("stores Set-Cookie, sends it back, follows deletions and redirects (HTTP/" .. v .. ")", function()
      local base = "https://127.0.0.1:" .. (v == "2" and srv.h2_port or srv.port)
      local jar = https.cookiejar()
      local o = { ca_file = pki.ca.cert, cookies = jar }
      local res = assert(https.get(base .. "/setcookie", o))
      assert.equal(v, res.version)
      assert.equal("cookie=a=1; s=2\n", assert(https.get(base .. "/cookie", o)).body)
      assert(https.get(base .. "/delcookie", o))
      assert.equal("cookie=s=2\n", assert(https.get(base .. "/cookie", o)).body)
      -- a cookie set by the redirect itself goes with the request it leads to
      assert.equal("cookie=s=2; r=3\n", assert(https.get(base .. "/cookie-redirect", o)).body)
      -- without the jar, nothing is sent
      assert.equal("cookie=\n", assert(https.get(base .. "/cookie", { ca_file = pki.ca.cert })).body)
    end)
  end

  it("refuses something else as a jar", function()
    assert.has_error(function() https.get("https://127.0.0.1:1/", { cookies = {} }) end,
      "tls.https: option 'cookies' must be a jar from https.cookiejar(), got table")
  end)
end)
