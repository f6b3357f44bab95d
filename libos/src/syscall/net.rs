//! The socket family: `socket`, `socketpair`, `bind`, `listen`,
//! `accept(4)`, `connect`, `sendto`/`recvfrom`, `sendmsg`/`recvmsg`,
//! `shutdown`, `getsockname`/`getpeername`, `setsockopt`/`getsockopt`
//! over [`Socket`]. `read`/`write`/`poll` on sockets
//! go through the fs and poll families like any file.
//!
//! Blocking calls wait through the platform's `Blocker`; each check of the
//! wait's condition drives the network stack. `EPIPE` also raises
//! `SIGPIPE` unless the call passed `MSG_NOSIGNAL`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::SyscallArgs;
use super::fs::io::{iovecs, retry_blocking};
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fd::FileLike;
use crate::fs::file::open_flags::{O_CLOEXEC, O_NONBLOCK};
use crate::net::addr::{AF_INET, AF_INET6, AF_UNIX, SOCKADDR_MAX_BYTES, SockAddr};
use crate::net::ancillary::Cmsg;
use crate::net::inet::Inet;
use crate::net::socket::{SOCK_DGRAM, SOCK_STREAM, Shutdown, Socket};
use crate::net::udplite::IPPROTO_UDPLITE;
use crate::net::{TcpSocket, UdpLiteSocket, UdpSocket, UnixSocket};
use crate::process::Process;
use crate::return_errno;
use crate::uio::{UserSink, UserSource};
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (41, "socket", sys_socket),
    (42, "connect", sys_connect),
    (43, "accept", sys_accept),
    (44, "sendto", sys_sendto),
    (45, "recvfrom", sys_recvfrom),
    (46, "sendmsg", sys_sendmsg),
    (47, "recvmsg", sys_recvmsg),
    (48, "shutdown", sys_shutdown),
    (49, "bind", sys_bind),
    (50, "listen", sys_listen),
    (51, "getsockname", sys_getsockname),
    (52, "getpeername", sys_getpeername),
    (53, "socketpair", sys_socketpair),
    (54, "setsockopt", sys_setsockopt),
    (55, "getsockopt", sys_getsockopt),
    (288, "accept4", sys_accept4),
];

/// `SOCK_NONBLOCK` (= `O_NONBLOCK`)
const SOCK_NONBLOCK: u32 = O_NONBLOCK;
/// `SOCK_CLOEXEC` (= `O_CLOEXEC`)
const SOCK_CLOEXEC: u32 = O_CLOEXEC;
/// `SOMAXCONN`: `listen` backlogs are capped to it.
pub const SOMAXCONN: usize = 4096;

/// `MSG_*` flags.
mod msg {
    pub const MSG_OOB: u32 = 0x1;
    pub const MSG_PEEK: u32 = 0x2;
    pub const MSG_TRUNC: u32 = 0x20;
    pub const MSG_DONTWAIT: u32 = 0x40;
    pub const MSG_WAITALL: u32 = 0x100;
    pub const MSG_NOSIGNAL: u32 = 0x4000;
    pub const MSG_CTRUNC: u32 = 0x8;
    pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;
}

mod cmsg;
mod direct;
mod unix_path;
use direct::{recv_direct, send_direct};
use msg::*;

/// Most bytes one `send`/`recv` copies per step (a stream call loops).
const CHUNK_BYTES: usize = crate::bounce::CHUNK_BYTES;

/// The socket at `fd`: `EBADF` if not open, `ENOTSOCK` if not a socket.
fn socket_file(p: &Process, fd: i32) -> Result<Arc<dyn FileLike>> {
    let file = p.fds.lock().get(fd)?;
    if file.as_socket().is_none() {
        return_errno!(Errno::ENOTSOCK);
    }
    Ok(file)
}

/// Whether `file` is a datagram socket (a send or receive is one datagram).
fn is_datagram(file: &Arc<dyn FileLike>) -> bool {
    let any = file.as_any();
    any.is::<UdpSocket>() || any.is::<UdpLiteSocket>()
}

fn sock(file: &Arc<dyn FileLike>) -> &dyn Socket {
    // `socket_file` checked it.
    file.as_socket().expect("checked by socket_file")
}

