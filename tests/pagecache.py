#!/usr/bin/python3
"""pagecache.py MODE PATH...: put the files under each PATH into a known page-cache state, then print
how much of them the cache holds in large folios.

MODE written: each file written anew in one write (renamed over the old one): where the filesystem
has large folios (ext4 from Linux 6.16, XFS), the cache then holds it in folios of up to 2 MiB, as it
holds any file just written. MODE small: each file dropped from the cache and read back in 1 MiB
reads, which the kernel reads ahead in 4 KiB pages. MODE report: nothing changed.

Both sync afterwards, so no writeback runs beside what is timed next. The share printed ("96", a
percentage of the cached pages that are part of a large folio, from every 16th file) comes from
/proc/self/pagemap and /proc/kpageflags, which only root can read: "unknown" otherwise.
"""
import mmap
import os
import struct
import sys


def files_under(paths):
    out = []
    for p in paths:
        if os.path.isfile(p):
            out.append(p)
        for d, _, names in os.walk(p):
            out.extend(os.path.join(d, n) for n in names)
    return sorted(out)


def rewrite(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path + ".new", "wb") as f:
        f.write(data)
    os.rename(path + ".new", path)


def read_back(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 20):
            pass
    finally:
        os.close(fd)


def large_share(files):
    try:
        pm, kf = open("/proc/self/pagemap", "rb"), open("/proc/kpageflags", "rb")
    except OSError:
        return "unknown"
    pages = large = 0
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        size = os.fstat(fd).st_size
        if size == 0:
            os.close(fd)
            continue
        m = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        os.close(fd)
        base = [int(l.split("-")[0], 16) for l in open("/proc/self/maps")
                if l.rstrip().endswith(" " + p)]
        for i in range(0, size, 4096):
            if not base:
                break
            m[i]  # map the page, so pagemap has its frame
            pm.seek((base[0] + i) // 4096 * 8)
            e = struct.unpack("Q", pm.read(8))[0]
            if e >> 63 & 1:
                kf.seek((e & ((1 << 55) - 1)) * 8)
                flags = struct.unpack("Q", kf.read(8))[0]
                pages += 1
                large += (flags >> 15 | flags >> 16) & 1  # compound head or tail
        m.close()
    return str(100 * large // max(pages, 1))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("written", "small", "report"):
        sys.exit("usage: pagecache.py written|small|report PATH...")
    files = files_under(sys.argv[2:])
    for p in files:
        if sys.argv[1] == "written":
            rewrite(p)
        elif sys.argv[1] == "small":
            read_back(p)
    os.sync()
    print(large_share(files[::16] if len(files) > 64 else files))


main()
