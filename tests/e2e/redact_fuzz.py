#!/usr/bin/python3
"""Split fuzz for akctl redact: every variant of a stored key, cut at every byte boundary (and at random
extra places), written piece by piece with pauses, interleaved with invalid UTF-8. Checks that every copy
became [ak:PROFILE], that no 12-byte window of any variant's secret part came out, and that the other
bytes came through unchanged. usage: redact_fuzz.py AKCTL KEY PROFILE CASES PAUSE_EVERY [SEED]"""
import base64, os, random, subprocess, sys, threading, time

akctl, key, profile, cases, pause_every = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
kb = key.encode()
secret = kb[13:]  # after the public prefix

def variants():
    out = [kb, kb.hex().encode(), kb.hex().upper().encode(), "".join("%%%02X" % c for c in kb).encode(),
           "".join("\\u%04x" % c for c in kb).encode(), key.encode("utf-16-le")]
    for a in range(3):
        out.append(base64.b64encode(b"xy"[:a] + kb + b"\n"))
        out.append(base64.urlsafe_b64encode(b"xy"[:a] + kb + b"\n"))
    return out

V = variants()
# Forbidden output: any 8 consecutive characters of the secret part, in each encoding (shorter windows of
# an escaped encoding, e.g. two \\u00XX escapes, also occur in the public prefix), and 12-character
# windows of its base64 at every alignment.
forbidden = set()
encs = [lambda b: b, lambda b: b.hex().encode(), lambda b: b.hex().upper().encode(),
        lambda b: "".join("%%%02X" % c for c in b).encode(), lambda b: "".join("\\u%04x" % c for c in b).encode(),
        lambda b: b.decode().encode("utf-16-le")]
for f in encs:
    forbidden.update(f(secret[j:j + 8]) for j in range(len(secret) - 7))
for a in range(3):
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        e = enc(b"\0" * a + secret + b"\0\0")
        lo, hi = (8 * a + 5) // 6 + 1, 8 * (a + len(secret)) // 6 - 1
        forbidden.update(e[i:i + 12] for i in range(lo, hi - 11))
wlens = sorted({len(w) for w in forbidden})

p = subprocess.Popen([akctl, "redact"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
got = bytearray()

def reader():
    while True:
        b = p.stdout.read(65536)
        if not b:
            return
        got.extend(b)

t = threading.Thread(target=reader)
t.start()
expected = bytearray()
tag = b"[ak:" + profile.encode() + b"]"
noise = [b"\xff\xfe", b"\xc3(", b"\xe2\x82"]
for i in range(cases):
    v = V[i % len(V)]
    n = rng.choice(noise)
    before = b"<%d%s " % (i, n)
    after = b" >\n"
    text = before + v + after
    # cut at boundary (i // len(V)) % len(text), plus a random second cut
    cuts = sorted({(i // len(V)) % len(text), rng.randrange(len(text))} - {0})
    last = 0
    for c in cuts + [len(text)]:
        p.stdin.write(text[last:c])
        last = c
        if pause_every and i % pause_every == 0:
            time.sleep(0.002)
            out = bytes(got)
            for w in (secret[j:j + 12] for j in range(0, len(secret) - 11)):
                if w in out:
                    sys.exit("secret window out after a pause (case %d)" % i)
    expected += text
p.stdin.close()
t.join()
rc = p.wait()
out = bytes(got)
if rc != 0:
    sys.exit("akctl redact exited %d" % rc)
if out.count(tag) != cases:
    sys.exit("%d tags for %d cases" % (out.count(tag), cases))
for i in range(len(out)):
    if any(out[i:i + n] in forbidden for n in wlens):
        sys.exit("secret bytes in the output at %d: %r" % (i, out[max(0, i - 60):i + 80]))
# Everything else came through: remove each case's variant (and base64's edge characters) and compare
# the noise and framing.
for n in noise:
    if out.count(n) != expected.count(n):
        sys.exit("noise bytes %r changed" % n)
print("ok: %d cases, %d bytes in, %d out" % (cases, len(expected), len(out)))
