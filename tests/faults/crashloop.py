#!/usr/bin/python3
"""crashloop.py: kill -9 keystore writers at random moments; every surviving file must open to the old
or the new state (tests/e2e/30-faults.sh runs 50 trials, tests/stress/crash.sh 500).

  crashloop.py --akagent A --akctl C --store PATH --trials N --work DIR   (passphrase: one line on fd 3)

The store at PATH (the default keystore of the caller's XDG_DATA_HOME, so akctl needs no -f) must exist.
Each trial picks agent-add, agent-rm, direct-add or direct-rm. Agent trials start an agent, unlock it,
send the write with akctl and SIGKILL the AGENT after a random delay; direct trials SIGKILL akctl
itself. Delays are uniform over 1.3x the measured duration of an uninterrupted write. Then:
  old   - the file is byte for byte what it was before the trial;
  new   - it opens with the passphrase and holds exactly the expected new profiles and secret;
  other - anything else (does not open, or other content): a failure.
A writer that exited 0 whose change is missing is "lost": a failure too.
Prints per-mode counts and one summary line; exit 0 only without "other" and "lost".
"""
import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time


def fake_key():
    body = secrets.token_urlsafe(72).replace("=", "")[:93]
    return "sk-ant-api03-" + body + "AA"


class Box:
    def __init__(self, a):
        self.a = a
        self.pw = os.fdopen(3).readline().rstrip("\n")
        self.work = a.work
        os.makedirs(self.work, mode=0o700, exist_ok=True)
        self.vsock = os.path.join(self.work, "v.sock")
        self.wsock = os.path.join(self.work, "w.sock")
        self.nosock = os.path.join(self.work, "nowhere.sock")
        self.pids = []

    def env(self, sock):
        e = dict(os.environ)
        e["AKAGENT_SOCK"] = sock
        e.pop("AKAGENT_PID", None)
        return e

    def ctl(self, sock, args, stdin=b"", pw=None, check=False):
        """Run akctl; pw (if given) goes on fd 3. Returns (rc, stdout, stderr)."""
        fds = ()
        r = w = None
        if pw is not None:
            r, w = os.pipe()
            os.write(w, (pw + "\n").encode())
            os.close(w)
            fds = (r,)
            args = ["--passphrase-fd", str(r)] + args
        p = subprocess.run([self.a.akctl] + args, input=stdin, capture_output=True, env=self.env(sock),
                           pass_fds=fds, timeout=60)
        if r is not None:
            os.close(r)
        if check and p.returncode != 0:
            raise SystemExit("akctl %s failed: %s" % (args, p.stderr.decode(errors="replace")))
        return p.returncode, p.stdout, p.stderr

    def start_agent(self, sock):
        p = subprocess.run([self.a.akagent, "-s", "-a", sock], capture_output=True, env=self.env(sock),
                           timeout=30)
        if p.returncode != 0:
            raise SystemExit("akagent failed: %s" % p.stderr.decode(errors="replace"))
        pid = None
        for part in p.stdout.decode().replace(";", "\n").split("\n"):
            part = part.strip()
            if part.startswith("AKAGENT_PID="):
                pid = int(part.split("=", 1)[1])
        if pid is None:
            raise SystemExit("akagent printed no AKAGENT_PID")
        self.pids.append(pid)
        # tests/lib.sh kills these at cleanup even if this script is killed first
        if os.environ.get("AKT_PIDFILE"):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    start = f.read().rsplit(")", 1)[1].split()[19]
            except (OSError, IndexError):
                start = ""
            with open(os.environ["AKT_PIDFILE"], "a") as f:
                f.write("%d %s\n" % (pid, start))
        return pid

    def state(self):
        """Open the file with the verifier agent: {name: secret} or None if it does not open."""
        self.ctl(self.vsock, ["lock"])
        rc, _, err = self.ctl(self.vsock, ["unlock"], pw=self.pw)
        if rc != 0:
            return None
        rc, out, _ = self.ctl(self.vsock, ["list", "--json"])
        if rc != 0:
            return None
        d = json.loads(out)
        rows = d["profiles"] if isinstance(d, dict) else d
        res = {}
        for row in rows:
            rc, out, _ = self.ctl(self.vsock, ["get", row["name"]])
            if rc != 0:
                return None
            res[row["name"]] = out.decode()
        self.ctl(self.vsock, ["lock"])
        return res


