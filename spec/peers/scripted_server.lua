-- A TLS server on the module whose per-connection behaviour comes from the
-- spec: lua5.4 scripted_server.lua PORT CERT KEY HANDLER [OPTS]. HANDLER is
-- Lua source returning function(conn, tls); OPTS is a Lua table literal of
-- extra listen options. Serves connections one at a time, forever.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local port, cert, key, handler_src, extra = arg[1], arg[2], arg[3], arg[4], arg[5]
local handler = assert((loadstring or load)(handler_src, "=handler"))()
require "support.serve_loop" (port, cert, key, extra, handler)
