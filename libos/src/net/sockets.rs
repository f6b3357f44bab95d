//! [`Sockets`]: one interface's smoltcp sockets, split so that polling
//! visits only the sockets that may have something to do.
//!
//! smoltcp's `Interface` walks its whole `SocketSet` on every egress pass,
//! on every `poll_at`, and for every received packet (to find the socket
//! it is for); so every poll costs in proportion to the connections open,
//! idle or not. Here an interface's sockets are either in `active`, the
//! `SocketSet` smoltcp polls, or parked, kept aside where smoltcp never
//! looks. A TCP connection is parked when smoltcp has nothing to do for
//! it until a packet arrives or a timer of its own is at least
//! [`PARK_MIN_SLEEP`] away (established or close-wait, and its own
//! `poll_at` — asked of smoltcp with the socket alone in a one-slot set —
//! is "on ingress" or that far off: nothing to send, no retransmission or
//! delayed ACK due; a keep-alive timer, which Redis sets on every
//! connection, is minutes away). It then changes only when
//! - a packet arrives for it: the stack looks at the next packet before
//!   smoltcp takes it and calls [`Sockets::unpark_flow`] with its
//!   connection (local, remote), found in a map,
//! - the program uses it: [`Sockets::get_mut`] moves it back first
//!   ([`Sockets::get`] reads it where it is), or
//! - its timer is due: [`Sockets::begin_poll`] at the start of every poll
//!   moves it back, and [`Sockets::next_wake`] tells the stack's `poll_at`
//!   when that is.
//!
//! How soon: [`Parking`]. The loopback interfaces park a connection at
//! the first poll that finds it idle; the external one only once the
//! program and the network have left it alone for
//! [`Parking::EXTERNAL`]'s quarter second, looking every 100 ms. Parking
//! moves the socket (about a kilobyte) out of smoltcp's set and unparking
//! back, so a connection in use — a request every millisecond from a
//! benchmark's client — costs more to park at every idle moment than to
//! walk (measured: a Redis request 20,173 → 38,619 instructions with
//! parking at once on the external interface; docs/PERFORMANCE.md). The
//! loopback's own figure is the other way round: a benchmark opens 200
//! connections and then times connect + accept for a tenth of a second,
//! before any wait would have parked them (362 → 733 µs with the quarter
//! second there too).
//!
//! Parking starts only when more than [`PARK_ABOVE`] sockets are polled.
//! Moving a socket between sets changes its smoltcp handle, so the rest
//! of the stack holds a [`SocketHandle`] of this module, which stays.
//! Parking is only enabled where the stack can see packets before smoltcp
//! does: the loopback interfaces (their queue) and the external one (the
//! card's next frame, fetched ahead by `NicPhy::peek`).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketHandle as SetHandle, SocketSet};
use smoltcp::socket::{AnySocket, Socket, tcp};
use smoltcp::time::{Duration, Instant};

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

/// A connection whose own timer is due sooner than this stays polled: a
/// delayed ACK (10 ms) or a retransmission is not worth a park and an
/// unpark; a keep-alive probe (Linux's default 2 h, Redis's 5 min) is.
pub(crate) const PARK_MIN_SLEEP: Duration = Duration::from_millis(500);

/// When an interface parks idle connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parking {
    /// A connection is a candidate once neither the program nor a
    /// received packet has touched it for this long.
    pub(crate) after_idle: Duration,
    /// Candidates are looked for at most this often (a pass looks up
    /// every polled connection).
    pub(crate) pass_every: Duration,
}

impl Parking {
    /// The loopback interfaces: at every poll, as soon as idle.
    pub(crate) const LOOPBACK: Parking = Parking {
        after_idle: Duration::ZERO,
        pass_every: Duration::ZERO,
    };
    /// The external interface: untouched for a quarter second, looked
    /// for every 100 ms.
    pub(crate) const EXTERNAL: Parking = Parking {
        after_idle: Duration::from_millis(250),
        pass_every: Duration::from_millis(100),
    };
}

