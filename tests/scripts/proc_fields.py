# /proc/<pid> as ps and Python read it, for a child running busybox sleep
# and for the caller itself; prints only what is the same natively and in
# Cloister (relations instead of pids).
import os
import subprocess

child = subprocess.Popen(["/bin/busybox", "sleep", "60"])
pid = child.pid
base = f"/proc/{pid}"
# Between fork and exec the child still shows Python's command line.
while True:
    with open(f"{base}/cmdline", "rb") as f:
        cmdline = f.read()
    if cmdline.startswith(b"/bin/busybox"):
        break
# Natively the child runs a moment before it sleeps: wait until it sleeps.
while open(f"{base}/stat").read().rsplit(")", 1)[1].split()[0] == "R":
    pass
print("cmdline:", cmdline.split(b"\0"))
print("exe:", os.path.basename(os.readlink(f"{base}/exe")))
with open(f"{base}/stat") as f:
    stat = f.read()
comm = stat[stat.index("(") + 1 : stat.rindex(")")]
rest = stat[stat.rindex(")") + 2 :].split()
print("stat: comm", comm, "state", rest[0], "fields", 2 + len(rest))
print("stat: ppid is us", int(rest[1]) == os.getpid(),
      "pgrp is ours", int(rest[2]) == os.getpgrp(),
      "session is ours", int(rest[3]) == os.getsid(0),
      "threads", rest[17])
status = dict(
    line.split(":\t", 1) for line in open(f"{base}/status").read().splitlines()
)
print("status: Name", status["Name"], "State", status["State"],
      "Threads", status["Threads"])
print("status: Pid", int(status["Pid"]) == pid,
      "PPid", int(status["PPid"]) == os.getpid(),
      "Uid", status["Uid"].split() == [str(os.getuid())] * 4,
      "Gid", status["Gid"].split() == [str(os.getgid())] * 4)
maps = open(f"{base}/maps").read()
print("maps: busybox", any(l.endswith("busybox") for l in maps.splitlines()),
      "stack", "[stack]" in maps)
ps = subprocess.run(["/bin/busybox", "ps", "-o", "pid,ppid,comm"],
                    capture_output=True, text=True).stdout.splitlines()
mine = [l.split() for l in ps[1:] if l.split()[0] == str(pid)]
print("ps:", [(int(p) == os.getpid(), c) for _, p, c in mine])
print("self:", os.readlink("/proc/self") == str(os.getpid()),
      open("/proc/self/stat").read().split()[0] == str(os.getpid()),
      open("/proc/self/cmdline", "rb").read().split(b"\0")[1:3])
r, w = os.pipe()
fds = os.listdir("/proc/self/fd")
print("self fd:", all(str(n) in fds for n in (0, 1, 2, r, w)),
      os.readlink(f"/proc/self/fd/{r}").startswith("pipe:["))
child.kill()
print("child:", child.wait(), "entry after reaping", os.path.exists(base))
