//! Networking: sockets over smoltcp.
//!
//! - [`device`]: [`NetDevice`], the network card (the kernel implements it
//!   for virtio-net), and its smoltcp adapter, which lets smoltcp write
//!   frames to send longer than the copybreak in the card's own buffers
//!   when the card lends them (natively) and copies every other frame.
//! - [`config`]: [`NetConfig`], the external interface's addresses
//!   (QEMU user networking by default).
//! - [`counters`]: [`counters::NetCounters`], what the device path counts
//!   (retransmissions, a full transmit queue, receive errors).
//! - [`stack`]: [`NetStack`], loopback plus the external interface, driven
//!   by [`NetStack::poll`] from the kernel's timer tick and from blocking
//!   waits.
//! - [`port`]: bound ports, ephemeral ports, `EADDRINUSE`.
//! - [`inet`]: `AF_INET` and `AF_INET6` (dual stack, v4-mapped
//!   addresses, `IPPROTO_IPV6` options) for the TCP and UDP sockets.
//! - `datagram`: what the UDP ([`udp`]) and UDP-Lite sockets share: their
//!   addresses, shutdowns, send checks and the options of the levels both
//!   answer.
//! - [`udplite`]: [`UdpLiteSocket`], UDP-Lite (`IPPROTO_UDPLITE`) inside
//!   the guest, over the LibOS's own transport ([`udplite_table`]: its
//!   port space and the receive queues), as smoltcp has no UDP-Lite.
//! - [`ancillary`]: RFC 3542 ancillary data of IPv6 datagram sockets (the
//!   hop limit and traffic class each datagram carries).
//! - `sockets`: an interface's smoltcp sockets, with idle connections
//!   parked out of smoltcp's walks (`loopback`: the loopback device that
//!   lets the stack see a packet's connection before smoltcp takes it, and
//!   carries the RFC 3542 values in the IPv6 header).
//! - `arrivals`: when each connection's unread data began arriving, for
//!   `epoll`'s ready order.
//! - [`offload`]: TCP checksums and segmentation left to the card: the
//!   pseudo-header sum a frame carries for it, and the `virtio_net_hdr`
//!   that says what to finish.
//! - [`virtq`]: when a virtio device wants a notification (the split
//!   virtqueue's event-index rule), for the kernel's driver.
//! - [`virtio_pci`]: where a virtio-pci function keeps its structures,
//!   read from its capability list and checked against its BARs, for the
//!   kernel's PCI transport.
//!
//! The socket file kinds and their syscalls (`crate::syscall::net`)
//! follow the pattern of `crate::ipc`: operations never block, they fail
//! with `EAGAIN`, and the syscall layer waits through the platform's
//! `Blocker`.

pub mod addr;
pub mod ancillary;
mod arrivals;
pub mod config;
pub mod counters;
mod datagram;
pub mod device;
pub mod inet;
mod loopback;
pub mod offload;
pub mod port;
pub mod rights;
pub mod socket;
pub(crate) mod sockets;
pub mod stack;
pub mod tcp;
pub mod udp;
pub mod udplite;
pub mod udplite_table;
pub mod unix;
pub mod virtio_pci;
pub mod virtq;

#[cfg(test)]
pub(crate) mod testdev;

pub use addr::SockAddr;
pub use config::NetConfig;
pub use device::{COPYBREAK, NetDevice};
pub use socket::Socket;
pub use stack::NetStack;
pub use tcp::TcpSocket;
pub use udp::UdpSocket;
pub use udplite::UdpLiteSocket;
pub use unix::UnixSocket;
