//! The faces of a [`TcpSocket`] the syscall layer sees: [`Socket`], whose
//! operations live in [`super::establish`] (bind, listen, accept,
//! connect), [`super::io`] (send, receive, shutdown) and
//! [`super::options`], and [`FileLike`]: `read`/`write`, readiness for
//! `poll`, `epoll`'s edges ([`FileLike::event_seq`]) and ready order
//! ([`FileLike::ready_stamp`]), and the socket `ioctl`s.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;

use smoltcp::socket::tcp::State;

use super::state::{Phase, TcpSocket, endpoint, refresh};
use super::{establish, io, options};
use crate::error::Errno;
use crate::error::Result;
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::Metadata;
use crate::ipc::events::{wants_input, wants_output};
use crate::net::addr::SockAddr;
use crate::net::ancillary::Cmsg;
use crate::net::socket::{
    Received, Shutdown, Socket, merge_nonblock, socket_ioctl, socket_metadata,
};
use crate::return_errno;
use crate::uio::{Sink, SliceSink, SliceSource, Source};

impl Socket for TcpSocket {
    fn bind(&self, addr: &SockAddr) -> Result<()> {
        establish::bind(self, addr)
    }

    fn listen(&self, backlog: usize) -> Result<()> {
        establish::listen(self, backlog)
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, SockAddr)> {
        establish::accept(self, nonblock)
    }

    fn connect(&self, addr: &SockAddr) -> Result<()> {
        establish::connect(self, addr)
    }

    fn connect_result(&self) -> Result<()> {
        establish::connect_result(self)
    }

    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize> {
        self.send_from(&mut SliceSource::new(buf), to, &[])
    }

    fn send_from(
        &self,
        src: &mut dyn Source,
        _to: Option<&SockAddr>,
        _control: &[Cmsg],
    ) -> Result<usize> {
        io::send_from(self, src)
    }

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received> {
        self.recv_into(&mut SliceSink::new(buf), peek)
    }

    fn recv_into(&self, out: &mut dyn Sink, peek: bool) -> Result<Received> {
        io::recv_into(self, out, peek)
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        io::shutdown(self, how)
    }

    fn local_addr(&self) -> Result<SockAddr> {
        let st = self.state.lock();
        Ok(st.inet.user(match &st.phase {
            Phase::Idle(b) => b.unwrap_or(st.inet.unspecified()),
            Phase::Listening { local, .. } => *local,
            Phase::Connected(c) => c.local,
        }))
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        let st = self.state.lock();
        match &st.phase {
            Phase::Connected(c) if !c.connecting && !c.reset => Ok(st.inet.user(c.remote)),
            _ => return_errno!(Errno::ENOTCONN),
        }
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        options::set_option(self, level, name, value)
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>> {
        options::get_option(self, level, name)
    }
}

impl FileLike for TcpSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv(buf, false).map(|r| r.len)
    }

    fn ready_stamp(&self) -> u64 {
        let st = self.state.lock();
        match &st.phase {
            Phase::Connected(conn) => {
                let flow = (conn.local, conn.remote);
                self.stack.with_lock(|inner| inner.arrivals.stamp(&flow))
            }
            Phase::Listening { id, .. } => {
                let id = *id;
                // The oldest connection waiting for accept.
                self.stack.with_lock(|inner| {
                    let Some(l) = inner.listeners.get(&id) else {
                        return 0;
                    };
                    let socks = l.sockets.clone();
                    socks
                        .iter()
                        .filter_map(|&(i, h)| {
                            let s = inner.tcp_ref(i, h);
                            if matches!(s.state(), State::Listen | State::SynReceived) {
                                return None;
                            }
                            let flow = (
                                endpoint(s.local_endpoint()?),
                                endpoint(s.remote_endpoint()?),
                            );
                            Some(inner.arrivals.stamp(&flow))
                        })
                        .filter(|&t| t != 0)
                        .min()
                        .unwrap_or(0)
                })
            }
            Phase::Idle(_) => 0,
        }
    }

    /// A connection: the stamp of its latest arrival (data, FIN, RST)
    /// for readers, room after a full send buffer for writers; a
    /// listener: the connections that finished their handshake.
    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        let st = self.state.lock();
        let theirs = match &st.phase {
            Phase::Connected(conn) => self.stack.with_lock(|inner| {
                let input = if wants_input(interest) {
                    inner.arrivals.latest(&(conn.local, conn.remote))
                } else {
                    0
                };
                let output = if wants_output(interest) {
                    let s = inner.tcp_ref(conn.iface, conn.handle);
                    self.space.seq(s.can_send())
                } else {
                    0
                };
                input.wrapping_add(output)
            }),
            Phase::Listening { id, .. } if wants_input(interest) => {
                let id = *id;
                self.stack.with_lock(|inner| inner.listener_events(id))
            }
            Phase::Listening { .. } | Phase::Idle(_) => 0,
        };
        Some(self.events.seq(interest).wrapping_add(theirs))
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.send(buf, None)
    }

    fn copies_user(&self) -> bool {
        true
    }

    fn read_user(&self, mem: &dyn crate::user::UserMemory, addr: u64, len: usize) -> Result<usize> {
        crate::net::socket::read_user(self, mem, addr, len)
    }

    fn write_user(
        &self,
        mem: &dyn crate::user::UserMemory,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        crate::net::socket::write_user(self, mem, addr, len)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(socket_metadata(self.ino))
    }

    fn poll(&self) -> PollEvents {
        let mut st = self.state.lock();
        match &mut st.phase {
            Phase::Idle(_) => PollEvents::OUT | PollEvents::WRNORM | PollEvents::HUP,
            Phase::Listening { id, .. } => {
                let id = *id;
                let ready = self.stack.with_lock(|inner| {
                    let Some(l) = inner.listeners.get(&id) else {
                        return false;
                    };
                    let socks = l.sockets.clone();
                    socks.iter().any(|&(i, h)| {
                        !matches!(
                            inner.tcp_ref(i, h).state(),
                            State::Listen | State::SynReceived
                        )
                    })
                });
                if ready {
                    PollEvents::IN | PollEvents::RDNORM
                } else {
                    PollEvents::empty()
                }
            }
            Phase::Connected(conn) => self.stack.with_lock(|inner| {
                let s = inner.tcp_ref(conn.iface, conn.handle);
                refresh(conn, s);
                let mut ev = PollEvents::empty();
                if conn.connecting {
                    return ev;
                }
                let eof = conn.reset || conn.shut_rd || !s.may_recv();
                if s.can_recv() || eof {
                    ev |= PollEvents::IN | PollEvents::RDNORM;
                }
                if s.can_send() || conn.reset || conn.shut_wr || !s.may_send() {
                    ev |= PollEvents::OUT | PollEvents::WRNORM;
                }
                if conn.error.is_some() {
                    ev |= PollEvents::ERR;
                }
                if conn.reset || (eof && (conn.shut_wr || !s.may_send())) {
                    ev |= PollEvents::HUP;
                }
                ev
            }),
        }
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        socket_ioctl(&self.flags, cmd, arg, || {
            self.on_conn(false, |_, s| Ok(s.recv_queue())).unwrap_or(0)
        })
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        merge_nonblock(&self.flags, flags);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_socket(&self) -> Option<&dyn Socket> {
        Some(self)
    }
}
