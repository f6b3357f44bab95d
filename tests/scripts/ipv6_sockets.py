# IPv6 sockets as a program sees them: TCP and UDP over ::1, Linux's dual
# stack (IPv4 clients of a :: socket appear as ::ffff:127.0.0.1, a mapped
# address reaches an IPv4 listener), IPV6_V6ONLY. Prints what it observes;
# the test compares the output with the same script run natively. Port
# numbers are ephemeral and not printed. Last, RFC 3542 ancillary data.
import socket
import threading

V6, V4 = socket.AF_INET6, socket.AF_INET


def listener(family, host, v6only=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((host, 0))
    s.listen(4)
    return s


def echo_once(srv, seen):
    conn, peer = srv.accept()
    seen.append((peer[0], conn.getsockname()[0]))
    conn.sendall(conn.recv(100).upper())
    conn.close()


def exchange(srv, family, host, port, msg):
    seen = []
    t = threading.Thread(target=echo_once, args=(srv, seen))
    t.start()
    c = socket.socket(family, socket.SOCK_STREAM)
    c.connect((host, port))
    c.sendall(msg)
    reply = c.recv(100)
    mine = c.getsockname()[0]
    c.close()
    t.join()
    return reply, mine, seen[0]


srv = listener(V6, "::1")
name = srv.getsockname()
print("tcp6 bound", name[0], len(name))
print("tcp6 echo", *exchange(srv, V6, "::1", name[1], b"hello v6"))
srv.close()

srv = listener(V6, "::")
port = srv.getsockname()[1]
print("dual v6only", srv.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
print("dual v4 client", *exchange(srv, V4, "127.0.0.1", port, b"from v4"))
print("dual v6 client", *exchange(srv, V6, "::1", port, b"from v6"))
try:
    socket.socket(V4).bind(("0.0.0.0", port))
except OSError as e:
    print("dual port is v4's too:", e.strerror)
srv.close()

srv = listener(V6, "::", v6only=1)
port = srv.getsockname()[1]
c = socket.socket(V4)
try:
    c.connect(("127.0.0.1", port))
    print("v6only: v4 connected?!")
except ConnectionRefusedError:
    print("v6only refuses v4")
srv.close()

srv = listener(V4, "127.0.0.1")
print("mapped to v4 listener", *exchange(srv, V6, "::ffff:127.0.0.1", srv.getsockname()[1], b"mapped"))
srv.close()

a = socket.socket(V6, socket.SOCK_DGRAM)
a.bind(("::1", 0))
b = socket.socket(V6, socket.SOCK_DGRAM)
b.sendto(b"datagram", a.getsockname())
data, frm = a.recvfrom(100)
print("udp6", data, frm[0], frm[2], frm[3])
a.sendto(data.upper(), frm)
print("udp6 reply", b.recvfrom(100)[0])

d = socket.socket(V6, socket.SOCK_DGRAM)
d.bind(("::", 0))
v4 = socket.socket(V4, socket.SOCK_DGRAM)
v4.sendto(b"v4 datagram", ("127.0.0.1", d.getsockname()[1]))
data, frm = d.recvfrom(100)
print("udp dual", data, frm[0])
d.sendto(b"answer", frm)
print("udp dual reply", v4.recvfrom(100)[0])

print("hops", a.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS))
a.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 9)
print("hops set", a.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS))

# RFC 3542 ancillary data: hop limit and traffic class chosen by sendmsg or
# the socket's options, reported by recvmsg, control buffers cut short.
import array

P6 = socket.IPPROTO_IPV6


def ints(*v):
    return array.array("i", v)


def ancillary(proto, name):
    try:
        r = socket.socket(V6, socket.SOCK_DGRAM, proto)
    except OSError as e:
        print(name, "unavailable:", e.strerror)
        return
    r.bind(("::1", 0))
    s = socket.socket(V6, socket.SOCK_DGRAM, proto)
    s.connect(r.getsockname())
    r.setsockopt(P6, socket.IPV6_RECVHOPLIMIT, 1)
    r.setsockopt(P6, socket.IPV6_RECVTCLASS, 1)
    print(name, "recvtclass", r.getsockopt(P6, socket.IPV6_RECVTCLASS))

    def show(label, room):
        data, anc, flags, _ = r.recvmsg(100, room)
        cut = bool(flags & socket.MSG_CTRUNC)
        print(name, label, data, [(lvl, t, d.hex()) for lvl, t, d in anc], cut)

    s.send(b"plain")
    show("default", 256)
    s.sendmsg([b"chosen"], [(P6, socket.IPV6_TCLASS, ints(0x20)), (P6, socket.IPV6_HOPLIMIT, ints(2))])
    show("chosen", 256)
    s.setsockopt(P6, socket.IPV6_TCLASS, 0xB8)
    s.setsockopt(P6, socket.IPV6_UNICAST_HOPS, 5)
    print(name, "tclass", s.getsockopt(P6, socket.IPV6_TCLASS))
    s.sendmsg([b"minus one"], [(P6, socket.IPV6_TCLASS, ints(-1)), (P6, socket.IPV6_HOPLIMIT, ints(-1))])
    show("socket's", 256)
    space, length = socket.CMSG_SPACE(4), socket.CMSG_LEN(4)
    for room in (space * 2, space + 1, space + length - 1, length, length - 1, 1, 0):
        s.send(b"cut")
        show(f"room {room}", room)
    bad = [
        ("hop 256", [(P6, socket.IPV6_HOPLIMIT, ints(256))]),
        ("odd tclass", [(P6, socket.IPV6_TCLASS, ints(0).tobytes() + b"\0")]),
        ("unknown type", [(P6, 999, ints(1))]),
    ]
    for label, control in bad:
        try:
            s.sendmsg([b"x"], control)
            print(name, label, "sent?!")
        except OSError as e:
            print(name, label, e.strerror)


ancillary(0, "rfc3542 udp")
ancillary(socket.IPPROTO_UDPLITE, "rfc3542 udplite")
