//! [`Socket`]: the operations every socket kind offers the syscall layer,
//! and the `SOL_SOCKET` options they share ([`CommonOptions`]).
//!
//! Like `read`/`write` on [`FileLike`], these never block: they fail with
//! `EAGAIN` (`EINPROGRESS` for a connection under way) and the syscall
//! layer waits through the platform's `Blocker` on a blocking socket.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::addr::SockAddr;
use crate::error::{Errno, Result};
use crate::fd::FileLike;
use crate::return_errno;

/// `SOL_SOCKET`
pub const SOL_SOCKET: i32 = 1;
/// `IPPROTO_IP`
pub const IPPROTO_IP: i32 = 0;
/// `IPPROTO_TCP`
pub const IPPROTO_TCP: i32 = 6;
/// `IPPROTO_UDP`
pub const IPPROTO_UDP: i32 = 17;
/// `IPPROTO_IPV6`
pub const IPPROTO_IPV6: i32 = 41;

/// `SOCK_STREAM`
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`
pub const SOCK_DGRAM: i32 = 2;

/// `SOL_SOCKET` option names.
#[allow(missing_docs, reason = "the names are Linux's; see socket(7)")]
pub mod so {
    pub const SO_DEBUG: i32 = 1;
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_TYPE: i32 = 3;
    pub const SO_ERROR: i32 = 4;
    pub const SO_DONTROUTE: i32 = 5;
    pub const SO_BROADCAST: i32 = 6;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_OOBINLINE: i32 = 10;
    pub const SO_LINGER: i32 = 13;
    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_RCVLOWAT: i32 = 18;
    pub const SO_SNDLOWAT: i32 = 19;
    pub const SO_RCVTIMEO: i32 = 20;
    pub const SO_SNDTIMEO: i32 = 21;
    pub const SO_ACCEPTCONN: i32 = 30;
    pub const SO_SNDBUFFORCE: i32 = 32;
    pub const SO_RCVBUFFORCE: i32 = 33;
    pub const SO_PROTOCOL: i32 = 38;
    pub const SO_DOMAIN: i32 = 39;
}
use so::*;

/// `shutdown` directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// `SHUT_RD` or `SHUT_RDWR`.
    pub read: bool,
    /// `SHUT_WR` or `SHUT_RDWR`.
    pub write: bool,
}

impl Shutdown {
    /// From `how` (`SHUT_RD` 0, `SHUT_WR` 1, `SHUT_RDWR` 2); `EINVAL` else.
    pub fn from_how(how: i32) -> Result<Self> {
        match how {
            0 => Ok(Self {
                read: true,
                write: false,
            }),
            1 => Ok(Self {
                read: false,
                write: true,
            }),
            2 => Ok(Self {
                read: true,
                write: true,
            }),
            _ => return_errno!(Errno::EINVAL),
        }
    }
}

/// What a receive produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The whole datagram's length (more than `len` when truncated).
    pub full_len: usize,
    /// The sender, for datagram sockets.
    pub from: Option<SockAddr>,
    /// The datagram's IPv6 control messages the socket asked for.
    pub ancillary: super::ancillary::Ancillary,
}

/// `read` of `sock` into user memory at `addr` (`len` bytes), straight
/// from its buffer: the [`FileLike::read_user`] of the sockets that copy
/// user memory themselves (TCP, UDP). A 0-byte read is 0 at once and
/// takes nothing, as Linux's `sock_read_iter`.
pub(crate) fn read_user(
    sock: &dyn Socket,
    mem: &dyn crate::user::UserMemory,
    addr: u64,
    len: usize,
) -> Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    let pieces = [(addr, len)];
    let mut out = crate::uio::UserSink::new(mem, &pieces)?;
    sock.recv_into(&mut out, false).map(|r| r.len)
}

/// `write` to `sock` from user memory, straight into its buffer (the
/// [`FileLike::write_user`] of TCP and UDP).
pub(crate) fn write_user(
    sock: &dyn Socket,
    mem: &dyn crate::user::UserMemory,
    addr: u64,
    len: usize,
) -> Result<usize> {
    let pieces = [(addr, len)];
    sock.send_from(&mut crate::uio::UserSource::new(mem, &pieces)?, None, &[])
}

/// The socket operations. Every socket kind is a [`FileLike`] too
/// (`read`/`write`/`poll`), reached through [`FileLike::as_socket`].
pub trait Socket: Send + Sync {
    /// `bind`
    fn bind(&self, addr: &SockAddr) -> Result<()>;
    /// `connect`: `Ok` when connected, `EINPROGRESS` while under way
    /// (then [`Socket::connect_result`] tells how it ended).
    fn connect(&self, addr: &SockAddr) -> Result<()>;
    /// After `EINPROGRESS` and writability: the outcome (`SO_ERROR`).
    fn connect_result(&self) -> Result<()> {
        Ok(())
    }
    /// `listen`
    fn listen(&self, _backlog: usize) -> Result<()> {
        return_errno!(Errno::EOPNOTSUPP)
    }
    /// `accept`: a new connection (with `O_NONBLOCK` if `nonblock`) and
    /// the peer's address; `EAGAIN` if none is waiting.
    fn accept(&self, _nonblock: bool) -> Result<(Arc<dyn FileLike>, SockAddr)> {
        return_errno!(Errno::EOPNOTSUPP)
    }
    /// `sendto`/`sendmsg`: `to` for datagram sockets.
    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize>;
    /// `sendmsg` with control messages other than `SCM_RIGHTS`: those
    /// of levels the socket does not read are ignored, as Linux's TCP
    /// and `AF_UNIX` sockets do; IPv6 datagram sockets read theirs
    /// ([`super::ancillary::SendControl`]).
    fn send_control(
        &self,
        buf: &[u8],
        to: Option<&SockAddr>,
        _control: &[super::ancillary::Cmsg],
    ) -> Result<usize> {
        self.send(buf, to)
    }
    /// `recvfrom`/`recvmsg`, optionally leaving the data queued (`MSG_PEEK`).
    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received>;
    /// [`Socket::recv`] into `out` (a kernel slice or user memory),
    /// straight from the socket's own buffer: `len` is what `out` took,
    /// and a stream keeps queued whatever a fault left uncopied (`EFAULT`
    /// if nothing was). Implemented by the kinds whose
    /// [`FileLike::copies_user`] is true (`EINVAL` elsewhere).
    fn recv_into(&self, _out: &mut dyn crate::uio::Sink, _peek: bool) -> Result<Received> {
        return_errno!(Errno::EINVAL)
    }
    /// [`Socket::send_control`] from `src`, straight into the socket's
    /// own buffer: a stream queues what `src` gave before a fault
    /// (`EFAULT` if nothing), a datagram is queued whole or not at all.
    /// Implemented by the kinds whose [`FileLike::copies_user`] is true.
    fn send_from(
        &self,
        _src: &mut dyn crate::uio::Source,
        _to: Option<&SockAddr>,
        _control: &[super::ancillary::Cmsg],
    ) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// `sendmsg` with `SCM_RIGHTS`: `buf` with open files attached. Only
    /// `AF_UNIX` streams carry files (`EINVAL` elsewhere, as Linux).
    fn send_files(&self, _buf: &[u8], _files: super::rights::Files) -> Result<usize> {
        return_errno!(Errno::EINVAL)
    }
    /// `recvmsg`: as [`Socket::recv`], with the files that came with the
    /// bytes (`SCM_RIGHTS`); none for sockets that cannot carry them.
    fn recv_files(&self, buf: &mut [u8], peek: bool) -> Result<(Received, super::rights::Files)> {
        self.recv(buf, peek).map(|r| (r, Vec::new()))
    }
    /// `shutdown`
    fn shutdown(&self, how: Shutdown) -> Result<()>;
    /// `getsockname`
    fn local_addr(&self) -> Result<SockAddr>;
    /// `getpeername` (`ENOTCONN` if none).
    fn peer_addr(&self) -> Result<SockAddr>;
    /// `setsockopt`
    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()>;
    /// `getsockopt`: the value's bytes.
    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>>;
}

/// Reads an `int` option value (`EINVAL` if shorter than 4 bytes).
pub fn int_value(value: &[u8]) -> Result<i32> {
    match value.get(..4) {
        Some(b) => Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => return_errno!(Errno::EINVAL),
    }
}

/// An `int` option value's bytes.
pub fn int_bytes(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Smallest and largest buffer a socket is given, in bytes.
pub const BUFFER_BYTES_RANGE: (usize, usize) = (4096, 4 << 20);

/// `SOL_SOCKET` options every kind keeps; kinds answer the ones with
/// kind-specific meaning (`SO_ERROR`, buffer sizes) themselves first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonOptions {
    /// `SO_REUSEADDR` (binding over `TIME_WAIT` connections is always allowed here).
    pub reuse_addr: bool,
    /// `SO_REUSEPORT`: sockets that all set it may share a port.
    pub reuse_port: bool,
    /// `SO_KEEPALIVE`
    pub keepalive: bool,
    /// `SO_BROADCAST` (stored only).
    pub broadcast: bool,
    /// `SO_LINGER`: `Some(seconds)` when on. On with 0 resets the
    /// connection at close; other values close normally without waiting.
    pub linger: Option<u32>,
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO` as given (stored, not applied).
    pub timeouts: [[u8; 16]; 2],
    /// The receive and send buffer sizes in bytes (what the socket gets).
    pub buffers: (usize, usize),
}