/// Runs `op`, waiting while it gives `EAGAIN` unless the fd or the call
/// (`MSG_DONTWAIT`) is non-blocking.
fn blocking<T>(
    p: &Process,
    file: &dyn FileLike,
    dontwait: bool,
    op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut op = op;
    if dontwait {
        let r = op();
        if r.as_ref().is_err_and(|e| e.errno() == Errno::EAGAIN) {
            super::fs::io::note_would_block(p);
        }
        r
    } else {
        retry_blocking(p, file, op)
    }
}

/// Reads a socket address argument of `len` bytes.
fn read_sockaddr(p: &Process, addr: u64, len: u32) -> Result<SockAddr> {
    let len = len as usize;
    if len > SOCKADDR_MAX_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let bytes = UserSliceRead::new(addr, len)?.read_to_vec(&*p.platform)?;
    SockAddr::parse(&bytes)
}

/// Checks an address-out pair (`addr`, `*len_ptr`) before the call.
fn check_sockaddr_out(p: &Process, addr: u64, len_ptr: u64) -> Result<Option<usize>> {
    if addr == 0 {
        return Ok(None);
    }
    let len = UserPtr::<i32>::new(len_ptr).read(&*p.platform)?;
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    UserSliceWrite::new(addr, len)?;
    Ok(Some(len))
}

/// Writes `sa` truncated to the user's length and stores the full length.
fn write_sockaddr(p: &Process, addr: u64, len_ptr: u64, room: usize, sa: &SockAddr) -> Result<()> {
    let bytes = sa.to_bytes();
    let n = bytes.len().min(room);
    UserSliceWrite::new(addr, n)?.write(&*p.platform, &bytes[..n])?;
    UserPtr::<i32>::new(len_ptr).write(&*p.platform, bytes.len() as i32)
}

fn install(p: &Process, file: Arc<dyn FileLike>, flags: u32) -> Result<usize> {
    Ok(p.fds.lock().insert(file, flags & SOCK_CLOEXEC != 0)? as usize)
}

/// `socket(domain, type, protocol)`: `AF_INET` stream (TCP) and datagram
/// (UDP, and UDP-Lite inside the guest), the same over `AF_INET6`,
/// `AF_UNIX` stream; others `EAFNOSUPPORT`.
pub fn sys_socket(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (domain, ty, protocol) = (a.u32(0), a.u32(1), a.i32(2));
    let flags = ty & !0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let kind = (ty & 0xf) as i32;
    let file: Arc<dyn FileLike> = match u16::try_from(domain).unwrap_or(u16::MAX) {
        AF_INET => match (kind, protocol) {
            (SOCK_STREAM, 0 | 6) => Arc::new(TcpSocket::new(p.net.clone(), flags)),
            (SOCK_DGRAM, 0 | 17) => Arc::new(UdpSocket::new(p.net.clone(), flags)),
            (SOCK_DGRAM, IPPROTO_UDPLITE) => Arc::new(UdpLiteSocket::new(&p.net, flags, Inet::V4)),
            (SOCK_STREAM | SOCK_DGRAM, _) => return_errno!(Errno::EPROTONOSUPPORT),
            _ => return_errno!(Errno::ESOCKTNOSUPPORT),
        },
        AF_UNIX => match (kind, protocol) {
            (SOCK_STREAM, 0) => Arc::new(UnixSocket::new(p.net.unix_names.clone(), flags)),
            (SOCK_STREAM, _) => return_errno!(Errno::EPROTONOSUPPORT),
            _ => return_errno!(Errno::ESOCKTNOSUPPORT),
        },
        AF_INET6 => match (kind, protocol) {
            (SOCK_STREAM, 0 | 6) => Arc::new(TcpSocket::new_v6(p.net.clone(), flags)),
            (SOCK_DGRAM, 0 | 17) => Arc::new(UdpSocket::new_v6(p.net.clone(), flags)),
            (SOCK_DGRAM, IPPROTO_UDPLITE) => Arc::new(UdpLiteSocket::new(&p.net, flags, Inet::V6)),
            (SOCK_STREAM | SOCK_DGRAM, _) => return_errno!(Errno::EPROTONOSUPPORT),
            _ => return_errno!(Errno::ESOCKTNOSUPPORT),
        },
        _ => return_errno!(Errno::EAFNOSUPPORT),
    };
    install(p, file, flags)
}

