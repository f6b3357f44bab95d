//! [`NetStack`]: smoltcp driven on up to three interfaces — IPv4
//! loopback (127.0.0.1/8, always there), IPv6 loopback (`::1/128`, always
//! there) and, when the machine has a card, the external interface (IPv4
//! only) — plus the bookkeeping smoltcp leaves to its user:
//! which ports are taken ([`PortTable`]), pools of listening sockets per
//! listener (`Listener`), and sockets closed by their owner but still
//! finishing their handshake.
//!
//! Each interface has its own sockets (`net::sockets::Sockets`, which keeps idle
//! loopback connections out of smoltcp's walks): a smoltcp socket belongs to
//! the interface its traffic goes through (chosen from the address at
//! `connect`/`bind`), and a wildcard listener keeps a pool on each. The
//! two loopbacks are separate interfaces so that each carries one family:
//! a smoltcp socket listening on the wildcard address accepts either
//! family, and the interface it sits on is what keeps an `AF_INET`
//! listener from answering IPv6 (see `super::inet`). One
//! lock guards the lot; [`NetStack::poll`] only tries it, so a timer tick
//! that interrupts a socket call returns at once instead of deadlocking.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult};
use smoltcp::phy::{Device, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, IpListenEndpoint};
use spin::Mutex;

use super::ancillary::Marks;
use super::arrivals::{Arrivals, Observed, tcp_flow_of};
use super::config::NetConfig;
use super::counters::{CountersSnapshot, NetCounters};
use super::device::{NetDevice, NicPhy};
use super::loopback::{Flow, LoopbackPhy};
use super::port::PortTable;
pub(crate) use super::sockets::SocketHandle;
use super::sockets::{Parking, Sockets};
use crate::platform::Clock;

/// Which interface a smoltcp socket lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IfaceId {
    /// 127.0.0.1/8 (and the external address, so the machine can reach itself).
    Loopback,
    /// `::1/128`.
    Loopback6,
    /// The network card.
    External,
}

/// One smoltcp interface with its device and sockets.
pub(crate) struct Iface<D> {
    pub(crate) iface: Interface,
    pub(crate) sockets: Sockets,
    phy: Observed<D>,
}

/// Listening sockets kept ready per interface of a listener. Each
/// received packet is followed by a refill, so this only needs to cover
/// the SYNs of one packet (one).
const LISTEN_READY_PER_IFACE: usize = 2;

/// A listening TCP socket's pool: smoltcp sockets in `Listen` state
/// waiting for a SYN, and the connections they turned into, oldest first,
/// until `accept` takes them.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) endpoint: IpListenEndpoint,
    pub(crate) ifaces: Vec<IfaceId>,
    /// Most connections (half- or fully open) waiting for `accept`.
    pub(crate) backlog: usize,
    /// Receive and send buffer bytes of each new socket.
    pub(crate) buffers: (usize, usize),
    pub(crate) sockets: Vec<(IfaceId, SocketHandle)>,
    /// Connections `accept` took out of `sockets` so far.
    pub(crate) accepted: u64,
}

/// Everything behind the stack's lock.
pub(crate) struct Inner {
    pub(crate) lo: Iface<LoopbackPhy>,
    pub(crate) lo6: Iface<LoopbackPhy>,
    pub(crate) ext: Option<Iface<NicPhy>>,
    pub(crate) ports: PortTable,
    pub(crate) listeners: BTreeMap<u64, Listener>,
    next_listener: u64,
    /// Sockets whose file was closed, kept until their connection ends.
    closing: Vec<(IfaceId, SocketHandle)>,
    /// When each connection's unread data began arriving (epoll order).
    pub(crate) arrivals: Arrivals,
}

impl core::fmt::Debug for Inner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inner")
            .field("listeners", &self.listeners.len())
            .field("closing", &self.closing.len())
            .finish_non_exhaustive()
    }
}

