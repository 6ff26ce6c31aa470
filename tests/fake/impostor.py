#!/usr/bin/python3
"""A fake agent listening on a Unix socket, for the tests of akctl's trust checks (tests/e2e/10-impostor.sh).

  impostor.py SOCK LOG STORE_PATH

Binds SOCK (mode 0666), writes "ready" to LOG.ready, then serves forever: every request frame it receives
is logged to LOG as one line "frame TYPE" (so a test sees whether a client sent it anything at all);
STATUS (1) is answered with a locked STATUS_REPLY naming STORE_PATH as its keystore, UNLOCK (2) and
anything else with OK. Framing as in docs/protocol.md: u32 big-endian length, u8 type, payload.
"""
import os
import socket
import struct
import sys

STATUS, STATUS_REPLY, OK = 1, 0x82, 0x80


def frame(typ, payload=b""):
    return struct.pack(">IB", 1 + len(payload), typ) + payload


def status_reply(store):
    s = store.encode()
    payload = struct.pack(">IBBI", 1, 0, 0, os.getpid()) + struct.pack(">I", len(s)) + s
    payload += struct.pack(">III", 0, 0, 0xFFFFFFFF)
    return frame(STATUS_REPLY, payload)


def serve(conn, log, store):
    buf = b""
    conn.settimeout(30)
    while True:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 5 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            typ = buf[4]
            buf = buf[4 + n:]
            with open(log, "a") as f:
                f.write("frame %d\n" % typ)
            conn.sendall(status_reply(store) if typ == STATUS else frame(OK))


def main():
    path, log, store = sys.argv[1], sys.argv[2], sys.argv[3]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(16)
    with open(log + ".ready", "w") as f:
        f.write("ready\n")
    while True:
        conn, _ = s.accept()
        with conn:
            serve(conn, log, store)


if __name__ == "__main__":
    main()
