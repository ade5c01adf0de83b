# A TLS server on Python's ssl module (OpenSSL, not libtls) that ends each
# connection the way the spec asks, to check how the module tells a clean
# end from a cut one:
#   python3 tls_end_server.py PORT CERT KEY MODE
# For each client: handshake, read one line, then
# - a line: send it back without its LF (twice, as two records) and end as
#   MODE says:
#     notify  send close_notify (unwrap) and close
#     cut     close the TCP connection without close_notify (a FIN)
#     reset   close with SO_LINGER 0 (a RST), without close_notify
# - an HTTP request "GET /<framing>/<ending> ...": read its head, answer
#   (Connection: close) with a body framed as <framing> says (close: no
#   Content-Length, ended by the close; length: Content-Length; chunked)
#   and end as <ending> (notify, cut or reset) says, whatever MODE is
#   (tls.https's specs, through peers.tls_end).
# Serves clients one at a time until killed.
import socket
import ssl
import struct
import sys

port, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
BODY = b"hello, world\n" * 4
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
print("READY", flush=True)


def http_response(framing):
    head = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
    if framing == "length":
        return (head + "Content-Length: %d\r\n\r\n" % len(BODY)).encode() + BODY
    if framing == "chunked":
        return ((head + "Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(BODY)).encode()
                + BODY + b"\r\n0\r\n\r\n")
    return (head + "\r\n").encode() + BODY


def end(conn, how, wait_for_peer):
    # (wrap_socket took raw's descriptor over: conn is the socket now)
    if how == "notify":
        if not wait_for_peer:
            conn.settimeout(0)  # close_notify, without waiting for the client's
        try:
            conn.unwrap().close()  # close_notify; waits for the client's
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            conn.close()
    elif how == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    else:
        # SSLSocket.close() never sends close_notify: only a FIN goes out
        conn.close()


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
        if line.startswith(b"GET /"):
            while b"\r\n\r\n" not in line:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                line += chunk
            path = line.split(b" ")[1].decode("latin-1").strip("/").split("/")
            conn.sendall(http_response(path[0]))
            end(conn, path[1] if len(path) > 1 else "notify", False)
            continue
        body = line.rstrip(b"\n")
        half = len(body) // 2
        conn.sendall(body[:half])
        conn.sendall(body[half:])
        end(conn, mode, True)
    except (OSError, ssl.SSLError) as e:
        print("connection failed:", e, flush=True)
        raw.close()
