//! [`DatagramState`]: what a UDP ([`super::udp`]) and a UDP-Lite
//! ([`super::udplite`]) socket keep alike and the rules they share — the
//! bound address and its port lease, the connected peer and the source
//! address `connect` chose, the shutdowns, the checks a send makes before
//! its transport takes the datagram, `getsockname`/`getpeername`, and the
//! options of the levels both answer (`SOL_SOCKET`, `IPPROTO_IP`,
//! `IPPROTO_IPV6`, the family's part being [`Inet`]).
//!
//! Each protocol file keeps what differs: where a datagram goes (one
//! smoltcp socket per interface for UDP, the LibOS's own
//! [`super::udplite_table`] for UDP-Lite), how one is received,
//! readiness, and its own option level (UDP-Lite's checksum coverage).

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use super::addr::SockAddr;
use super::ancillary::{Ancillary, Cmsg, Marks, SendControl};
use super::inet::Inet;
use super::socket::{
    CommonOptions, IPPROTO_IP, IPPROTO_IPV6, Received, SOCK_DGRAM, SOL_SOCKET, Shutdown, int_value,
};
use crate::error::{Errno, Result};
use crate::return_errno;

/// Receive and send buffer of a UDP or UDP-Lite socket, payload bytes
/// each (Linux's default `rmem_default`).
pub const UDP_BUFFER_BYTES: usize = 212_992;
/// Largest UDP (and UDP-Lite) payload over IPv4.
pub const UDP_MAX_PAYLOAD: usize = 65_507;

/// The state a datagram socket keeps under its lock, whatever carries
/// its datagrams.
#[derive(Debug)]
pub(super) struct DatagramState {
    /// The bound address (the port the lease holds), if bound.
    pub(super) local: Option<SocketAddr>,
    /// The port this socket owns in its port table: `(port, owner)`.
    pub(super) lease: Option<(u16, u64)>,
    /// The connected peer: the default destination and the only sender
    /// received from.
    pub(super) peer: Option<SocketAddr>,
    /// The source address `connect` chose for a socket bound to a
    /// wildcard (what `getsockname` then shows, as Linux).
    pub(super) source: Option<IpAddr>,
    pub(super) inet: Inet,
    pub(super) common: CommonOptions,
    pub(super) shut_rd: bool,
    pub(super) shut_wr: bool,
}

impl DatagramState {
    /// An unbound, unconnected socket of family `inet` with the default
    /// buffers.
    pub(super) fn new(inet: Inet) -> Self {
        Self {
            local: None,
            lease: None,
            peer: None,
            source: None,
            inet,
            common: CommonOptions::new((UDP_BUFFER_BYTES, UDP_BUFFER_BYTES)),
            shut_rd: false,
            shut_wr: false,
        }
    }

    /// What an unbound socket binds at its first `sendto`/`connect`: the
    /// family's wildcard, dual stack for `AF_INET6` without
    /// `IPV6_V6ONLY`; `None` when already bound.
    pub(super) fn implicit_bind(&self) -> Option<(SocketAddr, bool)> {
        let dual = self.inet.v6 && !self.inet.v6only;
        self.local
            .is_none()
            .then(|| (self.inet.unspecified(), dual))
    }

    /// `connect` to `AF_UNSPEC`: forgets the peer and the source chosen
    /// for it.
    pub(super) fn disconnect(&mut self) {
        self.peer = None;
        self.source = None;
    }

