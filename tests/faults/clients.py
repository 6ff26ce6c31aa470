#!/usr/bin/python3
"""clients.py: hostile and odd clients for tests/e2e/31-agent-faults.sh (loopback Unix socket only).

  clients.py midreq SOCK N        N clients vanish mid-request (half a header, half a payload, a whole
                                  request with its reply never read); prints "ok"
  clients.py slow SOCK            two clients dribble one byte a second (STATUS: 5 bytes; GET: 15
                                  bytes, longer than the agent's 10 s stall limit) while a third client
                                  sends STATUS every 100 ms; prints what each got and the third's worst
                                  latency
  clients.py idle SOCK N          N connections that never send; then STATUS on a fresh one; prints
                                  "connected N status_ms X" and, after closing them, "after status_ms X"
  clients.py maxsize SOCK         an ADD of exactly 256 KiB (the request limit), GET of it back, a GET
                                  of exactly 256 KiB, then one byte over; prints one line per step
  clients.py flood SOCK N SECS    N clients connect at once and send STATUS; prints how many got a
                                  reply within SECS, then, with all closed, "after OK/N" for N more
  clients.py status SOCK          one STATUS: "reply 0x82" / "error CODE" / "closed" / "timeout"
Exit status 0 unless the helper itself failed.
"""
import resource
import select
import socket
import struct
import sys
import threading
import time

STATUS, GET, ADD = 1, 5, 6
OK, ERROR = 0x80, 0x81
MAX_REQ = 256 * 1024


def frame(typ, payload=b""):
    return struct.pack(">IB", 1 + len(payload), typ) + payload


def s_(b):
    return struct.pack(">I", len(b)) + b


