-- The release rockspec of lua-tls 0.1.0. `make rock` packs it with the
-- source (git archive) into build/rocks/, a local rocks server:
--   luarocks --lua-version 5.4 install --server=build/rocks lua-tls
-- Its build table is the scm rockspec's (spec/rock_spec.lua checks they match).
rockspec_format = "3.0"
package = "lua-tls"
version = "0.1.0-1"
source = {
  url = "https://github.com/lua-tls/lua-tls/archive/refs/tags/v0.1.0.tar.gz",
  dir = "lua-tls-0.1.0",
}
description = {
  summary = "TLS for Lua on libtls: secure by default, usable from any event loop",
  detailed = [[
A C extension module on libtls (LibreSSL's libtls or LibreTLS) with pure-Lua
helpers: verified client and server connections over sockets or memory,
servers with SNI, ALPN, mutual TLS, OCSP stapling and certificate reload,
certificate policy and pinning, an HTTPS client, and adapters for event
loops. TLS 1.2/1.3 only, chain and host name verified by default.
]],
  homepage = "https://github.com/lua-tls/lua-tls",
  license = "ISC",
  labels = { "tls", "ssl", "https", "crypto", "network" },
}
-- Lua 5.1 to 5.4 and LuaJIT; libtls from LibreSSL (2.9+) or LibreTLS.
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  LIBTLS = { header = "tls.h", library = "tls" },
}
-- Built and tested on Linux (Debian 12); the BSDs and macOS use the
-- portable socket paths (make PORTABLE=1 test) and should work, untested.
supported_platforms = { "linux", "bsd", "macosx" }
build = {
  type = "builtin",
  modules = {
    ["tls.core"] = {
      sources = {
        "src/base64.c", "src/config.c", "src/conn.c", "src/core.c", "src/file.c", "src/info.c",
        "src/net.c", "src/portable.c", "src/server.c", "src/transport.c", "src/x509.c",
      },
      defines = { "_GNU_SOURCE" },
      libraries = { "tls", "crypto" },  -- libcrypto: the one libtls runs on (tls.core.library)
      incdirs = { "$(LIBTLS_INCDIR)" },
      libdirs = { "$(LIBTLS_LIBDIR)" },
    },
    ["tls"] = "lua/tls/init.lua",
    -- the pure-Lua helpers (spec/install_spec.lua checks this list is complete)
    ["tls.https"] = "lua/tls/https/init.lua",
    ["tls.https.url"] = "lua/tls/https/url.lua",
    ["tls.https.headers"] = "lua/tls/https/headers.lua",
    ["tls.https.reader"] = "lua/tls/https/reader.lua",
    ["tls.https.response"] = "lua/tls/https/response.lua",
    ["tls.https.options"] = "lua/tls/https/options.lua",
    ["tls.https.pool"] = "lua/tls/https/pool.lua",
    ["tls.https.proxy"] = "lua/tls/https/proxy.lua",
    ["tls.https.decode"] = "lua/tls/https/decode.lua",
    ["tls.https.stream"] = "lua/tls/https/stream.lua",
    ["tls.https.json"] = "lua/tls/https/json.lua",
    ["tls.https.cookies"] = "lua/tls/https/cookies.lua",
    ["tls.https.multipart"] = "lua/tls/https/multipart.lua",
    ["tls.h2.conn"] = "lua/tls/h2/conn.lua",
    ["tls.h2.frame"] = "lua/tls/h2/frame.lua",
    ["tls.h2.hpack"] = "lua/tls/h2/hpack.lua",
    ["tls.h2.huffman"] = "lua/tls/h2/huffman.lua",
    ["tls.h2.huffman_code"] = "lua/tls/h2/huffman_code.lua",
    ["tls.policy"] = "lua/tls/policy.lua",
    ["tls.strict"] = "lua/tls/strict.lua",
    ["tls.tofu"] = "lua/tls/tofu.lua",
    ["tls.sni"] = "lua/tls/sni.lua",
    ["tls.hostname"] = "lua/tls/hostname.lua",
    ["tls.compat"] = "lua/tls/compat.lua",
    ["tls.luasec"] = "lua/tls/luasec/init.lua",
    ["tls.luasec.params"] = "lua/tls/luasec/params.lua",
    ["tls.luasec.cert"] = "lua/tls/luasec/cert.lua",
    ["tls.luasec.https"] = "lua/tls/luasec/https.lua",
    ["tls.cqueues"] = "lua/tls/cqueues.lua",
    ["tls.over"] = "lua/tls/over.lua",
    ["tls.transport"] = "lua/tls/transport.lua",
    ["tls.transport.ngx"] = "lua/tls/transport/ngx.lua",
    ["tls.transport.haproxy"] = "lua/tls/transport/haproxy.lua",
    ["tls.transport.cqueues"] = "lua/tls/transport/cqueues.lua",
    ["tls.transport.socket"] = "lua/tls/transport/socket.lua",
    ["tls.x509"] = "lua/tls/x509.lua",
    ["tls.asn1"] = "lua/tls/asn1.lua",
    ["tls.base64"] = "lua/tls/base64.lua",
    ["tls.sha256"] = "lua/tls/sha256.lua",
  },
}
