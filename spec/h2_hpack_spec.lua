-- HPACK (RFC 7541) for tls.https's HTTP/2: the examples of Appendix C,
-- Huffman round trips, and the bounds a hostile peer runs into.

local hpack = require "tls.h2.hpack"
local huffman = require "tls.h2.huffman"

local function unhex(s)
  return (s:gsub("%s", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

local function fields(list)
  local out = {}
  for i, f in ipairs(list) do out[i] = f[1] .. ": " .. f[2] end
  return out
end

describe("tls.h2.huffman", function()
  it("encodes and decodes RFC 7541 C.4.1's www.example.com", function()
    assert.equal(unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), huffman.encode("www.example.com"))
    assert.equal("www.example.com", huffman.decode(unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")))
  end)

  it("round-trips every byte value", function()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local s = table.concat(t) .. table.concat(t):reverse()
    assert.equal(s, huffman.decode(huffman.encode(s)))
    assert.equal(#huffman.encode(s), huffman.length(s))
  end)

  it("refuses padding of 8 bits or more, padding with zeros, and EOS", function()
    local e = huffman.encode("a")          -- 5 bits + 3 of padding
    assert.is_nil((huffman.decode(e .. "\255")))
    assert.is_nil((huffman.decode(string.char(0x00))))   -- '0' then zero padding
    assert.matches("EOS", select(2, huffman.decode("\255\255\255\255")))
  end)
end)

describe("tls.h2.hpack", function()
  it("encodes RFC 7541 C.4 (requests with Huffman) byte for byte", function()
    local e = hpack.encoder()
    assert.equal(unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), e:encode {
      { ":method", "GET" }, { ":scheme", "http" }, { ":path", "/" }, { ":authority", "www.example.com" } })
    assert.equal(unhex("8286 84be 5886 a8eb 1064 9cbf"), e:encode {
      { ":method", "GET" }, { ":scheme", "http" }, { ":path", "/" }, { ":authority", "www.example.com" },
      { "cache-control", "no-cache" } })
    assert.equal(unhex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), e:encode {
      { ":method", "GET" }, { ":scheme", "https" }, { ":path", "/index.html" },
      { ":authority", "www.example.com" }, { "custom-key", "custom-value" } })
  end)

  it("decodes RFC 7541 C.4 with the dynamic table", function()
    local d = hpack.decoder(4096, 65536)
    assert.same({ ":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com" },
      fields(d:decode(unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))))
    assert.same({ ":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com",
      "cache-control: no-cache" }, fields(d:decode(unhex("8286 84be 5886 a8eb 1064 9cbf"))))
    assert.same({ ":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com",
      "custom-key: custom-value" },
      fields(d:decode(unhex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))))
    assert.equal(164, d.table.size)
  end)

  it("decodes RFC 7541 C.6 (responses, a 256-byte table) with eviction", function()
    local d = hpack.decoder(256, 65536)
    assert.same({ ":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT",
      "location: https://www.example.com" }, fields(d:decode(unhex([[
      4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3]]))))
    assert.equal(222, d.table.size)
    assert.same({ ":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT",
      "location: https://www.example.com" }, fields(d:decode(unhex("4883 640e ffc1 c0bf"))))
    assert.equal(222, d.table.size)
    assert.same({ ":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT",
      "location: https://www.example.com", "content-encoding: gzip",
      "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1" },
      fields(d:decode(unhex([[
      88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
      77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
      9587 3160 65c0 03ed 4ee5 b106 3d50 07]]))))
    -- three entries left after evictions (RFC 7541 C.6.3)
    assert.equal(3, #d.table.entries)
    assert.equal(215, d.table.size)
  end)

  it("round-trips through its own encoder while the table evicts", function()
    local e, d = hpack.encoder(), hpack.decoder(4096, 1e9)
    for i = 1, 300 do
      local list = { { ":status", "200" }, { "x-n", tostring(i) .. ("v"):rep(i % 50) },
        { "authorization", "secret" .. i, true } }
      assert.same(list[2], d:decode(e:encode(list))[2])
    end
    assert.is_true(e.table.size <= 4096)
  end)

  it("signals a smaller table the peer asked for, and the decoder follows", function()
    local e, d = hpack.encoder(), hpack.decoder(4096, 65536)
    d:decode(e:encode { { "x-a", "1" } })
    e:set_max_table_size(0)
    local block = e:encode { { "x-b", "2" } }
    assert.equal(0x20, block:byte(1))
    assert.same({ "x-b: 2" }, fields(d:decode(block)))
    assert.equal(0, d.table.max)
  end)

  it("refuses what a hostile peer sends: bad indexes, oversized tables and lists, truncation", function()
    local d = hpack.decoder(4096, 100)
    assert.matches("past the table", select(2, d:decode("\255\10")))
    assert.matches("index 0", select(2, hpack.decoder(4096, 100):decode("\128")))
    assert.matches("over our limit of 4096", select(2, hpack.decoder(4096, 100):decode(unhex("3fe2 1f"))))
    assert.matches("after a header field", select(2, hpack.decoder(4096, 100):decode(unhex("82 20"))))
    assert.matches("longer than its header block", select(2, hpack.decoder(4096, 100):decode(unhex("40 05 61"))))
    assert.matches("truncated integer", select(2, hpack.decoder(4096, 100):decode(unhex("ff"))))
    assert.matches("over 2%^31", select(2, hpack.decoder(4096, 100):decode(unhex("ff ff ff ff ff ff 0f"))))
    assert.matches("header list is over 100 bytes",
      select(2, hpack.decoder(4096, 100):decode("\0\1a\127\73" .. ("x"):rep(200))))
  end)
end)