def connect(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # a blocking connect waits for room in the listen backlog, as a real client's would (with a
    # timeout set, Python makes the socket non-blocking and a full backlog is EAGAIN at once)
    s.connect(path)
    s.settimeout(timeout)
    return s


def read_frame(s, timeout=10.0):
    """Returns (type, payload) or ("closed", b"") or ("timeout", b"")."""
    s.settimeout(timeout)
    buf = b""
    try:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return "timeout", b""
    if len(buf) < 5 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        return "closed", b""
    return buf[4], buf[5:4 + struct.unpack(">I", buf[:4])[0]]


def describe(t, p):
    if t == ERROR and len(p) >= 4:
        return "error %d" % struct.unpack(">I", p[:4])[0]
    if isinstance(t, int):
        return "reply 0x%02x" % t
    return t


def status(path, timeout=10.0):
    t0 = time.monotonic()
    try:
        s = connect(path, timeout)
        s.sendall(frame(STATUS))
        t, p = read_frame(s, timeout)
        s.close()
    except OSError as e:
        return "connect-failed %s" % e.errno, time.monotonic() - t0
    return describe(t, p), time.monotonic() - t0


def is_closed(s, timeout=3.0):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def midreq(path, n):
    get = frame(GET, s_(b"alpha"))
    for i in range(n):
        s = connect(path)
        k = i % 4
        if k == 0:
            s.sendall(get[:2])                 # half a header
        elif k == 1:
            s.sendall(get[:7])                 # header + part of the payload
        elif k == 2:
            s.sendall(get)                     # a whole request, reply never read
        else:
            s.sendall(get[:7])
            s.shutdown(socket.SHUT_WR)         # half-close mid-request
        s.close()
    print("ok")


def slow(path):
    res = {}
    worst = [0.0, 0]
    # (after byte 2 was sent, before the last byte is sent) per dribbler: while both are mid-message, an
    # agent that waited on either could answer nobody else
    marks = {}
    answered = []

    def dribble(label, data):
        try:
            s = connect(path, 30)
            for i, b in enumerate(data):
                if i == len(data) - 1:
                    marks[label] = (marks.get(label, (None,))[0], time.monotonic())
                try:
                    s.send(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    res[label] = "dropped after %d bytes" % i
                    return
                if i == 1:
                    marks[label] = (time.monotonic(), None)
                time.sleep(1.0)
            t, p = read_frame(s, 15)
            res[label] = describe(t, p)
        except OSError as e:
            res[label] = "error %s" % e

    th = [threading.Thread(target=dribble, args=("status", frame(STATUS))),
          threading.Thread(target=dribble, args=("get", frame(GET, s_(b"alpha.x"))))]
    for t in th:
        t.start()
    while any(t.is_alive() for t in th):
        t0 = time.monotonic()
        r, dt = status(path, 5)
        worst[1] += 1
        if not r.startswith("reply"):
            res["other"] = r
        else:
            answered.append((t0, t0 + dt))
        worst[0] = max(worst[0], dt)
        time.sleep(0.1)
    # the window: both dribblers past their 2nd byte, neither at its last (the GET is dropped before
    # its last byte: its window ends at the drop)
    starts = [m[0] for m in marks.values() if m[0] is not None]
    ends = [m[1] for m in marks.values() if m[1] is not None]
    w0 = max(starts) if len(starts) == 2 else None
    w1 = min(ends) if ends else time.monotonic()
    during = sum(1 for a, b in answered if w0 is not None and a >= w0 and b <= w1)
    print("slow-status %s" % res.get("status"))
    print("slow-get %s" % res.get("get"))
    print("others %d served, worst %.1f ms, %d while both were mid-message%s" % (
          worst[1], worst[0] * 1e3, during, (", failure: " + res["other"]) if "other" in res else ""))


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            want = hard
    elif soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def idle(path, n):
    raise_nofile(n)
    # the agent inherits our limits: never ask for more connections than it can hold (a blocking
    # connect would wait forever on a backlog the agent cannot drain)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and n > hard - 200:
        print("note: descriptor limit %d: %d connections instead of %d" % (hard, hard - 200, n))
        n = hard - 200
    socks = []
    t0 = time.monotonic()
    failed = 0
    for _ in range(n):
        try:
            socks.append(connect(path, 10))
        except OSError:
            failed += 1
    r, dt = status(path, 10)
    print("connected %d (failed %d) in %.1f s; status with them open: %s in %.1f ms" % (
        len(socks), failed, time.monotonic() - t0, r, dt * 1e3))
    # how many the agent still holds open (none should have been closed: the idle limit is 60 s)
    time.sleep(0.5)
    closed = 0
    for s in socks[:200]:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    for s in socks:
        s.close()
    time.sleep(0.5)
    r, dt = status(path, 10)
    print("dropped-early %d of 200 checked; after closing: %s in %.1f ms" % (closed, r, dt * 1e3))


def maxsize(path):
    # ADD of exactly MAX_REQ bytes (length field): a valid profile with a 64 KiB secret and 3 plain vars
    # (each variable: name, value, a flags byte; 0 = plain)
    secret = b"sk-ant-api03-" + b"x" * (65536 - 13)
    head = bytes([0]) + s_(b"big") + s_(b"anthropic") + s_(b"ANTHROPIC_API_KEY") + s_(secret) + \
        s_(b"") + s_(b"") + struct.pack(">qqI", 0, 0, 3)
    v1 = s_(b"V1") + s_(b"a" * 65536) + b"\0"
    v2 = s_(b"V2") + s_(b"b" * 65536) + b"\0"
    rest = MAX_REQ - 1 - len(head) - len(v1) - len(v2) - len(s_(b"V3")) - 4 - 1
    v3 = s_(b"V3") + s_(b"c" * rest) + b"\0"
    payload = head + v1 + v2 + v3
    assert 1 + len(payload) == MAX_REQ, 1 + len(payload)
    s = connect(path, 30)
    s.sendall(frame(ADD, payload))
    t, p = read_frame(s, 30)
    print("add-max %s" % describe(t, p))
    s.sendall(frame(GET, s_(b"big")))
    t, p = read_frame(s, 30)
    # the agent sets created/rotated itself: compare everything else
    off = len(head) - 1 - 20
    sent = payload[1:]
    same = t == 0x84 and len(p) == len(sent) and p[:off] + p[off + 16:] == sent[:off] + sent[off + 16:]
    print("get-max %s %s" % (describe(t, p), "same-bytes" if same else "DIFFERENT (%d bytes)" % len(p)))
    s.close()
    # GET whose name fills the whole request: an error, agent fine
    s = connect(path, 30)
    s.sendall(frame(GET, s_(b"n" * (MAX_REQ - 1 - 4))))
    t, p = read_frame(s, 30)
    print("get-256k %s" % describe(t, p))
    s.close()
    # one byte over the limit: an error, then the connection is closed
    s = connect(path, 30)
    over = frame(GET, s_(b"n" * (MAX_REQ - 4)))
    try:
        s.sendall(over)
    except (BrokenPipeError, ConnectionResetError):
        pass
    t, p = read_frame(s, 10)
    print("over %s %s" % (describe(t, p), "closed" if is_closed(s) else "STILL-OPEN"))
    s.close()
    r, _ = status(path)
    print("after %s" % r)


def flood(path, n, secs):
    raise_nofile(n)
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = connect(path, 5)
            s.sendall(frame(STATUS))
            socks.append(s)
        except OSError:
            failed += 1
    deadline = time.monotonic() + secs
    got, closed, pending = 0, 0, {s.fileno(): s for s in socks}
    bufs = {}
    while pending and time.monotonic() < deadline:
        r, _, _ = select.select(list(pending.values()), [], [], 0.2)
        for s in r:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                closed += 1
                del pending[s.fileno()]
                continue
            b = bufs.get(s.fileno(), b"") + chunk
            bufs[s.fileno()] = b
            if len(b) >= 4 and len(b) >= 4 + struct.unpack(">I", b[:4])[0]:
                got += 1 if b[4] == 0x82 else 0
                del pending[s.fileno()]
    print("flood %d connected (%d failed): %d replies, %d closed, %d waiting after %.0f s" % (
        len(socks), failed, got, closed, len(pending), secs))
    for s in socks:
        s.close()
    time.sleep(0.5)
    ok = 0
    for _ in range(n):
        r, _ = status(path, 5)
        ok += r == "reply 0x82"
    print("after %d/%d" % (ok, n))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "midreq":
        midreq(path, int(sys.argv[3]))
    elif mode == "slow":
        slow(path)
    elif mode == "idle":
        idle(path, int(sys.argv[3]))
    elif mode == "maxsize":
        maxsize(path)
    elif mode == "flood":
        flood(path, int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "status":
        print(status(path)[0])
    else:
        sys.exit(2)


if __name__ == "__main__":
    main()