/// A zeroed buffer of `len` bytes, or `None` if the heap cannot give it.
fn try_buffer(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

/// A new TCP socket with `rx`/`tx` bytes of buffer; `None` when memory
/// for the buffers cannot be had (the caller answers `ENOBUFS`, or a
/// listener queues fewer connections).
pub(crate) fn new_tcp_socket(buffers: (usize, usize)) -> Option<tcp::Socket<'static>> {
    Some(tcp::Socket::new(
        tcp::SocketBuffer::new(try_buffer(buffers.0)?),
        tcp::SocketBuffer::new(try_buffer(buffers.1)?),
    ))
}

impl Inner {
    /// The socket set of an interface (`External` without a card falls
    /// back to loopback; callers check [`Inner::has_external`] first).
    pub(crate) fn sockets(&mut self, id: IfaceId) -> &mut Sockets {
        match (id, self.ext.as_mut()) {
            (IfaceId::External, Some(ext)) => &mut ext.sockets,
            (IfaceId::Loopback6, _) => &mut self.lo6.sockets,
            _ => &mut self.lo.sockets,
        }
    }

    /// The sockets of an interface, to read.
    fn sockets_ref(&self, id: IfaceId) -> &Sockets {
        match (id, self.ext.as_ref()) {
            (IfaceId::External, Some(ext)) => &ext.sockets,
            (IfaceId::Loopback6, _) => &self.lo6.sockets,
            _ => &self.lo.sockets,
        }
    }

    /// The interface context (for `connect`) and socket set of `id`.
    pub(crate) fn iface(&mut self, id: IfaceId) -> (&mut smoltcp::iface::Context, &mut Sockets) {
        match (id, self.ext.as_mut()) {
            (IfaceId::External, Some(ext)) => (ext.iface.context(), &mut ext.sockets),
            (IfaceId::Loopback6, _) => (self.lo6.iface.context(), &mut self.lo6.sockets),
            _ => (self.lo.iface.context(), &mut self.lo.sockets),
        }
    }

    /// Whether there is a network card.
    pub(crate) fn has_external(&self) -> bool {
        self.ext.is_some()
    }

    /// The TCP socket `h` on `id`, to change (a parked connection goes
    /// back to the polled sockets).
    pub(crate) fn tcp(&mut self, id: IfaceId, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets(id).get_mut::<tcp::Socket>(h)
    }

    /// The TCP socket `h` on `id`, to read (it stays parked if it is).
    pub(crate) fn tcp_ref(&self, id: IfaceId, h: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets_ref(id).get::<tcp::Socket>(h)
    }

    /// Registers a listener; its pool fills at once.
    pub(crate) fn add_listener(&mut self, listener: Listener) -> u64 {
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners.insert(id, listener);
        self.refill(id);
        id
    }

    /// Tops up listener `id`'s pool of listening sockets on each of its
    /// interfaces, within its backlog.
    pub(crate) fn refill(&mut self, id: u64) {
        let Some(mut l) = self.listeners.remove(&id) else {
            return;
        };
        for &iface in &l.ifaces.clone() {
            let mut ready = 0;
            let mut queued = 0;
            for &(i, h) in &l.sockets {
                if self.tcp_ref(i, h).state() == tcp::State::Listen {
                    ready += usize::from(i == iface);
                } else {
                    queued += 1;
                }
            }
            while ready < LISTEN_READY_PER_IFACE
                && queued + ready < l.backlog + LISTEN_READY_PER_IFACE
            {
                // Out of memory: fewer connections wait to be accepted.
                let Some(mut s) = new_tcp_socket(l.buffers) else {
                    break;
                };
                if s.listen(l.endpoint).is_err() {
                    break;
                }
                let h = self.sockets(iface).add(s);
                l.sockets.push((iface, h));
                ready += 1;
            }
        }
        self.listeners.insert(id, l);
    }

    /// Listener `id`'s events for edge-triggered `epoll`: the connections
    /// that finished their handshake so far. Each stays counted, in the
    /// pool until `accept` takes it, then in `accepted`.
    pub(crate) fn listener_events(&self, id: u64) -> u64 {
        let Some(l) = self.listeners.get(&id) else {
            return 0;
        };
        let waiting = l
            .sockets
            .iter()
            .filter(|&&(i, h)| {
                !matches!(
                    self.tcp_ref(i, h).state(),
                    tcp::State::Listen | tcp::State::SynReceived
                )
            })
            .count();
        l.accepted.wrapping_add(waiting as u64)
    }