/// `socketpair(domain, type, protocol, sv)`: `AF_UNIX` `SOCK_STREAM`.
pub fn sys_socketpair(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (domain, ty, protocol) = (a.u32(0), a.u32(1), a.i32(2));
    let flags = ty & !0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return_errno!(Errno::EINVAL);
    }
    if domain != u32::from(AF_UNIX) {
        return_errno!(
            if domain == u32::from(AF_INET) || domain == u32::from(AF_INET6) {
                Errno::EOPNOTSUPP
            } else {
                Errno::EAFNOSUPPORT
            }
        );
    }
    if (ty & 0xf) as i32 != SOCK_STREAM {
        return_errno!(Errno::EOPNOTSUPP);
    }
    if protocol != 0 {
        return_errno!(Errno::EPROTONOSUPPORT);
    }
    let out = UserSliceWrite::new(a.u64(3), 8)?;
    let (x, y) = UnixSocket::pair(&p.net.unix_names, flags);
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let (fx, fy) = {
        let mut fds = p.fds.lock();
        let fx = fds.insert(Arc::new(x), cloexec)?;
        match fds.insert(Arc::new(y), cloexec) {
            Ok(fy) => (fx, fy),
            Err(e) => {
                let _ = fds.close(fx);
                return Err(e);
            }
        }
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&fx.to_le_bytes());
    bytes[4..].copy_from_slice(&fy.to_le_bytes());
    if let Err(e) = out.write(&*p.platform, &bytes) {
        let mut fds = p.fds.lock();
        let _ = fds.close(fx);
        let _ = fds.close(fy);
        return Err(e);
    }
    Ok(0)
}

/// `bind(fd, addr, addrlen)`
pub fn sys_bind(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let addr = read_sockaddr(p, a.u64(1), a.u32(2))?;
    match unix_path::bind(p, file.as_any(), &addr) {
        Some(r) => r?,
        None => sock(&file).bind(&addr)?,
    }
    Ok(0)
}

/// `listen(fd, backlog)`: the backlog is capped at [`SOMAXCONN`].
pub fn sys_listen(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let backlog = usize::try_from(a.i32(1)).map_or(SOMAXCONN, |b| b.min(SOMAXCONN));
    sock(&file).listen(backlog)?;
    Ok(0)
}

/// `connect(fd, addr, addrlen)`: a blocking socket waits for the
/// handshake; a non-blocking one returns `EINPROGRESS` and reports the
/// outcome through writability and `SO_ERROR`.
pub fn sys_connect(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let addr = read_sockaddr(p, a.u64(1), a.u32(2))?;
    let s = sock(&file);
    let result = unix_path::connect(p, file.as_any(), &addr).unwrap_or_else(|| s.connect(&addr));
    match result {
        Err(e) if e.errno() == Errno::EINPROGRESS && file.status_flags() & O_NONBLOCK == 0 => {
            retry_blocking(p, &*file, || match s.connect_result() {
                Err(e) if e.errno() == Errno::EINPROGRESS => Err(Errno::EAGAIN.into()),
                other => other,
            })?;
            Ok(0)
        }
        other => other.map(|()| 0),
    }
}

fn do_accept(p: &Process, a: &SyscallArgs, flags: u32) -> Result<usize> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let file = socket_file(p, a.i32(0))?;
    let room = check_sockaddr_out(p, a.u64(1), a.u64(2))?;
    let s = sock(&file);
    let (new, peer) = blocking(p, &*file, false, || s.accept(flags & SOCK_NONBLOCK != 0))?;
    if let Some(room) = room {
        write_sockaddr(p, a.u64(1), a.u64(2), room, &peer)?;
    }
    install(p, new, flags)
}

/// `accept(fd, addr, addrlen)`
pub fn sys_accept(p: &Process, a: &SyscallArgs) -> Result<usize> {
    do_accept(p, a, 0)
}

/// `accept4(fd, addr, addrlen, flags)`: `SOCK_NONBLOCK`, `SOCK_CLOEXEC`.
pub fn sys_accept4(p: &Process, a: &SyscallArgs) -> Result<usize> {
    do_accept(p, a, a.u32(3))
}

