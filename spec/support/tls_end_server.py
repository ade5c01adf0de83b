# A TLS server on Python's ssl module (OpenSSL, not libtls) that ends each
# connection the way the spec asks, to check how the module tells a clean
# end from a cut one:
#   python3 tls_end_server.py PORT CERT KEY MODE
# For each client: handshake, read one line, send it back without its LF
# (twice, as two records), then
#   notify  send close_notify (unwrap) and close
#   cut     close the TCP connection without close_notify (a FIN)
#   reset   close with SO_LINGER 0 (a RST), without close_notify
# Serves clients one at a time until killed.
import socket
import ssl
import struct
import sys

port, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
print("READY", flush=True)
while True:
    raw, _ = srv.accept()
    raw.settimeout(10)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            line += chunk
        body = line.rstrip(b"\n")
        half = len(body) // 2
        conn.sendall(body[:half])
        conn.sendall(body[half:])
        # (wrap_socket took raw's descriptor over: conn is the socket now)
        if mode == "notify":
            conn.unwrap().close()  # close_notify; waits for the client's
        elif mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            # SSLSocket.close() never sends close_notify: only a FIN goes out
            conn.close()
    except (OSError, ssl.SSLError) as e:
        print("connection failed:", e, flush=True)
        raw.close()