    /// Where a send of `len` bytes to `to` (else the connected peer) goes,
    /// and for an IPv6 destination its hop limit and traffic class
    /// (`control`'s, else the socket's). The checks come in Linux's order:
    /// `EPIPE` after `SHUT_WR`, the address (`EDESTADDRREQ` without one),
    /// `EMSGSIZE`, `EINVAL` for port 0, then the control messages. IPv6
    /// control messages are read for IPv6 destinations only: Linux sends
    /// to a v4-mapped address as IPv4, which has none of these.
    pub(super) fn destination(
        &self,
        to: Option<&SockAddr>,
        len: usize,
        control: &[Cmsg],
    ) -> Result<(SocketAddr, Option<Marks>)> {
        if self.shut_wr {
            return_errno!(Errno::EPIPE);
        }
        let dest = match to {
            Some(a) => self.inet.peer(a, true)?,
            None => self.peer.ok_or(Errno::EDESTADDRREQ)?,
        };
        if len > UDP_MAX_PAYLOAD {
            return_errno!(Errno::EMSGSIZE);
        }
        if dest.port() == 0 {
            return_errno!(Errno::EINVAL);
        }
        let marks = match dest.ip() {
            IpAddr::V6(_) => Some(self.inet.send_marks(SendControl::parse(control)?)),
            IpAddr::V4(_) => None,
        };
        Ok((dest, marks))
    }

    /// A receive after `SHUT_RD`: end of file at once, whatever is queued.
    pub(super) fn read_shut(&self) -> Option<Received> {
        self.shut_rd.then(|| Received {
            len: 0,
            full_len: 0,
            from: None,
            ancillary: Ancillary::default(),
        })
    }

    /// `shutdown`: `ENOTCONN` without a peer, as Linux.
    pub(super) fn shutdown(&mut self, how: Shutdown) -> Result<()> {
        if self.peer.is_none() {
            return_errno!(Errno::ENOTCONN);
        }
        self.shut_rd |= how.read;
        self.shut_wr |= how.write;
        Ok(())
    }

    /// `getsockname`: the bound address, with the source `connect` chose
    /// in place of a wildcard.
    pub(super) fn local_addr(&self) -> SockAddr {
        let mut local = self.local.unwrap_or(self.inet.unspecified());
        if let Some(ip) = self.source.filter(|_| local.ip().is_unspecified()) {
            local.set_ip(ip);
        }
        self.inet.user(local)
    }

    /// `getpeername`: `ENOTCONN` without a peer.
    pub(super) fn peer_addr(&self) -> Result<SockAddr> {
        match self.peer {
            Some(p) => Ok(self.inet.user(p)),
            None => return_errno!(Errno::ENOTCONN),
        }
    }

    /// `setsockopt` at the levels every datagram socket answers alike
    /// (`SOL_SOCKET`, `IPPROTO_IP`, `IPPROTO_IPV6`); `ENOPROTOOPT` at any
    /// other. The caller applies what the change means for its transport.
    pub(super) fn set_option(&mut self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        match level {
            SOL_SOCKET => self.common.set(name, value),
            IPPROTO_IP => match name {
                // IP_TOS, IP_TTL, IP_PKTINFO, IP_RECVERR, IP_MTU_DISCOVER:
                // accepted, not applied.
                1 | 2 | 8 | 10 | 11 => int_value(value).map(|_| ()),
                _ => return_errno!(Errno::ENOPROTOOPT),
            },
            // ENOPROTOOPT on an AF_INET socket.
            IPPROTO_IPV6 => {
                let bound = self.local.is_some();
                self.inet.set_datagram_option(name, value, bound)
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }

    /// `getsockopt` at `SOL_SOCKET` (for a socket of `protocol`) and
    /// `IPPROTO_IPV6`; `ENOPROTOOPT` at any other level.
    pub(super) fn get_option(&self, level: i32, name: i32, protocol: i32) -> Result<Vec<u8>> {
        match level {
            SOL_SOCKET => self
                .common
                .get(name, (self.inet.domain(), SOCK_DGRAM, protocol)),
            IPPROTO_IPV6 => self.inet.get_datagram_option(name),
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }
}

/// The control messages a datagram from `from` with `marks` (its IPv6
/// header's hop limit and traffic class, if known) gets on a socket with
/// `inet`'s options. IPv4 datagrams get none of these (Linux gives them
/// `IP_TTL`/`IP_TOS` instead, which are not supported), nor does one
/// whose marks are unknown.
pub(super) fn received_ancillary(inet: &Inet, from: SocketAddr, marks: Option<Marks>) -> Ancillary {
    marks
        .filter(|_| from.is_ipv6())
        .map(|m| inet.rfc3542.received(m))
        .unwrap_or_default()
}
