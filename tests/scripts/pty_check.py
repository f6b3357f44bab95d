# Pseudo-terminals as Python's os and pty modules use them: openpty's
# pair through the line discipline (ONLCR, ICRNL, echo, canonical lines,
# raw mode), the master's EIO once the slave is closed, and pty.fork's
# child on the slave as a session leader. Compared with a native run.
import os, pty, sys, tty

m, s = os.openpty()
print("isatty", os.isatty(m), os.isatty(s))
print("inheritable", os.get_inheritable(m), os.get_inheritable(s))
os.write(s, b"I wish to buy a fish license.\n")
print("master reads", os.read(m, 100))
os.write(m, b"helo\x7fp!\r")
print("slave reads", os.read(s, 100))
print("echo", os.read(m, 100))
tty.setraw(s)
os.write(m, b"ab")
print("raw", os.read(s, 10))
os.close(s)
try:
    print("after close", os.read(m, 1))
except OSError as e:
    print("after close errno", e.errno)
os.close(m)

sys.stdout.flush()
pid, fd = pty.fork()
if pid == pty.CHILD:
    print("child stdout is a tty", os.isatty(1))
    try:
        os.setsid()
        print("setsid succeeded")
    except OSError:
        print("already a session leader")
    sys.stdout.flush()
    os._exit(4)
out = b""
while True:
    try:
        d = os.read(fd, 100)
    except OSError:
        break
    if not d:
        break
    out += d
print("from the child", out)
print("child status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
