-- tls.https conveniences against nginx: head/put/patch/delete, query =,
-- json = and res:json(), auth = and bearer =.

local pki = require "support.pki"
local ngx = require "support.https_nginx"
local https = require "tls.https"

local read = pki.read

local opts = ngx.options { timeout = 20 }

describe("tls.https conveniences against nginx", function()
  local srv, base

  ngx.fixture(function(s)
    srv = s
    base = "https://127.0.0.1:" .. srv.port
  end)

  it("head, put, patch and delete send their methods", function()
    local res = assert(https.head(base .. "/hello.txt", opts()))
    assert.equal(200, res.status)
    assert.equal("", res.body)
    assert.equal("17", res.headers["content-length"])
    res = assert(https.put(base .. "/upload/conv.txt", "put body", opts()))
    assert.equal(201, res.status)
    assert.equal("put body", read(srv.www .. "/upload/conv.txt"))
    assert.equal("PATCH 5\n", assert(https.patch(base .. "/method", "12345", opts())).body)
    res = assert(https.delete(base .. "/upload/conv.txt", opts()))
    assert.equal(204, res.status)
    assert.is_nil(io.open(srv.www .. "/upload/conv.txt"))
  end)

  it("query = {...} is encoded into the URL, after a query it already has", function()
    local res = assert(https.get(base .. "/args", opts { query = { b = "x y&z", a = { 1, 2 } } }))
    assert.equal("a=1&a=2&b=x%20y%26z\n", res.body)
    res = assert(https.get(base .. "/args?first=1#frag", opts { query = { n = "é" } }))
    assert.equal("first=1&n=%C3%A9\n", res.body)
    assert.has_error(function() https.get(base .. "/args", opts { query = "a=1" }) end,
      "tls.https: option 'query' must be a table, got string")
  end)

  it("json = value sends it as application/json; res:json() decodes a body", function()
    local res = assert(https.post(base .. "/ctype", nil, opts { json = { a = 1 } }))
    assert.equal("POST application/json 7\n", res.body)
    res = assert(https.patch(base .. "/ctype", nil, opts { json = { 1, 2 }, headers = { ["Content-Type"] = "application/x+json" } }))
    assert.equal("PATCH application/x+json 5\n", res.body)
    local data = assert(assert(https.get(base .. "/data.json", opts())):json())
    assert.equal("lua-tls", data.name)
    assert.same({ 1, 2, 3 }, data.list)
    local v, err = assert(https.get(base .. "/hello.txt", opts())):json()
    assert.is_nil(v)
    assert.matches("^json: the body is not JSON", err)
    assert.has_error(function() https.post(base .. "/ctype", "x", opts { json = {} }) end,
      "tls.https: give either 'json' or 'body'/'source', not both")
  end)

  it("multipart = {...} over HTTP/2 goes with its Content-Length", function()
    local res = assert(https.post("https://127.0.0.1:" .. srv.h2_port .. "/ctype", nil,
      opts { multipart = { a = "1", f = { data = ("x"):rep(100000), filename = "f.bin" } } }))
    assert.equal("2", res.version)
    local b, n = res.body:match("^POST multipart/form%-data; boundary=(%S+) (%d+)\n$")
    assert.truthy(b)
    assert.equal(#("--" .. b .. '\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
      .. "--" .. b .. '\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n'
      .. "Content-Type: application/octet-stream\r\n\r\n" .. ("x"):rep(100000) .. "\r\n--" .. b .. "--\r\n"),
      tonumber(n))
  end)

  it("res:json() reads a streamed body first", function()
    local res = assert(https.get(base .. "/data.json", opts { stream = true }))
    assert.is_true(assert(res:json()).ok)
  end)

  it("auth = { user, password } sends Basic, bearer = token sends Bearer", function()
    assert.equal("auth=Basic dXNlcjpwYXNz\n", assert(https.get(base .. "/auth", opts { auth = { "user", "pass" } })).body)
    assert.equal("auth=Bearer t0k3n\n", assert(https.get(base .. "/auth", opts { bearer = "t0k3n" })).body)
    assert.has_error(function() https.get(base .. "/auth", opts { bearer = "a b" }) end,
      "tls.https: option 'bearer' must be a token string without spaces or control characters")
    -- a ':' in the user name would move the rest of it into the password
    assert.has_error(function() https.get(base .. "/auth", opts { auth = { "us:er", "pass" } }) end,
      "tls.https: option 'auth': the user name may not contain ':' (RFC 7617)")
    local res, err = https.get("https://us%3Aer:pass@127.0.0.1:" .. srv.port .. "/auth", opts())
    assert.is_nil(res)
    assert.matches("the user name may not contain ':'", err)
    -- and a URL in a message never shows its password
    res, err = https.get("https://user:s3cret@127.0.0.1:99999/", opts())
    assert.is_nil(res)
    assert.equal("bad URL 'https://user:***@127.0.0.1:99999/': bad port '99999'", err)
    -- over HTTP/2 too
    local h2 = "https://127.0.0.1:" .. srv.h2_port
    assert.equal("auth=Bearer t0k3n\n", assert(https.get(h2 .. "/auth", opts { bearer = "t0k3n" })).body)
  end)
