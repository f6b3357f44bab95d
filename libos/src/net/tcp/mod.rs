//! [`TcpSocket`]: an `AF_INET` or `AF_INET6` `SOCK_STREAM` socket over
//! smoltcp (the family's part is [`Inet`](super::inet::Inet)).
//!
//! A socket is unbound, bound (a port taken in the [`PortTable`]), a
//! listener (a pool of smoltcp sockets in the stack, see
//! `Listener` in `super::stack`), or a connection (one smoltcp
//! socket on the interface its peer is reached through). smoltcp does not
//! say why a connection ended: a connection that reaches `Closed` before
//! this side sent its FIN was reset (`ECONNREFUSED` while connecting,
//! `ECONNRESET` after), since an orderly end needs both FINs.
//!
//! - `state`: [`TcpSocket`], its phases, how a connection's end is read,
//!   and what dropping it frees.
//! - `establish`: `bind`, `listen`, `accept`, `connect`.
//! - `io`: the send and receive paths and `shutdown`.
//! - `ring`: the copies between smoltcp's ring buffers and user memory.
//! - `options`: `IPPROTO_TCP` ([`opt`]) and the other levels' options.
//! - `file`: the [`Socket`](super::Socket) and
//!   [`FileLike`](crate::fd::FileLike) impls: routing to the above, and
//!   readiness for `poll` and `epoll`.
//!
//! [`PortTable`]: super::port::PortTable

mod establish;
mod file;
mod io;
mod options;
mod ring;
mod state;

pub use options::opt;
pub use state::{TCP_BUFFER_BYTES, TcpSocket};