    /// Removes a listener: its listening sockets go, connections nobody
    /// accepted are reset.
    pub(crate) fn remove_listener(&mut self, id: u64) {
        if let Some(l) = self.listeners.remove(&id) {
            for (i, h) in l.sockets {
                self.tcp(i, h).abort();
                self.closing.push((i, h));
            }
        }
    }

    /// Hands a socket whose file was closed to the stack, which removes
    /// it once its connection has ended.
    pub(crate) fn retire(&mut self, id: IfaceId, h: SocketHandle) {
        self.closing.push((id, h));
    }

    /// Tops up every listener's pool: after a connection request (a SYN)
    /// was taken in, the only event that uses up a listening socket.
    fn refill_all(&mut self) {
        let ids: Vec<u64> = self.listeners.keys().copied().collect();
        for id in ids {
            self.refill(id);
        }
    }

    /// Drives every interface once; returns whether a socket may have
    /// changed state.
    fn poll(&mut self, now: Instant) -> bool {
        let mut changed = self.poll_loopback(IfaceId::Loopback, now);
        // Without polled sockets, packets or a parked connection's timer
        // due, nothing on the IPv6 loopback can be sent or received:
        // IPv4-only programs do not pay for its walk.
        if !self.lo6.sockets.active_is_empty()
            || !self.lo6.phy.inner.is_empty()
            || self.lo6.sockets.next_wake().is_some_and(|t| t <= now)
        {
            changed |= self.poll_loopback(IfaceId::Loopback6, now);
        }
        if let Some(ext) = self.ext.as_mut() {
            ext.sockets.begin_poll(now);
            while let Some(result) = self.ext.as_mut().and_then(|ext| {
                ext.phy.inner.flush();
                // As on loopback: a parked connection the next frame is
                // for goes back to the polled sockets first.
                if ext.sockets.any_parked()
                    && let Some(flow) = ext
                        .phy
                        .inner
                        .peek()
                        .and_then(|f| tcp_flow_of(f, Medium::Ethernet))
                {
                    ext.sockets.unpark_flow(&flow);
                }
                ingress(ext, now)
            }) {
                let mut requests = false;
                if let Some(ext) = self.ext.as_mut() {
                    self.arrivals.record(&mut ext.phy.flows);
                    requests = ext.phy.take_requests();
                }
                changed = true;
                if requests && result == PollIngressSingleResult::SocketStateChanged {
                    self.refill_all();
                }
            }
            if let Some(ext) = self.ext.as_mut() {
                changed |= egress(ext, now);
                ext.sockets.park_idle(&mut ext.iface, now);
            }
        }
        self.reap();
        changed
    }

    /// Drives loopback interface `id` (`Loopback` or `Loopback6`) until
    /// what it sent has been received.
    fn poll_loopback(&mut self, id: IfaceId, now: Instant) -> bool {
        let mut changed = false;
        // Loopback packets sent in one round are received in the next. A
        // round walks the sockets once (every walk visits each socket, idle
        // or not, so its cost grows with the connections open): a walk that
        // sends nothing ends the loop, as nothing new can then arrive.
        let lo = self.loopback(id);
        lo.sockets.begin_poll(now);
        lo.iface.poll_maintenance(now);
        for _ in 0..LOOPBACK_ROUNDS {
            while let Some(result) = {
                // A parked connection the next packet is for goes back to
                // the sockets smoltcp polls first.
                let lo = self.loopback(id);
                if lo.sockets.any_parked() {
                    let medium = lo.phy.inner.capabilities().medium;
                    if let Some(flow) = lo.phy.inner.peek().and_then(|p| tcp_flow_of(p, medium)) {
                        lo.sockets.unpark_flow(&flow);
                    }
                }
                ingress(lo, now)
            } {
                let lo = match id {
                    IfaceId::Loopback6 => &mut self.lo6,
                    _ => &mut self.lo,
                };
                self.arrivals.record(&mut lo.phy.flows);
                let requests = lo.phy.take_requests();
                changed = true;
                if requests && result == PollIngressSingleResult::SocketStateChanged {
                    self.refill_all();
                }
            }
            let lo = self.loopback(id);
            let sent = lo.iface.poll_egress(now, &mut lo.phy, lo.sockets.active())
                == PollResult::SocketStateChanged;
            changed |= sent;
            if !sent {
                break;
            }
        }
        let lo = self.loopback(id);
        lo.sockets.park_idle(&mut lo.iface, now);
        changed
    }