impl CommonOptions {
    /// Defaults with `buffers` bytes of receive and send buffer.
    pub fn new(buffers: (usize, usize)) -> Self {
        Self {
            reuse_addr: false,
            reuse_port: false,
            keepalive: false,
            broadcast: false,
            linger: None,
            timeouts: [[0; 16]; 2],
            buffers,
        }
    }

    /// Sets a `SOL_SOCKET` option; `ENOPROTOOPT` for unknown ones.
    pub fn set(&mut self, name: i32, value: &[u8]) -> Result<()> {
        let clamp = |v: i32| {
            usize::try_from(v)
                .unwrap_or(0)
                .clamp(BUFFER_BYTES_RANGE.0, BUFFER_BYTES_RANGE.1)
        };
        match name {
            SO_REUSEADDR => self.reuse_addr = int_value(value)? != 0,
            SO_REUSEPORT => self.reuse_port = int_value(value)? != 0,
            SO_KEEPALIVE => self.keepalive = int_value(value)? != 0,
            SO_BROADCAST => self.broadcast = int_value(value)? != 0,
            SO_SNDBUF | SO_SNDBUFFORCE => self.buffers.1 = clamp(int_value(value)?),
            SO_RCVBUF | SO_RCVBUFFORCE => self.buffers.0 = clamp(int_value(value)?),
            SO_LINGER => {
                let on = int_value(value)?;
                let secs = int_value(value.get(4..).unwrap_or(&[]))?;
                self.linger = (on != 0).then_some(secs.max(0) as u32);
            }
            SO_RCVTIMEO | SO_SNDTIMEO => {
                let Some(tv) = value.get(..16) else {
                    return_errno!(Errno::EINVAL);
                };
                self.timeouts[usize::from(name == SO_SNDTIMEO)].copy_from_slice(tv);
            }
            SO_DEBUG | SO_DONTROUTE | SO_OOBINLINE | SO_RCVLOWAT | SO_SNDLOWAT => {
                int_value(value)?;
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// Reads a `SOL_SOCKET` option for a socket of `sock_type`, `domain`
    /// and `protocol`; `ENOPROTOOPT` for unknown ones.
    pub fn get(
        &self,
        name: i32,
        (domain, sock_type, protocol): (u16, i32, i32),
    ) -> Result<Vec<u8>> {
        let int = |v: bool| Ok(int_bytes(i32::from(v)));
        match name {
            SO_REUSEADDR => int(self.reuse_addr),
            SO_REUSEPORT => int(self.reuse_port),
            SO_KEEPALIVE => int(self.keepalive),
            SO_BROADCAST => int(self.broadcast),
            SO_SNDBUF => Ok(int_bytes(self.buffers.1 as i32)),
            SO_RCVBUF => Ok(int_bytes(self.buffers.0 as i32)),
            SO_TYPE => Ok(int_bytes(sock_type)),
            SO_DOMAIN => Ok(int_bytes(i32::from(domain))),
            SO_PROTOCOL => Ok(int_bytes(protocol)),
            SO_ERROR => Ok(int_bytes(0)),
            SO_LINGER => {
                let mut v = int_bytes(i32::from(self.linger.is_some()));
                v.extend_from_slice(&(self.linger.unwrap_or(0) as i32).to_le_bytes());
                Ok(v)
            }
            SO_RCVTIMEO | SO_SNDTIMEO => {
                Ok(self.timeouts[usize::from(name == SO_SNDTIMEO)].to_vec())
            }
            SO_RCVLOWAT | SO_SNDLOWAT => Ok(int_bytes(1)),
            SO_DEBUG | SO_DONTROUTE | SO_OOBINLINE | SO_ACCEPTCONN => Ok(int_bytes(0)),
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }
}

/// `fstat` of a socket: `S_IFSOCK`, mode 0777, as Linux.
pub fn socket_metadata(ino: u64) -> crate::fs::Metadata {
    crate::fs::Metadata::unnamed(ino, crate::fs::InodeType::Socket, 0o777)
}

/// Keeps `O_NONBLOCK` from `flags` in `status`, the rest as it was.
pub fn merge_nonblock(status: &core::sync::atomic::AtomicU32, flags: u32) {
    use crate::fs::file::open_flags::O_NONBLOCK;
    use core::sync::atomic::Ordering;
    let old = status.load(Ordering::Relaxed);
    status.store(
        (old & !O_NONBLOCK) | (flags & O_NONBLOCK),
        Ordering::Relaxed,
    );
}

/// `ioctl` requests every socket answers: `FIONBIO` (the syscall layer
/// passes the flag as `arg`) and `FIONREAD`/`SIOCINQ` with `readable` bytes.
pub fn socket_ioctl(
    status: &core::sync::atomic::AtomicU32,
    cmd: u32,
    arg: u64,
    readable: impl FnOnce() -> usize,
) -> Result<crate::fd::IoctlReply> {
    use crate::fs::file::open_flags::O_NONBLOCK;
    use crate::fs::file::tty_ioctl::FIONBIO;
    const FIONREAD: u32 = 0x541b;
    match cmd {
        FIONBIO => {
            merge_nonblock(status, if arg != 0 { O_NONBLOCK } else { 0 });
            Ok(crate::fd::IoctlReply {
                out: Vec::new(),
                ret: 0,
            })
        }
        FIONREAD => Ok(crate::fd::IoctlReply {
            out: int_bytes(readable().min(i32::MAX as usize) as i32),
            ret: 0,
        }),
        _ => return_errno!(Errno::ENOTTY),
    }
}
