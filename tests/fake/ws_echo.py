#!/usr/bin/env python3
"""A loopback WebSocket fake for the proxy tests, standard library only.

  ws_echo.py server --log LOG --tls CERT KEY --port-file FILE
      TLS server: answers an HTTP/1.1 `Upgrade: websocket` with 101 (Sec-WebSocket-Accept computed from
      the client's key, Sec-WebSocket-Protocol echoed), logs "REQ METHOD TARGET" and one "H Name: value"
      line per header, then echoes each text frame back as "echo:" + payload; "WS closed" when the
      connection ends. A request without Upgrade gets 400.
  ws_echo.py client URL HEADER... [--send TEXT] [--hold FILE]
      Plain-HTTP client: upgrades, checks the 101 and its Sec-WebSocket-Accept, sends TEXT (masked, as a
      client must), prints the payload of the answer frame; with --hold, waits until FILE exists
      before closing. Exit 0, or 3 with the status line if the answer is not 101.
"""
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOCK = threading.Lock()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            raise EOFError("closed during the head")
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))


def read_frame(f):
    h = f.read(2)
    if len(h) < 2:
        return None, None
    op, ln = h[0] & 0x0F, h[1] & 0x7F
    masked = h[1] & 0x80
    if ln == 126:
        ln = struct.unpack(">H", f.read(2))[0]
    elif ln == 127:
        ln = struct.unpack(">Q", f.read(8))[0]
    mask = f.read(4) if masked else b"\0\0\0\0"
    data = bytearray(f.read(ln))
    for i in range(len(data)):
        data[i] ^= mask[i % 4]
    return op, bytes(data)


def frame(op, data, mask):
    hdr = bytes([0x80 | op])
    m = 0x80 if mask else 0
    if len(data) < 126:
        hdr += bytes([m | len(data)])
    elif len(data) < 65536:
        hdr += bytes([m | 126]) + struct.pack(">H", len(data))
    else:
        hdr += bytes([m | 127]) + struct.pack(">Q", len(data))
    if not mask:
        return hdr + data
    k = os.urandom(4)
    return hdr + k + bytes(b ^ k[i % 4] for i, b in enumerate(data))


def note(log, text):
    with LOCK, open(log, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def serve_one(conn, log):
    f = conn.makefile("rwb", buffering=0)
    try:
        head = read_head(f)
        hdrs = {}
        out = ["REQ " + head[0]]
        for line in head[1:]:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
            out.append("H %s: %s" % (name.strip(), value.strip()))
        note(log, "\n".join(out))
        if hdrs.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in hdrs:
            f.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            return
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n" % accept_for(hdrs["sec-websocket-key"]))
        if "sec-websocket-protocol" in hdrs:
            resp += "Sec-WebSocket-Protocol: %s\r\n" % hdrs["sec-websocket-protocol"].split(",")[0].strip()
        f.write((resp + "\r\n").encode())
        while True:
            op, data = read_frame(f)
            if op is None or op == 8:
                break
            if op == 1:
                f.write(frame(1, b"echo:" + data, False))
    except (EOFError, OSError, ssl.SSLError):
        pass
    finally:
        note(log, "WS closed")
        try:
            conn.close()
        except OSError:
            pass


def server(args):
    log = args[args.index("--log") + 1]
    cert, key = args[args.index("--tls") + 1], args[args.index("--tls") + 2]
    port_file = args[args.index("--port-file") + 1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(port_file + ".tmp", "w") as pf:
        pf.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while True:
        c, _ = ls.accept()
        try:
            c = ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()
            continue
        threading.Thread(target=serve_one, args=(c, log), daemon=True).start()


def client(args):
    url = urllib.parse.urlsplit(args[0])
    send, hold, headers = "ping", None, []
    i = 1
    while i < len(args):
        if args[i] == "--send":
            send, i = args[i + 1], i + 2
        elif args[i] == "--hold":
            hold, i = args[i + 1], i + 2
        else:
            headers.append(args[i])
            i += 1
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection((url.hostname, url.port), timeout=60)
    f = s.makefile("rwb", buffering=0)
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (url.path, url.hostname, url.port, key))
    req += "".join(h + "\r\n" for h in headers) + "\r\n"
    f.write(req.encode())
    head = read_head(f)
    if not head[0].startswith("HTTP/1.1 101"):
        print(head[0])
        return 3
    got = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        got[name.strip().lower()] = value.strip()
    if got.get("sec-websocket-accept") != accept_for(key):
        print("bad Sec-WebSocket-Accept: %r" % got.get("sec-websocket-accept"))
        return 4
    f.write(frame(1, send.encode(), True))
    op, data = read_frame(f)
    if op != 1:
        print("no answer frame")
        return 5
    print(data.decode())
    sys.stdout.flush()
    if hold:
        while not os.path.exists(hold):
            time.sleep(0.05)
    s.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2:])
    else:
        sys.exit(client(sys.argv[2:]))