    /// Gives the next IPv6 UDP datagram of `flow` that goes out through
    /// interface `id` the hop limit and traffic class `marks` (only the
    /// IPv6 loopback carries them; see [`LoopbackPhy::mark_next`]).
    pub(crate) fn mark_next(&mut self, id: IfaceId, flow: Flow, marks: Marks) {
        if id == IfaceId::Loopback6 {
            self.lo6.phy.inner.mark_next(flow, marks);
        }
    }

    /// The loopback interface `id` (IPv4 unless `Loopback6`).
    fn loopback(&mut self, id: IfaceId) -> &mut Iface<LoopbackPhy> {
        match id {
            IfaceId::Loopback6 => &mut self.lo6,
            _ => &mut self.lo,
        }
    }

    /// Removes retired sockets whose connection has ended. A retired
    /// socket that received data after the program closed it is reset, as
    /// Linux answers data for a closed socket: the peer learns at once
    /// that nobody will read (`ECONNRESET`), instead of filling a window.
    fn reap(&mut self) {
        let closing = core::mem::take(&mut self.closing);
        for (i, h) in closing {
            let s = self.tcp_ref(i, h);
            if s.state() != tcp::State::Closed && s.recv_queue() > 0 {
                // Closed now; the next poll sends the RST, then it goes.
                self.tcp(i, h).abort();
                self.closing.push((i, h));
                continue;
            }
            // TIME-WAIT absorbs late duplicates and re-acknowledges a lost
            // final FIN; the loopback interface loses and reorders nothing,
            // so a closed file's connection there goes at once instead of
            // being walked by every poll for smoltcp's 10 s.
            let s = self.tcp_ref(i, h);
            let done = s.state() == tcp::State::Closed
                || (i != IfaceId::External && s.state() == tcp::State::TimeWait);
            if done {
                if let (Some(local), Some(remote)) = (s.local_endpoint(), s.remote_endpoint()) {
                    let flow = (local.into(), remote.into());
                    self.arrivals.forget(&flow);
                }
                self.sockets(i).remove(h);
            } else {
                self.closing.push((i, h));
            }
        }
    }

    fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        // Parked connections have nothing to do until a packet comes.
        let lo = self.lo.iface.poll_at(now, self.lo.sockets.active());
        let lo6 = self.lo6.iface.poll_at(now, self.lo6.sockets.active());
        let ext = self
            .ext
            .as_mut()
            .and_then(|e| e.iface.poll_at(now, e.sockets.active()));
        // And the timers of the parked ones.
        let parked = [
            self.lo.sockets.next_wake(),
            self.lo6.sockets.next_wake(),
            self.ext.as_ref().and_then(|e| e.sockets.next_wake()),
        ];
        [lo, lo6, ext].into_iter().chain(parked).flatten().min()
    }
}

/// Processes one received packet, if any.
fn ingress<D: Device>(ifc: &mut Iface<D>, now: Instant) -> Option<PollIngressSingleResult> {
    match ifc
        .iface
        .poll_ingress_single(now, &mut ifc.phy, ifc.sockets.active())
    {
        PollIngressSingleResult::None => None,
        other => Some(other),
    }
}

/// Most socket walks one poll makes on the loopback interface (each
/// sends at most a segment per socket; what is left goes at the next poll).
const LOOPBACK_ROUNDS: usize = 1024;

