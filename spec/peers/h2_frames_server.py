#!/usr/bin/env python3
"""A raw HTTP/2 frame server over TLS (ALPN h2) for tls.https's HTTP/2 specs.

    h2_frames_server.py PORT CERT KEY SCENARIO

Each connection reads the client's preface and frames and answers as
SCENARIO says: well-formed answers ("ok", "trailers", "continuation"), the
server-side events a client must survive ("goaway", "refused"), and hostile
sequences a client must end with a clean error ("ping-flood",
"continuation-flood", "hpack-bomb", ...). Floods go on until the client
closes; a thread drains what the client sends meanwhile.
"""

import os
import select
import socket
import ssl
import struct
import sys
import threading
import zlib

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 3, 4, 5, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 1, 4, 1

connections = 0
lock = threading.Lock()


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def hpack_int(v, prefix_bits, first=0):
    top = (1 << prefix_bits) - 1
    if v < top:
        return bytes([first | v])
    out = [first | top]
    v -= top
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def literal(name, value, indexing=False):
    """A literal field with a literal name, raw strings (no Huffman)."""
    name, value = name.encode(), value.encode()
    head = b"\x40" if indexing else b"\x00"
    return head + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


STATUS_200 = b"\x88"


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            raise EOFError
        buf += d
    return buf


def read_frame(sock):
    h = recv_exact(sock, 9)
    n = (h[0] << 16) | (h[1] << 8) | h[2]
    sid = struct.unpack(">I", h[5:9])[0] & 0x7FFFFFFF
    return h[3], h[4], sid, recv_exact(sock, n)


def next_request(sock):
    """Frames until a client HEADERS; -> its stream id (SETTINGS acked)."""
    while True:
        ftype, flags, sid, _ = read_frame(sock)
        if ftype == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
        if ftype == HEADERS:
            return sid


def drain(sock):
    def run():
        try:
            while sock.recv(65536):
                pass
        except Exception:
            pass
    threading.Thread(target=run, daemon=True).start()


def answer(sock, sid, body=b"hello"):
    sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200 + literal("content-length", str(len(body))))
                 + frame(DATA, END_STREAM, sid, body))


def flood(sock, data):
    drain(sock)
    while True:
        sock.sendall(data)


def serve_ok(sock):
    while True:
        sid = next_request(sock)
        answer(sock, sid, ("hello %d" % sid).encode())