end)

describe("tls.https multipart = {...} against the module's own server", function()
  local peers = require "support.peers"
  local sha256 = require "tls.sha256"
  local srv, base, file

  local function fields(body)
    local t = {}
    for k, v in body:gmatch("([%w%-]+)=([^\n]*)") do t[k] = v end
    return t
  end

  setup(function()
    pki.setup()
    srv = peers.lua_server("https_server.lua", pki.server)
    base = "https://localhost:" .. srv.port
    file = os.tmpname()
    local f = assert(io.open(file, "wb"))
    for i = 1, 3000 do f:write(("%05d-0123456789abcdef\n"):format(i)) end   -- 69000 bytes
    f:close()
  end)

  teardown(function()
    https.pool_clear()
    if srv then srv.stop() end
    os.remove(file)
  end)

  -- 2^3 is the float 8.0: tostring gives "8.0" on 5.3+, "8" on 5.1
  it("sends a number in a header, a query or a form as the same text on every Lua", function()
    local res = assert(https.post(base .. "/echo", nil, opts { headers = { ["X-Count"] = 2 ^ 3, ["X-Half"] = 0.5 },
      query = { n = 2 ^ 3 }, body = { f = 2 ^ 4 } }))
    local seen = fields(res.body)
    assert.equal("8", seen["h-x-count"])
    assert.equal("0.5", seen["h-x-half"])
    assert.equal("/echo?n=8", seen.path)
    assert.equal(sha256.hex("f=16"), seen.sha256)
    res = assert(https.post(base .. "/echo", nil, opts { multipart = { n = 2 ^ 5 } }))
    local b = fields(res.body)["h-content-type"]:match("boundary=(.+)$")
    local want = "--" .. b .. '\r\nContent-Disposition: form-data; name="n"\r\n\r\n32\r\n--' .. b .. "--\r\n"
    assert.equal(sha256.hex(want), fields(res.body).sha256)
  end)

  it("streams fields and a file from disk as multipart/form-data with a Content-Length", function()
    local res = assert(https.post(base .. "/upload", nil, opts { multipart = {
      title = "a \"quoted\" name", n = 42,
      upload = { file = file, content_type = "text/plain" },
      inline = { data = "in memory", filename = "x.txt" } } }))
    local seen = fields(res.body)
    local b = seen["h-content-type"]:match("^multipart/form%-data; boundary=(.+)$")
    assert.truthy(b)
    local content = read(file)
    local want = table.concat {
      "--", b, '\r\nContent-Disposition: form-data; name="inline"; filename="x.txt"\r\n',
      "Content-Type: application/octet-stream\r\n\r\nin memory\r\n",
      "--", b, '\r\nContent-Disposition: form-data; name="n"\r\n\r\n42\r\n',
      "--", b, '\r\nContent-Disposition: form-data; name="title"\r\n\r\na "quoted" name\r\n',
      "--", b, '\r\nContent-Disposition: form-data; name="upload"; filename="', file:match("([^/]*)$"), '"\r\n',
      "Content-Type: text/plain\r\n\r\n", content, "\r\n",
      "--", b, "--\r\n" }
    assert.equal(tostring(#want), seen["h-content-length"])
    assert.equal("none", seen.te)
    assert.equal(sha256.hex(want), seen.sha256)
    -- and a real multipart parser reads it back
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write("Content-Type: multipart/form-data; boundary=" .. b .. "\r\n\r\n" .. want)
    f:close()
    local p = io.popen("python3 -c \"import email,sys; m=email.message_from_binary_file(open(sys.argv[1],'rb')); "
      .. "print('|'.join('%s:%d' % (x.get_param('name', header='content-disposition'), len(x.get_payload(decode=True))) "
      .. "for x in m.get_payload()))\" " .. tmp)
    local parsed = p:read("*a")
    p:close()
    os.remove(tmp)
    assert.equal("inline:9|n:2|title:15|upload:" .. #content .. "\n", parsed)
  end)

  it("escapes quotes, CR and LF in field and file names: no header or field of the sender's making", function()
    local evil = 'x"\r\nContent-Type: text/html\r\n\r\ninjected'
    local res = assert(https.post(base .. "/upload", nil, opts { multipart = {
      [evil] = "v", f = { data = "d", filename = evil } } }))
    local seen = fields(res.body)
    local b = seen["h-content-type"]:match("boundary=(.+)$")
    local esc = 'x%22%0D%0AContent-Type: text/html%0D%0A%0D%0Ainjected'
    local want = table.concat {
      "--", b, '\r\nContent-Disposition: form-data; name="f"; filename="', esc, '"\r\n',
      "Content-Type: application/octet-stream\r\n\r\nd\r\n",
      "--", b, '\r\nContent-Disposition: form-data; name="', esc, '"\r\n\r\nv\r\n',
      "--", b, "--\r\n" }
    assert.equal(sha256.hex(want), seen.sha256)
  end)

  it("refuses a directory as a file (it went out with a negative Content-Length)", function()
    local res, err = https.post(base .. "/", nil, opts { multipart = { f = { file = "/tmp" } } })
    assert.is_nil(res)
    assert.equal("multipart: cannot read /tmp: Is a directory", err)
  end)

  it("fails a file that got shorter between the Content-Length and its sending", function()
    local multipart = require "tls.https.multipart"
    local tmp = os.tmpname()
    pki.write(tmp, ("x"):rep(100000))
    local source, length = assert(multipart.body({ f = { file = tmp } }, 1))
    pki.write(tmp, ("x"):rep(10))   -- truncated in place, as by another process
    local sent, chunk, err = 0, nil, nil
    repeat
      chunk, err = source()
      sent = sent + (chunk and #chunk or 0)
    until not chunk
    os.remove(tmp)
    assert.is_true(sent < length)
    assert.equal("multipart: a file got shorter while it was sent", err)
  end)

  it("leaves no file open when the upload fails half way (not even until the collector runs)", function()
    local proc = require "support.proc"
    local big = os.tmpname()
    pki.write(big, ("0123456789abcdef"):rep(2 * 1024 * 1024))   -- 32 MiB
    -- a server that reads the request head and closes
    local closer = peers.scripted(pki.server, [[return function(conn)
      repeat local l = conn:receive("*l") until not l or l == ""
      conn:close()
    end]])
    local function open_on_big()
      local p = io.popen("ls -l /proc/" .. proc.my_pid() .. "/fd")
      local listing = p:read("*a")
      p:close()
      return listing:find(big, 1, true) ~= nil
    end
    collectgarbage("stop")
    local res, err = https.post("https://localhost:" .. closer.port .. "/", nil,
      opts { multipart = { f = { file = big } } })
    local still_open = open_on_big()
    collectgarbage("restart")
    closer.stop()
    os.remove(big)
    assert.is_nil(res)
    assert.truthy(err)
    assert.is_false(still_open)
  end)

  it("draws its boundary from the system's random bytes, not from what others can know", function()
    local proc = require "support.proc"
    if select(2, proc.run("setarch -R true")) ~= 0 then
      pending("setarch -R (no address-space randomisation) is not available here")
      return
    end
    -- the clock, the time and math.random as an attacker could know them,
    -- with the same addresses every run
    local script = os.tmpname()
    pki.write(script, [[
      os.time = function() return 1700000000 end
      os.clock = function() return 0.5 end
      math.random = function() return 0.25 end
      local _, _, ct = require("tls.https.multipart").body({ a = "1" }, 1)
      print(ct)]])
    local one = proc.run("setarch -R " .. proc.lua .. " " .. script)
    local two = proc.run("setarch -R " .. proc.lua .. " " .. script)
    os.remove(script)
    assert.matches("^multipart/form%-data; boundary=", one)
    assert.not_equal(one, two)
  end)

  it("says what is wrong: a missing file, a bad value, a Content-Type of the caller's", function()
    local res, err = https.post(base .. "/", nil, opts { multipart = { f = { file = "/nonexistent/x" } } })
    assert.is_nil(res)
    assert.matches("^multipart: cannot open /nonexistent/x", err)
    assert.has_error(function() https.post(base .. "/", nil, opts { multipart = { f = true } }) end)
    assert.has_error(function()
      https.post(base .. "/", nil, opts { multipart = { a = "1" }, headers = { ["Content-Type"] = "text/plain" } })
    end, "tls.https: give no Content-Type header with 'multipart' (it carries the boundary chosen there)")
  end)
end)