/// Sends `data`: a datagram in one piece, a stream (blocking) until all
/// of it is queued.
fn send_bytes(
    p: &Process,
    file: &Arc<dyn FileLike>,
    data: &[u8],
    to: Option<&SockAddr>,
    flags: u32,
    control: &[Cmsg],
) -> Result<usize> {
    let r = send_bytes_quietly(p, file, data, to, flags, control);
    if flags & MSG_NOSIGNAL != 0 {
        r
    } else {
        super::signal::sigpipe_on_epipe(p, r)
    }
}

/// [`send_bytes`] without the `SIGPIPE`. `control`: `sendmsg`'s control
/// messages, which datagram sockets read (a stream socket's `sendmsg`
/// reads none but `SCM_RIGHTS`, as Linux's TCP).
fn send_bytes_quietly(
    p: &Process,
    file: &Arc<dyn FileLike>,
    data: &[u8],
    to: Option<&SockAddr>,
    flags: u32,
    control: &[Cmsg],
) -> Result<usize> {
    if flags & MSG_OOB != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    let s = sock(file);
    let dontwait = flags & MSG_DONTWAIT != 0;
    let stream = !is_datagram(file);
    if !stream {
        return blocking(p, &**file, dontwait, || s.send_control(data, to, control));
    }
    let mut done = 0;
    loop {
        let chunk = &data[done..data.len().min(done + CHUNK_BYTES)];
        match blocking(p, &**file, dontwait, || s.send(chunk, to)) {
            Ok(n) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
        let nonblocking = dontwait || file.status_flags() & O_NONBLOCK != 0;
        if done >= data.len() || nonblocking {
            break;
        }
    }
    Ok(done)
}

/// Sends the bytes of `iovs` (user buffers): a datagram whole (`EMSGSIZE`
/// past the largest, gathered in a kernel buffer otherwise — `ENOMEM` if
/// it cannot be had), a stream [`CHUNK_BYTES`] at a time through one
/// bounce buffer, until a short send or an error after some progress.
fn send_user(
    p: &Process,
    file: &Arc<dyn FileLike>,
    iovs: &[(u64, usize)],
    to: Option<&SockAddr>,
    flags: u32,
    control: &[Cmsg],
) -> Result<usize> {
    let total = iovs.iter().fold(0usize, |t, &(_, l)| t.saturating_add(l));
    let datagram = is_datagram(file);
    if datagram && total > crate::net::udp::UDP_MAX_PAYLOAD {
        return_errno!(Errno::EMSGSIZE);
    }
    if file.copies_user() {
        let mut src = UserSource::new(&*p.platform, iovs)?;
        let r = send_direct(p, file, &mut src, to, flags, control);
        return if flags & MSG_NOSIGNAL != 0 {
            r
        } else {
            super::signal::sigpipe_on_epipe(p, r)
        };
    }
    // A datagram is at most UDP_MAX_PAYLOAD (checked above), less than a
    // chunk: it, or a stream send of one chunk, goes in one piece.
    if datagram || total <= CHUNK_BYTES {
        let mut data = p.bounce.take(total)?;
        let mut at = 0;
        for &(base, len) in iovs {
            UserSliceRead::new(base, len)?;
            p.platform.read_user(base, &mut data[at..at + len])?;
            at += len;
        }
        return send_bytes(p, file, &data, to, flags, control);
    }
    let mut buf = p.bounce.take(total)?;
    let mut done = 0;
    for &(base, len) in iovs {
        UserSliceRead::new(base, len)?;
        let mut at = 0;
        while at < len {
            let n = (len - at).min(buf.len());
            let sent = p
                .platform
                .read_user(base + at as u64, &mut buf[..n])
                .and_then(|()| send_bytes(p, file, &buf[..n], to, flags, control));
            match sent {
                Ok(k) => {
                    done += k;
                    at += k;
                    if k < n {
                        return Ok(done);
                    }
                }
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(done)
}

/// `sendto(fd, buf, len, flags, dest_addr, addrlen)`: `MSG_DONTWAIT`,
/// `MSG_NOSIGNAL`; `MSG_MORE` and the like are accepted and ignored.
pub fn sys_sendto(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let to = if a.u64(4) == 0 {
        None
    } else {
        Some(read_sockaddr(p, a.u64(4), a.u32(5))?)
    };
    let len = a.usize(2).min(isize::MAX as usize);
    UserSliceRead::new(a.u64(1), len)?;
    send_user(p, &file, &[(a.u64(1), len)], to.as_ref(), a.u32(3), &[])
}

/// What [`recv_bytes`] got: the bytes, how many, and the files that came
/// with them (`SCM_RIGHTS`).
type Got<'p> = (
    crate::bounce::Bounce<'p>,
    crate::net::socket::Received,
    crate::net::rights::Files,
);

/// Receives into a buffer of `len` bytes; `MSG_WAITALL` fills it on a
/// stream (stopping where files arrive, as Linux).
fn recv_bytes<'p>(
    p: &'p Process,
    file: &Arc<dyn FileLike>,
    len: usize,
    flags: u32,
) -> Result<Got<'p>> {
    if flags & MSG_OOB != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    let s = sock(file);
    let peek = flags & MSG_PEEK != 0;
    let dontwait = flags & MSG_DONTWAIT != 0;
    let mut buf = p.bounce.take(len)?;
    let (mut got, files) = blocking(p, &**file, dontwait, || s.recv_files(&mut buf, peek))?;
    let stream = !is_datagram(file);
    if stream && flags & MSG_WAITALL != 0 && !peek && files.is_empty() {
        while got.len > 0 && got.len < buf.len() {
            let at = got.len;
            match blocking(p, &**file, dontwait, || s.recv(&mut buf[at..], false)) {
                Ok(r) if r.len > 0 => got.len += r.len,
                _ => break,
            }
        }
        got.full_len = got.len;
    }
    buf.truncate(got.len);
    Ok((buf, got, files))
}

/// `recvfrom(fd, buf, len, flags, src_addr, addrlen)`: `MSG_PEEK`,
/// `MSG_DONTWAIT`, `MSG_WAITALL`, `MSG_TRUNC` (the datagram's real length).
pub fn sys_recvfrom(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let out = UserSliceWrite::new(a.u64(1), a.usize(2))?;
    let room = check_sockaddr_out(p, a.u64(4), a.u64(5))?;
    let flags = a.u32(3);
    let got = if file.copies_user() {
        let pieces = [(a.u64(1), a.usize(2))];
        recv_direct(p, &file, &mut UserSink::new(&*p.platform, &pieces)?, flags)?
    } else {
        let (data, got, _) = recv_bytes(p, &file, a.usize(2), flags)?;
        out.write(&*p.platform, &data)?;
        got
    };
    if let Some(room) = room {
        let from = match got.from {
            Some(f) => f,
            None => sock(&file).peer_addr().unwrap_or(SockAddr::Unspec),
        };
        write_sockaddr(p, a.u64(4), a.u64(5), room, &from)?;
    }
    Ok(if flags & MSG_TRUNC != 0 {
        got.full_len
    } else {
        got.len
    })
}

/// A `struct msghdr` (56 bytes on x86-64).
struct MsgHdr {
    name: u64,
    name_len: u32,
    iov: u64,
    iov_len: usize,
    control: u64,
    control_len: u64,
}

fn read_msghdr(p: &Process, addr: u64) -> Result<MsgHdr> {
    let b = UserSliceRead::new(addr, 56)?.read_to_vec(&*p.platform)?;
    let u64_at = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    Ok(MsgHdr {
        name: u64_at(0),
        name_len: u64_at(8) as u32,
        iov: u64_at(16),
        iov_len: usize::try_from(u64_at(24)).map_err(|_| Errno::EMSGSIZE)?,
        control: u64_at(32),
        control_len: u64_at(40),
    })
}

/// `sendmsg(fd, msg, flags)`: the iovecs are gathered into one send;
/// `SCM_RIGHTS` passes open files over an `AF_UNIX` stream (the data then
/// goes in one piece of at most 256 KiB, the files with its first byte);
/// `SCM_CREDENTIALS` is not supported (`EOPNOTSUPP`); IPv6 datagram
/// sockets read `IPV6_HOPLIMIT` and `IPV6_TCLASS` (`crate::net::ancillary`).
pub fn sys_sendmsg(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let m = read_msghdr(p, a.u64(1))?;
    let to = if m.name == 0 {
        None
    } else {
        Some(read_sockaddr(p, m.name, m.name_len)?)
    };
    let iovs = iovecs(p, m.iov, m.iov_len)?;
    let control = if m.control_len == 0 {
        Vec::new()
    } else {
        let len = usize::try_from(m.control_len).map_err(|_| Errno::ENOBUFS)?;
        if len > cmsg::MAX_CONTROL {
            return_errno!(Errno::ENOBUFS);
        }
        let bytes = UserSliceRead::new(m.control, len)?.read_to_vec(&*p.platform)?;
        cmsg::parse(&bytes)?
    };
    let fds = cmsg::rights(&control)?;
    if fds.is_empty() {
        return send_user(p, &file, &iovs, to.as_ref(), a.u32(2), &control);
    }
    let files = {
        let table = p.fds.lock();
        fds.iter()
            .map(|&fd| table.get(fd))
            .collect::<Result<Vec<_>>>()?
    };
    let total = iovs.iter().map(|&(_, l)| l).sum::<usize>().min(CHUNK_BYTES);
    let mut data = p.bounce.take(total)?;
    let mut at = 0;
    for &(base, len) in &iovs {
        let n = len.min(total - at);
        UserSliceRead::new(base, n)?;
        p.platform.read_user(base, &mut data[at..at + n])?;
        at += n;
    }
    let dontwait = a.u32(2) & MSG_DONTWAIT != 0;
    let s = sock(&file);
    let sent = blocking(p, &*file, dontwait, || s.send_files(&data, files.clone()));
    if a.u32(2) & MSG_NOSIGNAL != 0 {
        sent
    } else {
        super::signal::sigpipe_on_epipe(p, sent)
    }
}

/// `recvmsg(fd, msg, flags)`: scattered into the iovecs; files passed
/// with the data (`SCM_RIGHTS`) become new fds (close-on-exec with
/// `MSG_CMSG_CLOEXEC`) in one control message, as many as the control
/// buffer holds (the rest are closed and `MSG_CTRUNC` set); `MSG_TRUNC`
/// in `msg_flags` for a truncated datagram.
pub fn sys_recvmsg(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let hdr = a.u64(1);
    let m = read_msghdr(p, hdr)?;
    let iovs = iovecs(p, m.iov, m.iov_len)?;
    for &(base, len) in &iovs {
        UserSliceWrite::new(base, len)?;
    }
    let total: usize = iovs.iter().map(|&(_, l)| l).sum();
    let flags = a.u32(2);
    let (got, files) = if file.copies_user() {
        let mut out = UserSink::new(&*p.platform, &iovs)?;
        (recv_direct(p, &file, &mut out, flags)?, Vec::new())
    } else {
        let (data, got, files) = recv_bytes(p, &file, total, flags)?;
        let mut at = 0;
        for &(base, len) in &iovs {
            let n = len.min(data.len() - at);
            UserSliceWrite::new(base, n)?.write(&*p.platform, &data[at..at + n])?;
            at += n;
        }
        (got, files)
    };
    if m.name != 0 {
        let from = got
            .from
            .clone()
            .unwrap_or_else(|| sock(&file).peer_addr().unwrap_or(SockAddr::Unspec));
        let bytes = from.to_bytes();
        let n = bytes.len().min(m.name_len as usize);
        UserSliceWrite::new(m.name, n)?.write(&*p.platform, &bytes[..n])?;
        UserPtr::<u32>::new(hdr + 8).write(&*p.platform, bytes.len() as u32)?;
    }
    let room = if m.control == 0 {
        0
    } else {
        usize::try_from(m.control_len).unwrap_or(usize::MAX)
    };
    let (control_len, ctrunc) = if files.is_empty() {
        deliver_ancillary(p, &m, room, &got.ancillary)?
    } else {
        deliver_files(p, &m, room, files, flags)?
    };
    UserPtr::<u64>::new(hdr + 40).write(&*p.platform, control_len as u64)?;
    let mut msg_flags = if got.full_len > got.len { MSG_TRUNC } else { 0 };
    if ctrunc {
        msg_flags |= MSG_CTRUNC;
    }
    UserPtr::<i32>::new(hdr + 48).write(&*p.platform, msg_flags as i32)?;
    Ok(if flags & MSG_TRUNC != 0 {
        got.full_len
    } else {
        got.len
    })
}

/// Writes a datagram's IPv6 control messages (`IPV6_HOPLIMIT`,
/// `IPV6_TCLASS`) to `m`'s control buffer of `room` bytes, truncated as
/// Linux does: returns the `msg_controllen` to report and whether any
/// message was cut or left out (`MSG_CTRUNC`).
fn deliver_ancillary(
    p: &Process,
    m: &MsgHdr,
    room: usize,
    ancillary: &crate::net::ancillary::Ancillary,
) -> Result<(usize, bool)> {
    let messages = ancillary.messages();
    if messages.is_empty() {
        return Ok((0, false));
    }
    let list: Vec<(i32, i32, &[u8])> = messages.iter().map(|(l, t, d)| (*l, *t, &d[..])).collect();
    let (bytes, reported, truncated) = cmsg::put(&list, room);
    if !bytes.is_empty() {
        UserSliceWrite::new(m.control, bytes.len())?.write(&*p.platform, &bytes)?;
    }
    Ok((reported, truncated))
}

/// Installs received `files` as fds and writes their `SCM_RIGHTS`
/// message to `m`'s control buffer (`room` bytes): returns the
/// `msg_controllen` to report and whether files were dropped.
fn deliver_files(
    p: &Process,
    m: &MsgHdr,
    room: usize,
    files: crate::net::rights::Files,
    flags: u32,
) -> Result<(usize, bool)> {
    if files.is_empty() {
        return Ok((0, false));
    }
    let fit = cmsg::rights_room(room, files.len());
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    let mut fds = Vec::new();
    {
        let mut table = p.fds.lock();
        for file in files.iter().take(fit) {
            match table.insert(file.clone(), cloexec) {
                Ok(fd) => fds.push(fd),
                // No fd left (`RLIMIT_NOFILE`): the rest are dropped.
                Err(_) => break,
            }
        }
    }
    let dropped = fds.len() < files.len();
    if fds.is_empty() {
        return Ok((0, dropped));
    }
    let (bytes, reported) = cmsg::encode_rights(&fds, room);
    UserSliceWrite::new(m.control, bytes.len())?.write(&*p.platform, &bytes)?;
    Ok((reported, dropped))
}

/// `shutdown(fd, how)`
pub fn sys_shutdown(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    sock(&file).shutdown(Shutdown::from_how(a.i32(1))?)?;
    Ok(0)
}

fn name_syscall(p: &Process, a: &SyscallArgs, peer: bool) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let room = UserPtr::<i32>::new(a.u64(2)).read(&*p.platform)?;
    let room = usize::try_from(room).map_err(|_| Errno::EINVAL)?;
    let s = sock(&file);
    let sa = if peer {
        s.peer_addr()?
    } else {
        s.local_addr()?
    };
    write_sockaddr(p, a.u64(1), a.u64(2), room, &sa)?;
    Ok(0)
}

