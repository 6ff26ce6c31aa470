#!/usr/bin/python3
"""Raw protocol client for the e2e tests (docs/protocol.md framing: u32 BE length, u8 type, payload).

  rawclient.py status SOCK            send STATUS; print "reply TYPE", "error CODE" or "closed"
  rawclient.py stall SOCK SECS        send 2 bytes of a header, then wait up to SECS for the agent to
                                      drop us; print "dropped AFTER" or "open"
  rawclient.py idle SOCK SECS         connect, send nothing, wait as for stall
  rawclient.py oversize SOCK          announce a 0xffffffff-byte message; print as for status
  rawclient.py garbage SOCK           send a frame of unknown type 0x7e; print as for status
  rawclient.py empty SOCK             send a zero-length frame; print as for status
  rawclient.py relife SOCK SECS       send UNLOCK with an empty key and lifetime SECS (0 = the agent's
                                      default, 4294967295 = none); print as for status
  rawclient.py listone SOCK NAME      send LIST_ONE NAME; print "row N NAME" for a LIST_REPLY of N rows
                                      (NAME: the first row's), else as for status
Exit 0 unless the socket could not be reached (2).
"""
import socket
import struct
import sys
import time

STATUS = 1
LIST_ONE = 14
ERROR = 0x81
LIST_REPLY = 0x83


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        print("connect failed: %s" % e)
        sys.exit(2)
    return s


def read_frame(s, timeout=10.0):
    """The reply's bytes (frame header included), or a string: "timeout"."""
    s.settimeout(timeout)
    buf = b""
    try:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return "timeout"
    return buf


def describe(buf):
    """A reply as the modes print it: "reply TYPE", "error CODE", "closed" or "timeout"."""
    if isinstance(buf, str):
        return buf
    if len(buf) < 5:
        return "closed"
    typ = buf[4]
    if typ == ERROR and len(buf) >= 9:
        return "error %d" % struct.unpack(">I", buf[5:9])[0]
    return "reply 0x%02x" % typ


def read_reply(s, timeout=10.0):
    return describe(read_frame(s, timeout))


def send(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def wait_drop(s, secs):
    start = time.monotonic()
    s.settimeout(secs)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return "open"
    return "dropped %.1f" % (time.monotonic() - start)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    s = connect(path)
    if mode == "status":
        send(s, struct.pack(">IB", 1, STATUS))
        print(read_reply(s))
    elif mode in ("stall", "idle"):
        if mode == "stall":
            send(s, b"\x00\x00")
        print("connected", flush=True)
        print(wait_drop(s, float(sys.argv[3])))
    elif mode == "oversize":
        send(s, struct.pack(">IB", 0xFFFFFFFF, STATUS) + b"x" * 1024)
        print(read_reply(s))
    elif mode == "garbage":
        send(s, struct.pack(">IB", 4, 0x7E) + b"abc")
        print(read_reply(s))
    elif mode == "relife":
        payload = struct.pack(">BII", 2, 0, int(sys.argv[3]))
        send(s, struct.pack(">I", len(payload)) + payload)
        print(read_reply(s))
    elif mode == "listone":
        name = sys.argv[3].encode()
        payload = struct.pack(">BI", LIST_ONE, len(name)) + name
        send(s, struct.pack(">I", len(payload)) + payload)
        buf = read_frame(s)
        if not isinstance(buf, str) and len(buf) >= 13 and buf[4] == LIST_REPLY:
            # u32 n, then the first row: string name first (docs/protocol.md 2.2)
            n, ln = struct.unpack(">II", buf[5:13])
            print("row %d %s" % (n, buf[13:13 + ln].decode()))
        else:
            print(describe(buf))
    elif mode == "empty":
        send(s, struct.pack(">I", 0))
        print(read_reply(s))
    else:
        print("unknown mode")
        sys.exit(2)


if __name__ == "__main__":
    main()