/// Sends what the sockets have queued; returns whether anything went.
fn egress<D: Device>(ifc: &mut Iface<D>, now: Instant) -> bool {
    ifc.iface.poll_maintenance(now);
    let mut sent = false;
    while ifc
        .iface
        .poll_egress(now, &mut ifc.phy, ifc.sockets.active())
        == PollResult::SocketStateChanged
    {
        sent = true;
    }
    sent
}

/// The network stack of the machine: interfaces, sockets, ports.
pub struct NetStack {
    inner: Mutex<Inner>,
    /// Bound `AF_UNIX` names (no smoltcp involved).
    pub(crate) unix_names: Arc<super::unix::UnixNames>,
    /// UDP-Lite endpoints and their ports (no smoltcp involved).
    pub(crate) udplite: Arc<super::udplite_table::UdpLiteTable>,
    clock: Arc<dyn Clock>,
    config: NetConfig,
    /// The external interface's device-path counters (`None`: no card).
    counters: Option<Arc<NetCounters>>,
    /// The card, for [`NetStack::flush_device`] (`None`: no card).
    device: Option<Arc<dyn NetDevice>>,
}

impl core::fmt::Debug for NetStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetStack")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / 1000) as i64)
}

impl NetStack {
    /// A stack with loopback interfaces (127.0.0.1/8, `::1/128`) and, if `device`
    /// is given, an external one configured from `config`. `clock` drives
    /// TCP's timers.
    pub fn new(
        device: Option<Arc<dyn NetDevice>>,
        config: NetConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = instant(clock.monotonic_ns());
        let mut lo_phy = LoopbackPhy::default();
        let mut lo_config = Config::new(HardwareAddress::Ip);
        lo_config.random_seed = config.random_seed;
        let mut lo_iface = Interface::new(lo_config, &mut lo_phy, now);
        let mut lo6_phy = LoopbackPhy::default();
        let mut lo6_config = Config::new(HardwareAddress::Ip);
        lo6_config.random_seed = config.random_seed.rotate_left(33) ^ 0x6a09_e667_f3bc_c908;
        let mut lo6_iface = Interface::new(lo6_config, &mut lo6_phy, now);
        lo6_iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv6Addr::LOCALHOST.into(), 128));
        });
        let counters = device.as_ref().map(|_| Arc::new(NetCounters::default()));
        let card = device.clone();
        let ext = device.zip(counters.clone()).map(|(dev, counters)| {
            let mut phy = NicPhy::new(dev, counters, config.copybreak);
            let mac = EthernetAddress(phy.device().mac());
            let mut c = Config::new(HardwareAddress::Ethernet(mac));
            c.random_seed = config.random_seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
            let mut iface = Interface::new(c, &mut phy, now);
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(config.addr.into(), config.prefix_len));
            });
            if let Some(gw) = config.gateway {
                let _ = iface.routes_mut().add_default_ipv4_route(gw);
            }
            Iface {
                iface,
                // Its frames are peeked at before smoltcp takes them.
                sockets: Sockets::new(Parking::EXTERNAL),
                phy: Observed::new(phy),
            }
        });
        lo_iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv4Addr::LOCALHOST.into(), 8));
            if ext.is_some() {
                let _ = a.push(IpCidr::new(config.addr.into(), 32));
            }
        });
        Self {
            inner: Mutex::new(Inner {
                lo: Iface {
                    iface: lo_iface,
                    sockets: Sockets::new(Parking::LOOPBACK),
                    phy: Observed::new(lo_phy),
                },
                lo6: Iface {
                    iface: lo6_iface,
                    sockets: Sockets::new(Parking::LOOPBACK),
                    phy: Observed::new(lo6_phy),
                },
                ext,
                ports: PortTable::new(config.random_seed),
                listeners: BTreeMap::new(),
                next_listener: 0,
                closing: Vec::new(),
                arrivals: Arrivals::default(),
            }),
            unix_names: Arc::default(),
            udplite: Arc::new(super::udplite_table::UdpLiteTable::new(
                config.random_seed.rotate_left(7),
            )),
            clock,
            config,
            counters,
            device: card,
        }
    }

    /// Tells the card to send every frame queued so far
    /// ([`NetDevice::flush`]): the program looked for input and found
    /// none. Takes no lock of the stack.
    pub fn flush_device(&self) {
        if let Some(dev) = &self.device {
            dev.flush();
        }
    }

    /// The external interface's device-path counters (retransmissions,
    /// a full transmit queue, receive errors); `None` without a card.
    pub fn counters(&self) -> Option<CountersSnapshot> {
        self.counters.as_ref().map(|c| c.snapshot())
    }

    /// The external interface's configuration.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Whether the stack has a network card (else only loopback works).
    pub fn has_device(&self) -> bool {
        self.inner.lock().has_external()
    }

    /// Drives smoltcp on every interface: takes received frames, sends
    /// queued data, runs timers. Returns whether any socket may have
    /// changed (a blocked thread may now proceed). Never blocks: if
    /// another CPU or an interrupted thread holds the stack, it returns
    /// `false` at once (that holder drives the stack itself).
    pub fn poll(&self) -> bool {
        let Some(mut inner) = self.inner.try_lock() else {
            return false;
        };
        inner.poll(instant(self.clock.monotonic_ns()))
    }

    /// When [`NetStack::poll`] should run next at the latest (monotonic
    /// ns; `None`: only when a frame arrives). A time in the past means now.
    pub fn poll_at(&self) -> Option<u64> {
        let now = self.clock.monotonic_ns();
        let mut inner = self.inner.lock();
        let at = inner.poll_at(instant(now))?;
        Some(
            u64::try_from(at.total_micros())
                .unwrap_or(0)
                .saturating_mul(1000),
        )
    }

    /// Runs `f` on the locked stack, then drives it once (so what `f`
    /// queued goes out at once).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let now = instant(self.clock.monotonic_ns());
        let mut inner = self.inner.lock();
        let r = f(&mut inner);
        inner.poll(now);
        r
    }

    /// Runs `f` on the locked stack without driving it.
    pub(crate) fn with_lock<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock())
    }

    /// Drives the stack (waiting for the lock), then runs `f`.
    pub(crate) fn polled<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let now = instant(self.clock.monotonic_ns());
        let mut inner = self.inner.lock();
        inner.poll(now);
        f(&mut inner)
    }
}

