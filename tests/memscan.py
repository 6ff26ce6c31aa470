#!/usr/bin/python3
"""memscan.py PID: search a process's readable memory for needles (root only).

Needles come on stdin, one per line, hex-encoded (they are secrets: never on argv). For each needle
prints "NEEDLE_INDEX COUNT REGIONS" where REGIONS names the mappings it was found in. Regions larger
than 1 GiB (sanitizer shadow memory) and [vvar]/[vsyscall] are skipped. Exit 0, or 2 on error.
"""
import sys

LIMIT = 1 << 30
CHUNK = 1 << 20


def regions(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            name = parts[5].strip() if len(parts) > 5 else ""
            if perms[0] != "r" or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            if hi - lo > LIMIT:
                continue
            yield lo, hi, name or "anon", perms


def main():
    pid = int(sys.argv[1])
    needles = [bytes.fromhex(l.strip()) for l in sys.stdin if l.strip()]
    counts = [0] * len(needles)
    where = [set() for _ in needles]
    overlap = max((len(n) for n in needles), default=1) - 1
    scanned = 0
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for lo, hi, name, perms in regions(pid):
            tail = b""
            addr = lo
            while addr < hi:
                n = min(CHUNK, hi - addr)
                try:
                    mem.seek(addr)
                    data = mem.read(n)
                except (OSError, ValueError, OverflowError):
                    data = b""
                if not data:
                    break
                scanned += len(data)
                buf = tail + data
                for i, nd in enumerate(needles):
                    start = 0
                    while True:
                        j = buf.find(nd, start)
                        if j < 0:
                            break
                        # a hit wholly inside the carried-over tail was already counted
                        if j + len(nd) > len(tail):
                            counts[i] += 1
                            where[i].add("%x-%x %s %s" % (lo, hi, perms, name))
                        start = j + 1
                tail = buf[-overlap:] if overlap else b""
                addr += len(data)
    print("scanned %d" % scanned)
    for i in range(len(needles)):
        print("%d %d %s" % (i, counts[i], "; ".join(sorted(where[i]))))


if __name__ == "__main__":
    main()
