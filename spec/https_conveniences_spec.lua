-- tls.https conveniences against nginx: head/put/patch/delete, query =,
-- json = and res:json(), auth = and bearer =.

local pki = require "support.pki"
local ngx = require "support.https_nginx"
local https = require "tls.https"

local read = pki.read

local function opts(extra)
  local o = { ca_file = pki.ca.cert, timeout = 20 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

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

  it("res:json() reads a streamed body first", function()
    local res = assert(https.get(base .. "/data.json", opts { stream = true }))
    assert.is_true(assert(res:json()).ok)
  end)

  it("auth = { user, password } sends Basic, bearer = token sends Bearer", function()
    assert.equal("auth=Basic dXNlcjpwYXNz\n", assert(https.get(base .. "/auth", opts { auth = { "user", "pass" } })).body)
    assert.equal("auth=Bearer t0k3n\n", assert(https.get(base .. "/auth", opts { bearer = "t0k3n" })).body)
    assert.has_error(function() https.get(base .. "/auth", opts { bearer = "a b" }) end,
      "tls.https: option 'bearer' must be a token string without spaces or control characters")
    -- over HTTP/2 too
    local h2 = "https://127.0.0.1:" .. srv.h2_port
    assert.equal("auth=Bearer t0k3n\n", assert(https.get(h2 .. "/auth", opts { bearer = "t0k3n" })).body)
  end)
end)