/// `getsockname(fd, addr, addrlen)`
pub fn sys_getsockname(p: &Process, a: &SyscallArgs) -> Result<usize> {
    name_syscall(p, a, false)
}

/// `getpeername(fd, addr, addrlen)`
pub fn sys_getpeername(p: &Process, a: &SyscallArgs) -> Result<usize> {
    name_syscall(p, a, true)
}

/// Longest option value read.
const OPTION_MAX_BYTES: usize = 256;

/// `setsockopt(fd, level, name, value, len)`: see each socket kind for
/// the options it keeps; unknown ones give `ENOPROTOOPT`.
pub fn sys_setsockopt(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let len = a.u32(4) as usize;
    if len > OPTION_MAX_BYTES {
        return_errno!(Errno::EINVAL);
    }
    let value = UserSliceRead::new(a.u64(3), len)?.read_to_vec(&*p.platform)?;
    sock(&file).set_option(a.i32(1), a.i32(2), &value)?;
    Ok(0)
}

/// `getsockopt(fd, level, name, value, len)`: the value truncated to
/// `*len`, which becomes the length written.
pub fn sys_getsockopt(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = socket_file(p, a.i32(0))?;
    let len_ptr = UserPtr::<i32>::new(a.u64(4));
    let room = usize::try_from(len_ptr.read(&*p.platform)?).map_err(|_| Errno::EINVAL)?;
    let value = sock(&file).get_option(a.i32(1), a.i32(2))?;
    let n = value.len().min(room);
    UserSliceWrite::new(a.u64(3), n)?.write(&*p.platform, &value[..n])?;
    len_ptr.write(&*p.platform, n as i32)?;
    Ok(0)
}

#[cfg(test)]
mod tests;