#[cfg(test)]
impl NetStack {
    /// The connections (local, remote) parked out of smoltcp's walks.
    pub(crate) fn parked(&self) -> Vec<super::arrivals::Flow> {
        let inner = self.inner.lock();
        let mut flows = inner.lo.sockets.parked_flows();
        flows.extend(inner.lo6.sockets.parked_flows());
        if let Some(ext) = &inner.ext {
            flows.extend(ext.sockets.parked_flows());
        }
        flows
    }

    /// How many sockets smoltcp polls on the loopback interfaces.
    pub(crate) fn polled_sockets(&self) -> usize {
        let inner = self.inner.lock();
        inner.lo.sockets.active_len() + inner.lo6.sockets.active_len()
    }

    /// How many sockets smoltcp polls on the external interface.
    pub(crate) fn polled_external_sockets(&self) -> usize {
        let inner = self.inner.lock();
        inner.ext.as_ref().map_or(0, |e| e.sockets.active_len())
    }

    /// Every TCP socket's state and queues (for test failure messages).
    pub(crate) fn describe(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut out = alloc::string::String::new();
        let mut inner = self.inner.lock();
        for id in [IfaceId::Loopback, IfaceId::Loopback6, IfaceId::External] {
            for (h, s) in inner.sockets(id).iter() {
                if let smoltcp::socket::Socket::Tcp(t) = s {
                    let _ = write!(
                        out,
                        "[{id:?} {h} {} send_q {} recv_q {} can_send {} may_recv {}] ",
                        t.state(),
                        t.send_queue(),
                        t.recv_queue(),
                        t.can_send(),
                        t.may_recv()
                    );
                }
            }
        }
        out
    }
}
