-- luarocks --lua-version 5.4 make rockspec/lua-tls-scm-1.rockspec   (or 5.1, 5.2, 5.3;
-- LuaJIT: --lua-version 5.1 and LUA_INCDIR=/usr/include/luajit-2.1, as the README says)
-- On LibreSSL under a prefix: add LIBTLS_DIR=/opt/libressl LIBFLAG="-shared -Wl,--disable-new-dtags"
--   (doc/libraries.md)
rockspec_format = "3.0"
package = "lua-tls"
version = "scm-1"
source = {
  url = "git+file:///dev/null",  -- built from a checkout with `luarocks make`
}
description = {
  summary = "TLS for Lua 5.1 to 5.4 and LuaJIT on libtls: secure by default, usable from any event loop",
  detailed = [[
A C extension module on libtls (LibreSSL's libtls or LibreTLS) with pure-Lua
helpers: verified client and server connections over sockets or memory,
certificate policy and pinning, an HTTPS client and event-loop adapters.
]],
  license = "ISC",
  labels = { "tls", "ssl", "https", "crypto", "network" },
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  LIBTLS = { header = "tls.h", library = "tls" },
}
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
