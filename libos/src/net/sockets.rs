//! [`Sockets`]: one interface's smoltcp sockets, split so that polling
//! visits only the sockets that may have something to do.
//!
//! smoltcp's `Interface` walks its whole `SocketSet` on every egress pass,
//! on every `poll_at`, and for every received packet (to find the socket
//! it is for); so every poll costs in proportion to the connections open,
//! idle or not. Here an interface has two sets: `active`, which smoltcp
//! polls, and `parked`, which it never sees. A TCP connection is parked
//! when smoltcp has nothing to do for it until a packet arrives
//! (established or close-wait, and its own `poll_at` — asked of smoltcp
//! with the socket alone in a one-slot set — is "on ingress": nothing to
//! send, no retransmission, delayed-ACK, keep-alive or timeout timer). It
//! then changes only when
//! - a packet arrives for it: the stack looks at the next packet before
//!   smoltcp takes it and calls [`Sockets::unpark_flow`] with its
//!   connection (local, remote), found in a map, or
//! - the program uses it: [`Sockets::get_mut`] moves it back first
//!   ([`Sockets::get`] reads it where it is).
//!
//! Moving a socket between sets changes its smoltcp handle, so the rest
//! of the stack holds a [`SocketHandle`] of this module, which stays.
//! Parking is only enabled where the stack can see packets before smoltcp
//! does (the loopback interfaces).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketHandle as SetHandle, SocketSet};
use smoltcp::socket::{AnySocket, Socket, tcp};
use smoltcp::time::Instant;

use super::arrivals::Flow;

/// A socket of a [`Sockets`]; stays the same while it moves between sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SocketHandle(usize);

impl core::fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a socket is.
#[derive(Debug, Clone, Copy)]
enum Place {
    Active(SetHandle),
    /// Parked, with its connection (the key in `Sockets::by_flow`).
    Parked(SetHandle, Flow),
}

/// An interface's sockets: those smoltcp polls and those it need not.
pub(crate) struct Sockets {
    active: SocketSet<'static>,
    parked: SocketSet<'static>,
    /// Holds one socket while smoltcp is asked when it needs polling.
    probe: SocketSet<'static>,
    /// Indexed by [`SocketHandle`]; `None`: free.
    places: Vec<Option<Place>>,
    free: Vec<usize>,
    /// The [`SocketHandle`] of each socket in `active`.
    owner: BTreeMap<SetHandle, usize>,
    /// Parked sockets by connection (local, remote).
    by_flow: BTreeMap<Flow, usize>,
    parking: bool,
    /// Scratch list of parking candidates (kept to reuse its memory).
    candidates: Vec<SetHandle>,
}

impl core::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sockets")
            .field("active", &self.owner.len())
            .field("parked", &self.by_flow.len())
            .finish_non_exhaustive()
    }
}

impl Sockets {
    /// An empty set; idle connections are parked only if `parking`.
    pub(crate) fn new(parking: bool) -> Self {
        Self {
            active: SocketSet::new(Vec::new()),
            parked: SocketSet::new(Vec::new()),
            probe: SocketSet::new(Vec::new()),
            places: Vec::new(),
            free: Vec::new(),
            owner: BTreeMap::new(),
            by_flow: BTreeMap::new(),
            parking,
            candidates: Vec::new(),
        }
    }

