"""Helpers to drive flotilla-shim (proto/shim/PROTOCOL.md) by hand: root, runc, a busybox rootfs.

Environment: SHIM (binary), RUNC (runtime), BASE (scratch dir, default /tmp/cs), ROOTFS.
"""
import json, os, socket, struct, subprocess, time

SHIM = os.environ.get("SHIM", "/tmp/cs/bin/flotilla-shim")
RUNC = os.environ.get("RUNC", "/usr/sbin/runc")
BASE = os.environ.get("BASE", "/tmp/cs")
ROOTFS = os.environ.get("ROOTFS", BASE + "/b/rootfs")
TEMPLATE = os.environ.get("TEMPLATE", BASE + "/b/config.json")
RUNTIME_ROOT = BASE + "/runc-root"
CGROUP = "/flotilla-cshim-test"


def bundle(cid, args, terminal=False, mem=None):
    d = f"{BASE}/bundles/{cid}"
    os.makedirs(d, exist_ok=True)
    c = json.load(open(TEMPLATE))
    c["root"] = {"path": ROOTFS, "readonly": True}
    c["process"]["args"] = args
    c["process"]["terminal"] = terminal
    c["linux"]["cgroupsPath"] = f"{CGROUP}/{cid}"
    if mem:
        c["linux"].setdefault("resources", {})["memory"] = {"limit": mem, "swap": mem}
    json.dump(c, open(d + "/config.json", "w"))
    return d


def state_dir(cid, long=False):
    d = f"{BASE}/state/{cid}"
    if long:
        d = f"{BASE}/state/" + "l" * 60 + "/" + "o" * 60 + "/" + cid
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def spawn(cid, sd, bnd, *flags, log=True):
    """Start the shim as the contract says; returns (sync line, log path)."""
    logp = f"{BASE}/logs/{cid}.log" if log else ""
    os.makedirs(f"{BASE}/logs", exist_ok=True)
    argv = [SHIM, "--id", cid, "--bundle", bnd, "--state-dir", sd, "--runtime", RUNC,
            "--runtime-root", RUNTIME_ROOT, "--log-path", logp, *flags]
    r, w = os.pipe()
    os.set_inheritable(w, True)
    null = os.open("/dev/null", os.O_RDWR)

    def pre():
        os.dup2(w, 3)
        os.closerange(4, 1024)
    p = subprocess.Popen(argv, stdin=null, stdout=null, stderr=null, cwd="/", start_new_session=True,
                         close_fds=False, preexec_fn=pre)
    os.close(w)
    os.close(null)
    rc = p.wait()
    out = b""
    while not out.endswith(b"\n"):
        b = os.read(r, 4096)
        if not b:
            break
        out += b
    os.close(r)
    return rc, out.decode(), logp


def _path(sd, name):
    p = f"{sd}/{name}"
    if len(p) < 100:
        return p, None
    fd = os.open(sd, os.O_PATH)
    return f"/proc/self/fd/{fd}/{name}", fd


def connect(sd, name):
    p, fd = _path(sd, name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(p)
    finally:
        if fd is not None:
            os.close(fd)
    return s


def ctl(sd, req, timeout=30):
    s = connect(sd, "shim.sock")
    s.settimeout(timeout)
    s.sendall(req.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    s.close()
    return out.decode()


def frame(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


def read_frames(s, until_exit=True, timeout=10):
    """Reads frames until the exit frame (or EOF); returns (out, err, exit code or None)."""
    s.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = s.recv(1 << 20)
        except socket.timeout:
            break
        if not b:
            break
        chunks.append(b)
    buf = b"".join(chunks)
    out, err, code = [], [], None
    i = 0
    while len(buf) - i >= 5:
        t, n = struct.unpack(">BI", buf[i:i + 5])
        if len(buf) - i < 5 + n:
            break
        p = buf[i + 5:i + 5 + n]
        i += 5 + n
        if t == 1:
            out.append(p)
        elif t == 2:
            err.append(p)
        elif t == 5:
            code = struct.unpack(">I", p)[0]
    return b"".join(out), b"".join(err), code


def log_entries(path):
    res = []
    for line in open(path, "rb").read().split(b"\n")[:-1]:
        ts, stream, tag, text = line.split(b" ", 3) if line.count(b" ") >= 3 else (*line.split(b" ", 2), b"")
        res.append((stream.decode(), tag.decode(), text))
    return res


def shim_pid(sd):
    return int(open(sd + "/shim.pid").read())


def cleanup():
    """Kill what these tests left: containers in our runc root, our shims, our cgroups."""
    subprocess.run([RUNC, "--root", RUNTIME_ROOT, "list", "-q"], capture_output=True)
    ids = subprocess.run([RUNC, "--root", RUNTIME_ROOT, "list", "-q"], capture_output=True, text=True).stdout.split()
    for i in ids:
        subprocess.run([RUNC, "--root", RUNTIME_ROOT, "delete", "-f", i], capture_output=True)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and b"flotilla-shim" in os.path.basename(cmd[0]) and any(a.startswith(BASE.encode() + b"/state") for a in cmd):
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
    for ctrl in os.listdir("/sys/fs/cgroup"):
        d = f"/sys/fs/cgroup/{ctrl}{CGROUP}"
        if os.path.isdir(d):
            for sub in os.listdir(d):
                if os.path.isdir(f"{d}/{sub}"):
                    try:
                        os.rmdir(f"{d}/{sub}")
                    except OSError:
                        pass
            try:
                os.rmdir(d)
            except OSError:
                pass


def wait_for(fn, timeout=10, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()