def scenario(name, sock, nth):
    if name == "http1":
        # agreed to h2 in ALPN, answers in HTTP/1.1
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        drain(sock)
        threading.Event().wait(30)
        return
    if name == "no-settings":
        # an answer without the server's SETTINGS first (nor an ACK of the client's)
        while True:
            ftype, _, sid, _ = read_frame(sock)
            if ftype == HEADERS:
                break
        answer(sock, sid)
        drain(sock)
        threading.Event().wait(30)
        return
    sock.sendall(frame(SETTINGS, 0, 0))
    if name == "ok" or (nth > 1 and name in ("goaway", "refused", "goaway-after-data",
                                             "refused-after-data", "goaway-idle")
                        or (nth > 1 and name.startswith("close-idle:"))
                        or (nth > 1 and name.startswith("ping-idle:"))):
        return serve_ok(sock)
    sid = next_request(sock)
    if name == "goaway":
        # the first request is answered; everything above it was not processed
        answer(sock, sid, b"first")
        sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", sid, 0)))
        drain(sock)
        threading.Event().wait(30)
    elif name == "refused":
        sock.sendall(frame(RST_STREAM, 0, sid, struct.pack(">I", 7)))
        serve_ok(sock)
    elif name == "trailers":
        sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200)
                     + frame(DATA, 0, sid, b"body")
                     + frame(HEADERS, END_HEADERS | END_STREAM, sid, literal("x-checksum", "abc")))
        serve_ok(sock)
    elif name == "continuation":
        block = STATUS_200 + literal("x-big", "b" * 40000) + literal("content-length", "2")
        parts = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        out = frame(HEADERS, 0, sid, parts[0])
        for i, p in enumerate(parts[1:]):
            out += frame(CONTINUATION, END_HEADERS if i == len(parts) - 2 else 0, sid, p)
        sock.sendall(out + frame(DATA, END_STREAM, sid, b"ok"))
        serve_ok(sock)
    elif name == "ping-flood":
        flood(sock, frame(PING, 0, 0, b"12345678") * 100)
    elif name == "settings-flood":
        flood(sock, frame(SETTINGS, 0, 0) * 100)
    elif name == "empty-data-flood":
        sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200))
        flood(sock, frame(DATA, 0, sid) * 100)
    elif name == "continuation-flood":
        sock.sendall(frame(HEADERS, 0, sid, STATUS_200))
        flood(sock, frame(CONTINUATION, 0, sid, literal("x-a", "a" * 16000)))
    elif name == "empty-continuation-flood":
        sock.sendall(frame(HEADERS, 0, sid, STATUS_200))
        flood(sock, frame(CONTINUATION, 0, sid) * 100)
    elif name == "hpack-bomb":
        # one 4000-byte entry in the table, then 200 references to it
        block = STATUS_200 + literal("x-bomb", "a" * 4000, indexing=True) + b"\xbe" * 200
        sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, block))
        drain(sock)
        threading.Event().wait(30)
    elif name == "table-size":
        sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, hpack_int(1 << 20, 5, 0x20) + STATUS_200))
        drain(sock)
        threading.Event().wait(30)
    elif name == "big-frame":
        sock.sendall(b"\xff\xff\xff" + bytes([DATA, 0]) + struct.pack(">I", sid))
        flood(sock, b"\0" * 65536)
    elif name == "push":
        sock.sendall(frame(PUSH_PROMISE, END_HEADERS, sid, struct.pack(">I", 2) + b"\x82\x87\x84"))
        drain(sock)
        threading.Event().wait(30)
    elif name == "window-overflow":
        sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
        drain(sock)
        threading.Event().wait(30)
    elif name == "uppercase":
        sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, STATUS_200 + literal("X-Upper", "1")))
        serve_ok(sock)
    elif name == "huge-length":
        # a content-length beyond any integer a Lua number holds exactly
        sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200 + literal("content-length", "9" * 20))
                     + frame(DATA, END_STREAM, sid, b"x"))
        drain(sock)
        threading.Event().wait(30)
    elif name == "data-unopened":
        sock.sendall(frame(DATA, END_STREAM, 7, b"x"))
        drain(sock)
        threading.Event().wait(30)
    elif name in ("gzip-bomb", "gzip-truncated", "gzip-members", "deflate-raw", "deflate-zlib"):
        if name == "gzip-members":
            # two gzip members back to back (RFC 1952 2.2), within one piece
            body = b""
            for text in (b"first member\n", b"second member\n"):
                c = zlib.compressobj(6, zlib.DEFLATED, 31)
                body += c.compress(text) + c.flush()
            coding = "gzip"
        elif name == "gzip-bomb":
            c = zlib.compressobj(9, zlib.DEFLATED, 31)
            body = b"".join(c.compress(b"\0" * (1 << 20)) for _ in range(200)) + c.flush()
            coding = "gzip"
        elif name == "gzip-truncated":
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            body = (c.compress(b"hello gzip " * 1000) + c.flush())[:-20]
            coding = "gzip"
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15 if name == "deflate-raw" else 15)
            body = c.compress(b"hello deflate " * 1000) + c.flush()
            coding = "deflate"
        out = frame(HEADERS, END_HEADERS, sid, STATUS_200 + literal("content-encoding", coding))
        for i in range(0, len(body), 16384):
            out += frame(DATA, END_STREAM if i + 16384 >= len(body) else 0, sid, body[i:i + 16384])
        drain(sock)
        sock.sendall(out)
        threading.Event().wait(30)
    elif name in ("goaway-after-data", "refused-after-data"):
        # part of an answer, then a claim that the request was never processed
        sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200 + literal("content-length", "10"))
                     + frame(DATA, 0, sid, b"part"))
        if name == "goaway-after-data":
            sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
        else:
            sock.sendall(frame(RST_STREAM, 0, sid, struct.pack(">I", 7)))
        drain(sock)
        threading.Event().wait(30)
    elif name.startswith("block:"):
        # one response header block given in hex (HEADERS, END_HEADERS | END_STREAM)
        sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, bytes.fromhex(name[6:])))
        drain(sock)
        threading.Event().wait(30)
    elif name.startswith("body:"):
        # body:CL:DATA[:cut]: a content-length (or "-" for none), the DATA bytes;
        # the stream ends with END_STREAM, or with "cut" the connection closes
        _, cl, data, *end = name.split(":")
        head = STATUS_200 + (literal("content-length", cl) if cl != "-" else b"")
        sock.sendall(frame(HEADERS, END_HEADERS, sid, head)
                     + frame(DATA, 0 if end else END_STREAM, sid, data.encode()))
        if end:
            # a FIN without close_notify, once the client acked our SETTINGS
            # (closing with its ACK unread would send a reset, which may
            # discard the answer before the client reads it)
            while True:
                ftype, flags, _, _ = read_frame(sock)
                if ftype == SETTINGS and flags & ACK:
                    break
            sock.shutdown(socket.SHUT_WR)
            drain(sock)
            threading.Event().wait(30)
            return
        drain(sock)
        threading.Event().wait(30)
    elif name.startswith("frames:"):
        # frames:HEX: raw bytes after the request's HEADERS; "SS" in HEX
        # stands for the request's stream id (4 bytes)
        sock.sendall(bytes.fromhex(name[7:].replace("SS", "%08x" % sid)))
        drain(sock)
        threading.Event().wait(30)
    elif name == "closed-data-flood":
        # two requests: the first answered, then DATA on its closed stream
        # for ever, the second never answered
        second = next_request(sock)
        answer(sock, sid, b"first")
        flood(sock, frame(DATA, 0, sid, b"x") * 100)
    elif name == "reset-second":
        # request_all: the second request is reset, the others answered
        answer(sock, sid, b"first")
        sock.sendall(frame(RST_STREAM, 0, next_request(sock), struct.pack(">I", 2)))
        serve_ok(sock)
    elif name == "no-read":
        # windows wide open, then nothing more is read
        sock.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0x7FFFFFFF))
                     + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535)))
        threading.Event().wait(30)
    elif name == "settings-window-flood":
        # full SETTINGS frames of INITIAL_WINDOW_SIZE entries (each one
        # touches every open stream's window)
        entries = b"".join(struct.pack(">HI", 4, 65535 + (i % 2)) for i in range(2730))
        flood(sock, frame(SETTINGS, 0, 0, entries))
    elif name == "headers-closed-flood":
        # HEADERS on the first (closed) stream for ever, 16 KB of Huffman
        # each (the decoder must read them all), the second never answered
        next_request(sock)
        answer(sock, sid, b"first")
        value = bytes.fromhex("18c6318c63") * 3200
        block = b"\x00\x01x" + hpack_int(len(value), 7, 0x80) + value
        flood(sock, frame(HEADERS, END_HEADERS, sid, block) * 10)
    elif name == "goaway-idle":
        # the answer and a GOAWAY behind it: the connection takes no more
        sock.sendall(frame(HEADERS, END_HEADERS, sid, STATUS_200 + literal("content-length", "5"))
                     + frame(DATA, END_STREAM, sid, b"first")
                     + frame(GOAWAY, 0, 0, struct.pack(">II", sid, 0)))
        drain(sock)
        threading.Event().wait(30)
    elif name == "cancel-window":
        # the first request uploads: its window opens again only once a
        # second request arrived (PINGs give the client's driver turns to
        # send it); once the upload ends, the second is answered first
        second, ended = None, False
        while second is None or not ended:
            if sock.pending() or select.select([sock], [], [], 0.05)[0]:
                ftype, flags, s2, _ = read_frame(sock)
                if ftype == HEADERS and s2 != sid:
                    second = s2
                    sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 65536))
                                 + frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 65536)))
                if ftype == DATA and s2 == sid and flags & END_STREAM:
                    ended = True
            elif second is None:
                sock.sendall(frame(PING, 0, 0, b"12345678"))
        # (one frame: the whole answer reaches the client in one step)
        sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, second, STATUS_200))
        answer(sock, sid, b"first")
        serve_ok(sock)
    elif name.startswith("goaway-orphan:"):
        # goaway-orphan:MARK: once a second request arrived (PINGs give the
        # client's driver turns to send it), a GOAWAY that keeps it, the
        # first one's answer, and never the second's; the file MARK says
        # when the client closed the connection
        second = None
        while second is None:
            if sock.pending() or select.select([sock], [], [], 0.05)[0]:
                ftype, _, s2, _ = read_frame(sock)
                if ftype == HEADERS:
                    second = s2
            else:
                sock.sendall(frame(PING, 0, 0, b"12345678"))
        sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", second, 0)))
        answer(sock, sid, b"first")
        try:
            while sock.recv(65536):
                pass
        except Exception:
            pass
        open(name.split(":")[1], "wb").close()
    elif name.startswith("close-idle:"):
        # close-idle:GO:MARK: the answer; once the file GO exists, the
        # connection closes (no GOAWAY); then the file MARK says it did
        _, go, mark = name.split(":")
        answer(sock, sid, b"first")
        for _ in range(1000):
            if os.path.exists(go):
                break
            threading.Event().wait(0.02)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        open(mark, "wb").close()
    elif name.startswith("ping-idle:"):
        # ping-idle:GO:MARK: the answer; once the file GO exists, a PING
        # (the connection sits idle in the client's pool), then the file
        # MARK; then every request is answered
        _, go, mark = name.split(":")
        answer(sock, sid, b"first")
        for _ in range(1000):
            if os.path.exists(go):
                break
            threading.Event().wait(0.02)
        sock.sendall(frame(PING, 0, 0, b"idle-png"))
        open(mark, "wb").close()
        serve_ok(sock)
    elif name == "silent":
        drain(sock)
        threading.Event().wait(30)
    else:
        raise SystemExit("unknown scenario " + name)


def handle(raw, ctx, name):
    global connections
    try:
        sock = ctx.wrap_socket(raw, server_side=True)
        if recv_exact(sock, len(PREFACE)) != PREFACE:
            return
        with lock:
            connections += 1
            nth = connections
        scenario(name, sock, nth)
    except Exception:
        pass
    finally:
        try:
            raw.close()
        except Exception:
            pass


def main():
    port, cert, key, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    while True:
        raw, _ = srv.accept()
        threading.Thread(target=handle, args=(raw, ctx, name), daemon=True).start()


if __name__ == "__main__":
    main()