    /// Adds a socket (to the polled set).
    pub(crate) fn add<T: AnySocket<'static>>(&mut self, socket: T) -> SocketHandle {
        let at = self.active.add(socket);
        let place = Some(Place::Active(at));
        let i = match self.free.pop() {
            Some(i) => {
                self.places[i] = place;
                i
            }
            None => {
                self.places.push(place);
                self.places.len() - 1
            }
        };
        self.owner.insert(at, i);
        SocketHandle(i)
    }

    fn place(&self, h: SocketHandle) -> Place {
        match self.places.get(h.0).copied().flatten() {
            Some(p) => p,
            None => panic!("socket handle {h} does not refer to a socket"),
        }
    }

    /// Removes a socket and returns it.
    pub(crate) fn remove(&mut self, h: SocketHandle) -> Socket<'static> {
        let socket = match self.place(h) {
            Place::Active(at) => {
                self.owner.remove(&at);
                self.active.remove(at)
            }
            Place::Parked(at, flow) => {
                self.by_flow.remove(&flow);
                self.parked.remove(at)
            }
        };
        self.places[h.0] = None;
        self.free.push(h.0);
        socket
    }

    /// Socket `h`, to read (it stays where it is).
    pub(crate) fn get<T: AnySocket<'static>>(&self, h: SocketHandle) -> &T {
        match self.place(h) {
            Place::Active(at) => self.active.get(at),
            Place::Parked(at, _) => self.parked.get(at),
        }
    }

    /// Socket `h`, to change: a parked socket goes back to the polled set
    /// first (what the caller does may give it something to send).
    pub(crate) fn get_mut<T: AnySocket<'static>>(&mut self, h: SocketHandle) -> &mut T {
        let at = self.unpark(h);
        self.active.get_mut(at)
    }

    /// Moves `h` to the polled set if parked; returns its handle there.
    fn unpark(&mut self, h: SocketHandle) -> SetHandle {
        match self.place(h) {
            Place::Active(at) => at,
            Place::Parked(at, flow) => {
                self.by_flow.remove(&flow);
                let at = self.active.add(self.parked.remove(at));
                self.owner.insert(at, h.0);
                self.places[h.0] = Some(Place::Active(at));
                at
            }
        }
    }

    /// A packet of connection `flow` (local, remote) is about to be
    /// received: its socket, if parked, goes back to the polled set.
    pub(crate) fn unpark_flow(&mut self, flow: &Flow) {
        if let Some(&i) = self.by_flow.get(flow) {
            self.unpark(SocketHandle(i));
        }
    }

    /// The sockets smoltcp polls.
    pub(crate) fn active(&mut self) -> &mut SocketSet<'static> {
        &mut self.active
    }

    /// Whether smoltcp has no socket to poll.
    pub(crate) fn active_is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// How many sockets are parked.
    #[cfg(test)]
    pub(crate) fn parked_len(&self) -> usize {
        self.by_flow.len()
    }

    /// Every socket, polled or parked (for diagnostics).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketHandle, &Socket<'static>)> {
        let active = self
            .active
            .iter()
            .filter_map(|(at, s)| Some((SocketHandle(*self.owner.get(&at)?), s)));
        // A parked socket's connection does not change while it is parked.
        let parked = self.parked.iter().filter_map(|(_, s)| match s {
            Socket::Tcp(t) => Some((SocketHandle(*self.by_flow.get(&flow(t)?)?), s)),
            _ => None,
        });
        active.chain(parked)
    }

    /// Parks every polled connection that smoltcp has nothing to do for
    /// until a packet arrives (see the module docs). `iface` is the
    /// interface the sockets belong to.
    pub(crate) fn park_idle(&mut self, iface: &mut Interface, now: Instant) {
        if !self.parking {
            return;
        }
        let mut candidates = core::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(self.active.iter().filter_map(|(at, s)| match s {
            Socket::Tcp(t) if parkable(t) => Some(at),
            _ => None,
        }));
        for &at in &candidates {
            let Some(&i) = self.owner.get(&at) else {
                continue;
            };
            let socket = self.active.remove(at);
            self.owner.remove(&at);
            let probe = self.probe.add(socket);
            let idle = iface.poll_at(now, &self.probe).is_none();
            let socket = self.probe.remove(probe);
            let flow = match &socket {
                Socket::Tcp(t) => flow(t),
                _ => None,
            };
            let place = match flow {
                Some(flow) if idle && !self.by_flow.contains_key(&flow) => {
                    self.by_flow.insert(flow, i);
                    Place::Parked(self.parked.add(socket), flow)
                }
                _ => {
                    let at = self.active.add(socket);
                    self.owner.insert(at, i);
                    Place::Active(at)
                }
            };
            self.places[i] = Some(place);
        }
        self.candidates = candidates;
    }
}

/// A TCP socket's connection (local, remote), once it has one.
fn flow(t: &tcp::Socket) -> Option<Flow> {
    let (local, remote) = t.local_endpoint().zip(t.remote_endpoint())?;
    Some((local.into(), remote.into()))
}

/// Whether a TCP socket is in a state worth parking (the probe then
/// decides): a connection both sides have opened, with nothing queued
/// to send and no timers of its own configured.
fn parkable(t: &tcp::Socket) -> bool {
    matches!(t.state(), tcp::State::Established | tcp::State::CloseWait)
        && t.send_queue() == 0
        && t.keep_alive().is_none()
        && t.timeout().is_none()
}