/// Where a socket is.
#[derive(Debug)]
enum Place {
    Active(SetHandle),
    /// Parked, with its connection (the key in `Sockets::by_flow`) and
    /// when its own timer is due (then also in `Sockets::wakes`). Kept
    /// here rather than in a second `SocketSet`, whose `add` looks for a
    /// free slot from the start: parking and unparking cost the same
    /// however many connections are parked.
    Parked(Box<Socket<'static>>, Flow, Option<Instant>),
}

/// An interface's sockets: those smoltcp polls and those it need not.
pub(crate) struct Sockets {
    active: SocketSet<'static>,
    /// Holds one socket while smoltcp is asked when it needs polling.
    probe: SocketSet<'static>,
    /// Indexed by [`SocketHandle`]; `None`: free.
    places: Vec<Option<Place>>,
    /// Indexed by [`SocketHandle`]: when the program or a packet last
    /// touched the socket (as of the poll then running).
    touched: Vec<Instant>,
    /// The time of the poll running or last run.
    now: Instant,
    /// No parking pass before this.
    next_pass: Instant,
    free: Vec<usize>,
    /// The [`SocketHandle`] of each socket in `active`.
    owner: BTreeMap<SetHandle, usize>,
    /// Parked sockets by connection (local, remote).
    by_flow: BTreeMap<Flow, usize>,
    /// Parked sockets with a timer, by when it is due.
    wakes: BTreeSet<(Instant, usize)>,
    parking: Parking,
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
    /// An empty set; idle connections are parked as `parking` says.
    pub(crate) fn new(parking: Parking) -> Self {
        Self {
            active: SocketSet::new(Vec::new()),
            probe: SocketSet::new(Vec::new()),
            places: Vec::new(),
            touched: Vec::new(),
            now: Instant::ZERO,
            next_pass: Instant::ZERO,
            free: Vec::new(),
            owner: BTreeMap::new(),
            by_flow: BTreeMap::new(),
            wakes: BTreeSet::new(),
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
                self.touched[i] = self.now;
                i
            }
            None => {
                self.places.push(place);
                self.touched.push(self.now);
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
            Some(Place::Parked(socket, flow, wake)) => {
                self.forget_parked(&flow, wake, h.0);
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
            Place::Parked(socket, ..) => {
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
        let at = match self.place(h) {
            Place::Active(at) => Some(*at),
            Place::Parked(..) => None,
        };
        self.touched[h.0] = self.now;
        if let Some(at) = at {
            return at;
        }
        let Some(Place::Parked(socket, flow, wake)) = self.places[h.0].take() else {
            unreachable!("checked above");
        };
        self.forget_parked(&flow, wake, h.0);
        let at = self.active.add(*socket);
        self.owner.insert(at, h.0);
        self.places[h.0] = Some(Place::Active(at));
        at
    }

    /// Takes parked socket `i` of `flow`, due at `wake`, out of the maps.
    fn forget_parked(&mut self, flow: &Flow, wake: Option<Instant>, i: usize) {
        self.by_flow.remove(flow);
        if let Some(t) = wake {
            self.wakes.remove(&(t, i));
        }
    }

    /// Starts a poll at `now`: moves every parked socket whose timer is
    /// due back to the polled set, so smoltcp serves the timer.
    pub(crate) fn begin_poll(&mut self, now: Instant) {
        self.now = now;
        while let Some(&(t, i)) = self.wakes.first() {
            if t > now {
                break;
            }
            self.unpark(SocketHandle(i));
        }
    }

    /// When the earliest timer of a parked socket is due.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.wakes.first().map(|&(t, _)| t)
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
                Place::Parked(s, ..) => Some((SocketHandle(i), &**s)),
                Place::Active(_) => None,
            });
        active.chain(parked)
    }

    /// Parks every polled connection that smoltcp has nothing to do for
    /// until a packet arrives (see the module docs). `iface` is the
    /// interface the sockets belong to.
    /// Inlined: the stack calls it at the end of every poll, and nearly
    /// every call ends at this check.
    #[inline]
    pub(crate) fn park_idle(&mut self, iface: &mut Interface, now: Instant) {
        if self.owner.len() > PARK_ABOVE && now >= self.next_pass {
            self.park_pass(iface, now, self.parking);
        }
    }

    /// [`Self::park_idle`]'s pass over the polled connections.
    fn park_pass(&mut self, iface: &mut Interface, now: Instant, parking: Parking) {
        self.next_pass = now + parking.pass_every;
        let mut candidates = core::mem::take(&mut self.candidates);
        candidates.clear();
        let (owner, touched) = (&self.owner, &self.touched);
        // The loopback's rule (no wait) needs no look-up.
        let untouched = |at: &SetHandle| {
            parking.after_idle == Duration::ZERO
                || owner
                    .get(at)
                    .and_then(|&i| touched.get(i))
                    .is_some_and(|&t| t + parking.after_idle <= now)
        };
        candidates.extend(self.active.iter().filter_map(|(at, s)| match s {
            Socket::Tcp(t) if parkable(t) && untouched(&at) => Some(at),
            _ => None,
        }));
        for &at in &candidates {
            let Some(i) = self.owner.remove(&at) else {
                continue;
            };
            let probe = self.probe.add(self.active.remove(at));
            // `None`: nothing until a packet comes; else its timer.
            let wake = iface.poll_at(now, &self.probe);
            let idle = wake.is_none_or(|t| t >= now + PARK_MIN_SLEEP);
            let socket = self.probe.remove(probe);
            let flow = match &socket {
                Socket::Tcp(t) => flow(t),
                _ => None,
            };
            let place = match flow {
                Some(flow) if idle && !self.by_flow.contains_key(&flow) => {
                    self.by_flow.insert(flow, i);
                    if let Some(t) = wake {
                        self.wakes.insert((t, i));
                    }
                    Place::Parked(Box::new(socket), flow, wake)
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
/// decides, its timers included): a connection both sides have opened,
/// with nothing queued to send.
fn parkable(t: &tcp::Socket) -> bool {
    matches!(t.state(), tcp::State::Established | tcp::State::CloseWait) && t.send_queue() == 0
}
