//! TCP and UDP for a linked application, over the kernel's network stack (smoltcp
//! on the virtio-net card, plus loopback), the stack the Linux-ABI mode's
//! sockets use.
//!
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`] block the calling thread (other
//! threads run meanwhile) as `std::net`'s do; the `try_` calls never block
//! and fail with `EAGAIN` instead, and [`TcpStream::readiness`] tells which
//! would succeed, for event loops. The card's address is QEMU user
//! networking's guest address (10.0.2.15/24); `cloister run -p HOST:GUEST`
//! forwards the host's 127.0.0.1:HOST to port GUEST.

use alloc::sync::Arc;
use core::net::{Ipv4Addr, SocketAddrV4};

use libos::fd::{FileLike, PollEvents};
use libos::net::socket::{IPPROTO_TCP, int_bytes};
use libos::net::tcp::opt::TCP_NODELAY;
use libos::net::{NetConfig, NetStack, SockAddr, Socket, TcpSocket};

use super::{Errno, Result};

static STACK: spin::Once<Arc<NetStack>> = spin::Once::new();

/// Builds the stack on the card the boot found (loopback only without
/// one).
pub(super) fn init() {
    stack();
}

fn stack() -> &'static Arc<NetStack> {
    STACK.call_once(|| {
        let platform = super::state().platform.clone();
        let mut seed = [0u8; 8];
        libos::random::Csprng::fill_bytes(&*platform, &mut seed);
        let config = NetConfig {
            random_seed: u64::from_le_bytes(seed),
            ..NetConfig::default()
        };
        Arc::new(NetStack::new(crate::net::device(), config, platform))
    })
}

/// Drives the stack: frames in, frames out, TCP timers. When a socket may
/// have changed, every waiting thread re-checks (another thread's frames
/// may have arrived in this poll).
pub fn poll() {
    if stack().poll() {
        crate::task::bump_epoch();
    }
}

/// Blocks until `file` shows one of `want` (or an error or hang-up),
/// driving the stack on each check; returns at the stack's next timer too,
/// so the caller retries.
fn wait_for(file: &dyn FileLike, want: PollEvents) {
    let net = stack();
    let any = want | PollEvents::ERR | PollEvents::HUP;
    crate::task::block_until(
        &mut || {
            poll();
            file.poll().intersects(any)
        },
        net.poll_at(),
    );
}

/// Runs `op` until it does not fail with `EAGAIN`, waiting for `want`
/// between tries.
fn blocking<T>(
    file: &dyn FileLike,
    want: PollEvents,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    loop {
        let result = op();
        // As after a Linux program's system call: what this changed (room
        // in a queue, a frame sent) may let other threads go on.
        crate::task::bump_epoch();
        match result {
            Err(e) if e.errno() == Errno::EAGAIN => wait_for(file, want),
            other => return other,
        }
    }
}

fn socket_of(file: &dyn FileLike) -> Result<&dyn Socket> {
    file.as_socket().ok_or_else(|| Errno::ENOTSOCK.into())
}

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    file: Arc<TcpSocket>,
}

impl TcpListener {
    /// Listens on `port` of every address (0: a free port); `EADDRINUSE`
    /// if taken.
    pub fn bind(port: u16) -> Result<Self> {
        Self::bind_addr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    }

    /// Listens on `addr`.
    pub fn bind_addr(addr: SocketAddrV4) -> Result<Self> {
        let file = Arc::new(TcpSocket::new(stack().clone(), 0));
        file.bind(&SockAddr::Inet(addr))?;
        file.listen(128)?;
        Ok(Self { file })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddrV4> {
        self.file.local_addr()?.inet()
    }

    /// Waits for a connection; returns it and the peer's address.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddrV4)> {
        let file: &dyn FileLike = &*self.file;
        blocking(file, PollEvents::IN, || self.try_accept())
    }

    /// A waiting connection, or `EAGAIN`.
    pub fn try_accept(&self) -> Result<(TcpStream, SocketAddrV4)> {
        let (file, peer) = self.file.accept(true)?;
        Ok((TcpStream { file }, peer.inet()?))
    }

    /// Whether a connection is waiting ([`TcpListener::try_accept`] would
    /// succeed).
    pub fn is_ready(&self) -> bool {
        poll();
        self.file.poll().contains(PollEvents::IN)
    }
}

/// Which operations on a stream would not block now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Data (or the end of the stream) can be read.
    pub readable: bool,
    /// There is room to write.
    pub writable: bool,
    /// The peer closed or the connection failed.
    pub hang_up: bool,
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream {
    file: Arc<dyn FileLike>,
}

impl TcpStream {
    /// Connects to `addr` and waits for the handshake.
    pub fn connect(addr: SocketAddrV4) -> Result<Self> {
        let sock = Arc::new(TcpSocket::new(stack().clone(), 0));
        let file: Arc<dyn FileLike> = sock.clone();
        match sock.connect(&SockAddr::Inet(addr)) {
            Ok(()) => {}
            Err(e) if e.errno() == Errno::EINPROGRESS => {
                blocking(&*file, PollEvents::OUT, || {
                    sock.connect_result().map_err(|e| {
                        if e.errno() == Errno::EINPROGRESS {
                            Errno::EAGAIN.into()
                        } else {
                            e
                        }
                    })
                })?;
            }
            Err(e) => return Err(e),
        }
        Ok(Self { file })
    }

    /// Reads what has arrived into `buf`, waiting for at least one byte;
    /// 0 at the end of the stream.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        blocking(&*self.file, PollEvents::IN, || self.try_read(buf))
    }

    /// Reads what has arrived, or `EAGAIN`.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize> {
        self.file.read(buf)
    }

    /// Writes some of `buf`, waiting for room; returns how much.
    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        blocking(&*self.file, PollEvents::OUT, || self.try_write(buf))
    }

    /// Writes what fits now, or `EAGAIN`.
    pub fn try_write(&self, buf: &[u8]) -> Result<usize> {
        self.file.write(buf)
    }

    /// Writes all of `buf`.
    pub fn write_all(&self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = buf.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Which operations would not block now.
    pub fn readiness(&self) -> Readiness {
        poll();
        let ev = self.file.poll();
        Readiness {
            readable: ev.contains(PollEvents::IN),
            writable: ev.contains(PollEvents::OUT),
            hang_up: ev.intersects(PollEvents::HUP | PollEvents::ERR),
        }
    }

    /// Turns Nagle's algorithm off (`true`: small writes go out at once),
    /// as request/response servers want.
    pub fn set_nodelay(&self, on: bool) -> Result<()> {
        socket_of(&*self.file)?.set_option(IPPROTO_TCP, TCP_NODELAY, &int_bytes(i32::from(on)))
    }

    /// Ends the sending direction (the peer reads the end of the stream).
    pub fn shutdown_write(&self) -> Result<()> {
        socket_of(&*self.file)?.shutdown(libos::net::socket::Shutdown::from_how(1)?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddrV4> {
        socket_of(&*self.file)?.peer_addr()?.inet()
    }
}

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    file: Arc<libos::net::UdpSocket>,
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: a free port).
    pub fn bind(addr: SocketAddrV4) -> Result<Self> {
        let file = Arc::new(libos::net::UdpSocket::new(stack().clone(), 0));
        file.bind(&SockAddr::Inet(addr))?;
        Ok(Self { file })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> Result<SocketAddrV4> {
        self.file.local_addr()?.inet()
    }

    /// Sends `buf` as one datagram to `to`; returns its length.
    pub fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> Result<usize> {
        let file: &dyn FileLike = &*self.file;
        blocking(file, PollEvents::OUT, || {
            self.file.send(buf, Some(&SockAddr::Inet(to)))
        })
    }

    /// Waits for a datagram; copies what fits of it into `buf` (the rest
    /// is dropped, as on Linux) and returns the bytes copied and the
    /// sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4)> {
        let file: &dyn FileLike = &*self.file;
        blocking(file, PollEvents::IN, || self.try_recv_from(buf))
    }

    /// A datagram that has arrived, or `EAGAIN`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4)> {
        let got = self.file.recv(buf, false)?;
        let from = got.from.ok_or(Errno::EINVAL)?.inet()?;
        Ok((got.len, from))
    }
}
