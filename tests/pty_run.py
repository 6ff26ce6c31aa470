#!/usr/bin/python3
"""Run a command on a new pseudo-terminal (its controlling terminal, stdin, stdout and stderr) and
answer its prompts, for the e2e tests of what akctl does when a person sits at a terminal.

  pty_run.py [--expect TEXT (--send LINE | --send-raw BYTES | --resize ROWSxCOLS)]... [--timeout SECS]
             [--stdout FILE] -- CMD [ARG...]

Each --expect waits until TEXT appeared in the terminal output (after the previous one) and then
types LINE and a carriage return (--send), or types BYTES as they are, with Python's backslash escapes
(--send-raw '\x03' is Ctrl-C), or resizes the terminal (--resize 50x132). --stdout FILE: the command's stdout goes to FILE (a pipe,
as in eval "$(akctl use P)"), its stdin and stderr stay on the terminal. Everything the terminal showed
is printed on our stdout; our exit status is the command's (124 on timeout, 125 when an expected
text never came).
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def main():
    args = sys.argv[1:]
    pairs, timeout, outfile = [], 30.0, None
    while args and args[0] != "--":
        if args[0] == "--expect":
            pairs.append([args[1].encode(), None])
            args = args[2:]
        elif args[0] == "--send":
            pairs[-1][1] = args[1].encode() + b"\r"
            args = args[2:]
        elif args[0] == "--send-raw":
            pairs[-1][1] = args[1].encode().decode("unicode_escape").encode("latin-1")
            args = args[2:]
        elif args[0] == "--resize":
            rows, cols = (int(x) for x in args[1].split("x"))
            pairs[-1][1] = struct.pack("HHHH", rows, cols, 0, 0)
            pairs[-1].append("resize")
            args = args[2:]
        elif args[0] == "--timeout":
            timeout = float(args[1]) * float(os.environ.get("AK_TIMEOUT_FACTOR", "1"))
            args = args[2:]
        elif args[0] == "--stdout":
            outfile = args[1]
            args = args[2:]
        else:
            sys.exit("pty_run.py: bad argument %r" % args[0])
    cmd = args[1:]
    pid, fd = pty.fork()
    if pid == 0:
        if outfile is not None:
            o = os.open(outfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(o, 1)
            os.close(o)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    seen, pos, i = b"", 0, 0
    deadline = time.monotonic() + timeout
    status = None
    while True:
        if i < len(pairs):
            at = seen.find(pairs[i][0], pos)
            if at >= 0:
                pos = at + len(pairs[i][0])
                time.sleep(0.05)
                if len(pairs[i]) > 2:
                    fcntl.ioctl(fd, termios.TIOCSWINSZ, pairs[i][1])
                else:
                    os.write(fd, pairs[i][1])
                i += 1
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(seen)
            sys.exit(124 if i >= len(pairs) else 125)
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            seen += data
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(seen)
    sys.stdout.flush()
    sys.exit(os.waitstatus_to_exitcode(status) if i >= len(pairs) else 125)


if __name__ == "__main__":
    main()