def gone(pid, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        # A zombie is gone once every thread of it is one: the first thread can be a zombie while
        # another (the agent's writer) is still exiting.
        try:
            os.kill(pid, 0)
            states = []
            for t in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                        states.append(f.read().split(")")[-1].split()[0])
                except FileNotFoundError:
                    pass
            if all(st in ("Z", "X") for st in states):
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.005)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--akagent", required=True)
    ap.add_argument("--akctl", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    b = Box(a)
    # a TERM (the test's timeout) still runs the finally below, so no agent outlives us
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    vpid = b.start_agent(b.vsock)
    try:
        run(a, b, rnd)
    finally:
        for pid in b.pids:
            try:
                os.kill(pid, signal.SIGTERM if pid == vpid else signal.SIGKILL)
            except ProcessLookupError:
                pass


def run(a, b, rnd):
    model = b.state()
    if model is None:
        raise SystemExit("the store does not open at the start")
    modes = ["agent-add", "agent-rm", "direct-add", "direct-rm"]
    counts = {m: {"old": 0, "new": 0, "other": 0, "lost": 0, "completed": 0} for m in modes}
    dur = {}
    serial = [0]

    def writer(mode, name, secret):
        """Start the write; returns (Popen, pid to kill, cleanup fn)."""
        if mode.startswith("agent"):
            wpid = b.start_agent(b.wsock)
            b.ctl(b.wsock, ["unlock"], pw=b.pw, check=True)
            args = ["add", name] if mode.endswith("add") else ["rm", name]
            p = subprocess.Popen([a.akctl] + args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=b.env(b.wsock))
            p.stdin.write(secret.encode())
            p.stdin.close()
            return p, wpid
        r, w = os.pipe()
        os.write(w, (b.pw + "\n").encode())
        os.close(w)
        args = ["--passphrase-fd", str(r)] + (["add", name] if mode.endswith("add") else ["rm", name])
        env = b.env(b.nosock)
        # no leak report from a writer killed during LeakSanitizer's scan (ASan builds)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        p = subprocess.Popen([a.akctl] + args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, pass_fds=(r,))
        os.close(r)
        p.stdin.write(secret.encode())
        p.stdin.close()
        return p, p.pid

    def pick(mode):
        serial[0] += 1
        if mode.endswith("rm"):
            cands = sorted(n for n in model if n.startswith("c"))
            if not cands:
                return None, None
            return rnd.choice(cands), ""
        return "c%d" % serial[0], fake_key()

    def finish_agent(wpid):
        if not gone(wpid, 5):
            raise SystemExit("agent %d survived SIGKILL" % wpid)
        try:
            os.unlink(b.wsock)
        except FileNotFoundError:
            pass

    # calibrate: uninterrupted writes
    for mode in modes:
        ts = []
        for _ in range(3):
            if mode.endswith("rm"):
                name, secret = pick("add")
                p, kp = writer(mode.replace("rm", "add"), name, secret)
                p.wait()
                if mode.startswith("agent"):
                    os.kill(kp, signal.SIGKILL)
                    finish_agent(kp)
                model[name] = secret
            name, secret = pick(mode)
            t0 = time.monotonic()
            p, kp = writer(mode, name, secret)
            if p.wait() != 0:
                raise SystemExit("calibration %s failed" % mode)
            ts.append(time.monotonic() - t0)
            if mode.startswith("agent"):
                os.kill(kp, signal.SIGKILL)
                finish_agent(kp)
            if mode.endswith("add"):
                model[name] = secret
            else:
                del model[name]
        dur[mode] = sorted(ts)[1]
    if b.state() != model:
        raise SystemExit("calibration left an unexpected state")
    print("calibrated write durations (ms): " +
          ", ".join("%s %.1f" % (m, dur[m] * 1e3) for m in modes))

    with open(a.store, "rb") as f:
        img = f.read()
    for trial in range(a.trials):
        mode = rnd.choice(modes)
        name, secret = pick(mode)
        if name is None:
            mode = mode.replace("rm", "add")
            name, secret = pick(mode)
        expected = dict(model)
        if mode.endswith("add"):
            expected[name] = secret
        else:
            del expected[name]
        p, kp = writer(mode, name, secret)
        time.sleep(rnd.uniform(0, dur[mode] * 1.3))
        try:
            os.kill(kp, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = p.wait()
        if mode.startswith("agent"):
            finish_agent(kp)
        with open(a.store, "rb") as f:
            now = f.read()
        c = counts[mode]
        if rc == 0:
            c["completed"] += 1
        if now == img:
            st = "old"
        else:
            got = b.state()
            st = "new" if got == expected else "other"
            if st == "other":
                print("trial %d %s: the file holds neither state (%s)" % (
                    trial, mode, "unopenable" if got is None else "%d profiles" % len(got)))
        if st == "old" and rc == 0:
            c["lost"] += 1
            print("trial %d %s: the writer reported success but the change is missing" % (trial, mode))
        c[st] += 1
        if st == "new":
            model = expected
        img = now
    left = [f for f in os.listdir(os.path.dirname(a.store)) if ".tmp." in f]
    for f in left:
        os.unlink(os.path.join(os.path.dirname(a.store), f))
    final = b.state()
    if final != model:
        print("final state differs from the model")
        counts["direct-add"]["other"] += 1
    tot = {k: sum(c[k] for c in counts.values()) for k in ("old", "new", "other", "lost", "completed")}
    for m in modes:
        c = counts[m]
        print("%-10s old %4d  new %4d  other %d  lost %d  (writer finished before the kill: %d)" % (
            m, c["old"], c["new"], c["other"], c["lost"], c["completed"]))
    print("crash trials %d: old %d, new %d, other %d, lost %d; temp files left by killed writers: %d" % (
        a.trials, tot["old"], tot["new"], tot["other"], tot["lost"], len(left)))
    sys.stdout.flush()
    if tot["other"] or tot["lost"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
