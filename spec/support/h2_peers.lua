-- HTTP/2 servers on loopback for the HTTP/2 specs: nghttpd (Debian
-- nghttp2-server) over a directory, and the raw frame server
-- (spec/peers/h2_frames_server.py) playing one scenario.

local proc = require "support.proc"
local peers = require "support.peers"

local h2_peers = {}

local quote = peers.quote

-- nghttpd serving dir on a free port; args: extra options as one string.
function h2_peers.nghttpd(keypair, dir, args)
  local port = proc.free_port()
  local h = proc.start(("nghttpd -a 127.0.0.1 -d %s %s %d %s %s"):format(quote(dir), args or "",
    port, quote(keypair.key), quote(keypair.cert)), { port = port })
  h.port = port
  return h
end

-- The raw frame server playing `scenario` on each connection.
function h2_peers.frames(keypair, scenario)
  local port = proc.free_port()
  local h = proc.start(("python3 spec/peers/h2_frames_server.py %d %s %s %s"):format(port,
    quote(keypair.cert), quote(keypair.key), scenario), { port = port })
  h.port = port
  return h
end

return h2_peers
