# An HTTPS server on Python's ssl module that ends each response the way the
# request path says, to tell a clean TLS end from a cut one:
#   python3 tls_close_server.py PORT CERT KEY
#   GET /<framing>/<ending>  framing: close (no Content-Length, ended by the
#                            close), length (Content-Length) or chunked;
#                            ending: notify (close_notify, then the TCP close)
#                            or cut (the TCP close alone, as an attacker on
#                            the path can forge).
# Serves connections one at a time, forever; prints READY when listening.
import socket
import ssl
import sys

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BODY = b"hello, world\n" * 4

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(8)
print("READY", flush=True)


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        if not more:
            return None
        data += more
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def response(framing):
    head = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
    if framing == "length":
        return (head + "Content-Length: %d\r\n\r\n" % len(BODY)).encode() + BODY
    if framing == "chunked":
        return ((head + "Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(BODY)).encode()
                + BODY + b"\r\n0\r\n\r\n")
    return (head + "\r\n").encode() + BODY


def serve(raw):
    raw.settimeout(10)
    conn = ctx.wrap_socket(raw, server_side=True)
    line = read_head(conn)
    if line is None:
        conn.close()
        return
    parts = line.split(" ")[1].strip("/").split("/")
    framing, ending = parts[0], parts[1] if len(parts) > 1 else "notify"
    conn.sendall(response(framing))
    if ending == "cut":
        # SSLSocket.shutdown drops the TLS layer first: a TCP FIN, no close_notify
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()
    else:
        # close_notify, without waiting for the client's own
        conn.settimeout(0)
        try:
            conn.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        conn.close()


while True:
    raw, _ = listener.accept()
    try:
        serve(raw)
    except (OSError, ssl.SSLError) as e:
        print("connection failed:", e, flush=True)
        raw.close()
