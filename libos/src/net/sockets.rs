//! [`Sockets`]: one interface's smoltcp sockets, split so that polling
//! visits only the sockets that may have something to do.
//!
//! smoltcp's `Interface` walks its whole `SocketSet` on every egress pass,
//! on every `poll_at`, and for every received packet (to find the socket
//! it is for); so every poll costs in proportion to the connections open,
//! idle or not. Here an interface's sockets are either in `active`, the
//! `SocketSet` smoltcp polls, or parked, kept aside where smoltcp never
//! looks. A TCP connection is parked
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
//! Parking starts only when more than [`PARK_ABOVE`] sockets are polled.
//! Moving a socket between sets changes its smoltcp handle, so the rest
//! of the stack holds a [`SocketHandle`] of this module, which stays.
//! Parking is only enabled where the stack can see packets before smoltcp
//! does (the loopback interfaces).

use alloc::boxed::Box;
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

/// Parking starts when more sockets than this are polled: a walk of a
/// few sockets costs less than probing, parking and unparking them (with
/// parking at any size, a loopback connect + accept with no other
/// connection open took about 9% longer; docs/PERFORMANCE.md).
pub(crate) const PARK_ABOVE: usize = 8;

/// Where a socket is.
#[derive(Debug)]
enum Place {
    Active(SetHandle),
    /// Parked, with its connection (the key in `Sockets::by_flow`). Kept
    /// here rather than in a second `SocketSet`, whose `add` looks for a
    /// free slot from the start: parking and unparking cost the same
    /// however many connections are parked.
    Parked(Box<Socket<'static>>, Flow),
}

/// An interface's sockets: those smoltcp polls and those it need not.
pub(crate) struct Sockets {
    active: SocketSet<'static>,
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

    fn place(&self, h: SocketHandle) -> &Place {
        match self.places.get(h.0) {
            Some(Some(p)) => p,
            _ => panic!("socket handle {h} does not refer to a socket"),
        }
    }

    /// Removes a socket and returns it.
    pub(crate) fn remove(&mut self, h: SocketHandle) -> Socket<'static> {
        let _ = self.place(h);
        let socket = match self.places[h.0].take() {
            Some(Place::Active(at)) => {
                self.owner.remove(&at);
                self.active.remove(at)
            }
            Some(Place::Parked(socket, flow)) => {
                self.by_flow.remove(&flow);
                *socket
            }
            None => unreachable!("checked above"),
        };
        self.free.push(h.0);
        socket
    }

    /// Socket `h`, to read (it stays where it is).
    pub(crate) fn get<T: AnySocket<'static>>(&self, h: SocketHandle) -> &T {
        match self.place(h) {
            Place::Active(at) => self.active.get(*at),
            Place::Parked(socket, _) => {
                T::downcast(socket).expect("handle refers to a socket of a wrong type")
            }
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
        if let Place::Active(at) = self.place(h) {
            return *at;
        }
        let Some(Place::Parked(socket, flow)) = self.places[h.0].take() else {
            unreachable!("checked above");
        };
        self.by_flow.remove(&flow);
        let at = self.active.add(*socket);
        self.owner.insert(at, h.0);
        self.places[h.0] = Some(Place::Active(at));
        at
    }

    /// Whether any socket is parked.
    pub(crate) fn any_parked(&self) -> bool {
        !self.by_flow.is_empty()
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

    /// The connections of the parked sockets.
    #[cfg(test)]
    pub(crate) fn parked_flows(&self) -> Vec<Flow> {
        self.by_flow.keys().copied().collect()
    }

    /// How many sockets smoltcp polls.
    #[cfg(test)]
    pub(crate) fn active_len(&self) -> usize {
        self.owner.len()
    }

    /// Every socket, polled or parked (for diagnostics).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketHandle, &Socket<'static>)> {
        let active = self
            .active
            .iter()
            .filter_map(|(at, s)| Some((SocketHandle(*self.owner.get(&at)?), s)));
        let parked = self
            .by_flow
            .values()
            .filter_map(|&i| match self.place(SocketHandle(i)) {
                Place::Parked(s, _) => Some((SocketHandle(i), &**s)),
                Place::Active(_) => None,
            });
        active.chain(parked)
    }

    /// Parks every polled connection that smoltcp has nothing to do for
    /// until a packet arrives (see the module docs). `iface` is the
    /// interface the sockets belong to.
    pub(crate) fn park_idle(&mut self, iface: &mut Interface, now: Instant) {
        if !self.parking || self.owner.len() <= PARK_ABOVE {
            return;
        }
        let mut candidates = core::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(self.active.iter().filter_map(|(at, s)| match s {
            Socket::Tcp(t) if parkable(t) => Some(at),
            _ => None,
        }));
        for &at in &candidates {
            let Some(i) = self.owner.remove(&at) else {
                continue;
            };
            let probe = self.probe.add(self.active.remove(at));
            let idle = iface.poll_at(now, &self.probe).is_none();
            let socket = self.probe.remove(probe);
            let flow = match &socket {
                Socket::Tcp(t) => flow(t),
                _ => None,
            };
            let place = match flow {
                Some(flow) if idle && !self.by_flow.contains_key(&flow) => {
                    self.by_flow.insert(flow, i);
                    Place::Parked(Box::new(socket), flow)
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
