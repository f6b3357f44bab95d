//! [`Doorbell`]: the virtio-mmio transport with the transmit queue's
//! notification (the doorbell) held back, so that the frames one burst of
//! work produces reach the device together, and the notifications sent
//! only when the device asked for them.
//!
//! A virtio driver notifies the device after each frame it queues (unless
//! the device said it is already looking). Under QEMU that notification
//! hands the queue to another host thread at once, which sends the frame
//! while the guest goes on writing the next one; a server answering ten
//! clients thus lets the first answer out while it still works on the
//! other nine, the clients' next requests come back spread out, and the
//! server settles into serving them one or two per wakeup instead of ten
//! (docs/PERFORMANCE.md, "The doorbell held back").
//!
//! With holding on ([`HOLD_KEY`]), a transmit notification the driver
//! asks for is only recorded ([`Bell::owed`]); [`Bell::ring`] sends it. The
//! kernel rings when a thread finds nothing to do (a blocking wait whose
//! condition does not hold: `epoll_wait`, `poll`, a read with no data, a
//! futex; and an `epoll_wait`, `poll` or `select` that finds nothing
//! ready, even with a zero timeout: `NetDevice::flush`), when a CPU is
//! about to halt, at every timer tick, and after [`RING_AFTER`] owed
//! notifications. A frame thus waits at most until its thread looks for
//! input, or one tick (10 ms at the default 100 Hz) for a thread that
//! neither waits nor polls, and a long transfer keeps the device busy. Linux's drivers hold the doorbell
//! in the same spirit with `xmit_more`, while the stack has more frames to
//! give.
//!
//! The receive queue's notifications, and the held transmit one when it
//! rings, are sent only if the device asked for them (with holding off
//! the transmit queue notifies as the driver asks, as before): the
//! wrapper reads the queue's `avail_event` (or, without
//! `VIRTIO_F_EVENT_IDX`, the used ring's no-notify flag) and applies the
//! split virtqueue's rule ([`libos::net::virtq::need_event`]). The driver
//! of `virtio-drivers` 0.13 would notify again for every buffer once the
//! device's event index is stale, and QEMU's device leaves it stale while
//! its receive queue has buffers (it asks again when it runs out): every
//! receive buffer given back notified the device, about one register
//! write per frame received (an exit to the hypervisor on SEV-SNP and
//! TDX). A notification the driver asks for and the device did not is
//! counted ([`Bell::declined`]).
//!
//! The wrapper also adds the offloads `virtio-drivers` does not ask for
//! to the features the driver accepts: the device completing TCP
//! checksums and cutting long TCP frames (`libos::net::offload`), when
//! the device offers them (QEMU does on a TAP network, not with user
//! networking) and the kernel was not told `net.offload=off`. Every other
//! transport call goes straight to the wrapped transport
//! ([`CardTransport`]: virtio-mmio or PCI).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering, fence};

use libos::net::offload;
use libos::net::virtq::{self, RingAddrs};

use spin::Mutex;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::pci::QueueNotify;
use super::transport::CardTransport;

/// virtio-net's receive queue (`receiveq1`).
pub const QUEUE_RECEIVE: u16 = 0;

/// virtio-net's transmit queue (`transmitq1`).
pub const QUEUE_TRANSMIT: u16 = 1;

/// The queues whose notifications go through [`Bell::asked`].
const QUEUES: usize = 2;

/// `net.doorbell=held` (the default) holds the transmit notification back;
/// `net.doorbell=each` sends it after every frame, as the driver does on
/// its own.
pub const HOLD_KEY: &str = "net.doorbell";

/// Owed notifications after which the doorbell rings anyway: a long
/// transfer keeps the device sending while the guest writes more (a
/// quarter of the 128-slot transmit queue).
pub const RING_AFTER: u32 = 32;

/// The state shared by the transport (inside the driver) and the driver's
/// own ringing.
#[derive(Debug)]
pub struct Bell {
    transport: Mutex<CardTransport>,
    /// Whether transmit notifications are held back.
    hold: AtomicBool,
    /// Transmit notifications held back since the last ring.
    owed: AtomicU32,
    /// Notifications of the transmit queue the device got.
    rung: AtomicU64,
    /// Notifications of the receive queue the device got.
    rx_rung: AtomicU64,
    /// Notifications the driver asked for that the device had not.
    declined: AtomicU64,
    /// Whether `VIRTIO_F_EVENT_IDX` was negotiated.
    event_idx: AtomicBool,
    /// Where each queue's notification fields are (`queue_set`).
    rings: Mutex<[Option<RingAddrs>; QUEUES]>,
    /// Each queue's available index when the device was last notified.
    notified_at: [AtomicU16; QUEUES],
    /// Whether to accept the device's offloads (`write_driver_features`).
    offload: bool,
    /// The features the driver accepted.
    features: AtomicU64,
    /// The queues' notification registers, where the kernel found them
    /// (virtio-pci): one write per notification, without the transport.
    queue_notify: Option<QueueNotify>,
}

impl Bell {
    /// Shared state over `transport`, holding notifications if `hold`,
    /// accepting the device's offloads if `offload`.
    pub fn new(transport: CardTransport, hold: bool, offload: bool) -> Arc<Self> {
        let queue_notify = transport.queue_notify();
        Arc::new(Self {
            transport: Mutex::new(transport),
            hold: AtomicBool::new(hold),
            owed: AtomicU32::new(0),
            rung: AtomicU64::new(0),
            rx_rung: AtomicU64::new(0),
            declined: AtomicU64::new(0),
            event_idx: AtomicBool::new(false),
            rings: Mutex::new([None; QUEUES]),
            notified_at: [AtomicU16::new(0), AtomicU16::new(0)],
            offload,
            features: AtomicU64::new(0),
            queue_notify,
        })
    }

    /// The features the driver accepted (offloads included).
    pub fn features(&self) -> u64 {
        self.features.load(Ordering::Relaxed)
    }

    /// Whether transmit notifications are held back.
    pub fn holds(&self) -> bool {
        self.hold.load(Ordering::Relaxed)
    }

    /// Holds notifications back or not (`super::VirtioNet::set_hold`
    /// rings what is owed when holding stops).
    #[cfg(feature = "ktest")]
    pub(super) fn set_hold(&self, on: bool) {
        self.hold.store(on, Ordering::Relaxed);
    }

    /// Transmit notifications held back since the last ring.
    pub fn owed(&self) -> u32 {
        self.owed.load(Ordering::Relaxed)
    }

    /// Notifications of the transmit queue sent to the device.
    pub fn rung(&self) -> u64 {
        self.rung.load(Ordering::Relaxed)
    }

    /// Notifications of the receive queue sent to the device.
    pub fn rx_rung(&self) -> u64 {
        self.rx_rung.load(Ordering::Relaxed)
    }

    /// Notifications the driver asked for (of either queue, counting a
    /// held transmit notification once per ring) that the device had not:
    /// not sent.
    pub fn declined(&self) -> u64 {
        self.declined.load(Ordering::Relaxed)
    }

    /// Sends the transmit notification if one is owed and the device
    /// asked for it. Call with the driver's lock held and interrupts off
    /// (the device interrupt's handler takes the transport's lock too).
    pub(super) fn ring(&self) {
        if self.owed.swap(0, Ordering::Relaxed) != 0 {
            self.notify_if_asked(QUEUE_TRANSMIT);
        }
    }

    /// Notifies the device of `queue` if it asked ([`Self::asked`]); else
    /// counts the notification declined.
    fn notify_if_asked(&self, queue: u16) {
        match self.asked(queue) {
            Wish::Notify(published) => {
                self.notify_now(queue);
                if let (Some(at), Some(published)) =
                    (self.notified_at.get(usize::from(queue)), published)
                {
                    at.store(published, Ordering::Relaxed);
                }
            }
            Wish::Decline => {
                self.declined.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Notifies the device of `queue` and counts it.
    fn notify_now(&self, queue: u16) {
        // The register write needs no lock: it selects nothing.
        if !self.queue_notify.as_ref().is_some_and(|n| n.notify(queue)) {
            self.transport.lock().notify(queue);
        }
        let sent = if queue == QUEUE_TRANSMIT {
            &self.rung
        } else {
            &self.rx_rung
        };
        sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the device of `queue` wants a notification for the
    /// buffers published since the last one. Reads the queue's fields in
    /// the shared pool; where they cannot be read (a queue not set up,
    /// outside the pool) the answer is yes, as a notification too many is
    /// harmless and one too few stalls the queue.
    fn asked(&self, queue: u16) -> Wish {
        let i = usize::from(queue);
        let addrs = self.rings.lock().get(i).copied().flatten();
        let read = |paddr: u64| {
            let mut b = [0u8; 2];
            crate::platform::dma::pool()
                .is_some_and(|pool| pool.read(paddr, &mut b))
                .then(|| u16::from_le_bytes(b))
        };
        let Some(addrs) = addrs else {
            return Wish::Notify(None);
        };
        // The index the driver published must be visible to the device
        // before the device's wish is read, as the device writes its wish
        // before it looks at the index again (virtio 1.2, §2.7.10): else
        // each can miss the other and the queue stalls.
        fence(Ordering::SeqCst);
        let Some(published) = read(addrs.avail_idx) else {
            return Wish::Notify(None);
        };
        let wants = if self.event_idx.load(Ordering::Relaxed) {
            let last = self.notified_at[i].load(Ordering::Relaxed);
            read(addrs.avail_event).is_none_or(|event| virtq::need_event(event, published, last))
        } else {
            read(addrs.used_flags).is_none_or(|flags| flags & virtq::USED_F_NO_NOTIFY == 0)
        };
        if wants {
            Wish::Notify(Some(published))
        } else {
            Wish::Decline
        }
    }

    /// Counts `frames` more frames' worth of held transmit work (a frame
    /// the device cuts into segments weighs as the segments it becomes),
    /// ringing once [`RING_AFTER`] are owed. Holding off, it does nothing:
    /// every frame has notified already. Call as [`Self::ring`].
    pub(super) fn owe(&self, frames: u32) {
        if self.holds() && self.owed.fetch_add(frames, Ordering::Relaxed) + frames >= RING_AFTER {
            self.ring();
        }
    }

    /// The transmit queue's notification, as the driver asks for it.
    fn notify_transmit(&self) {
        if !self.holds() {
            self.notify_now(QUEUE_TRANSMIT);
        } else if self.owed.fetch_add(1, Ordering::Relaxed) + 1 >= RING_AFTER {
            self.ring();
        }
    }
}

/// [`Bell::asked`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wish {
    /// Notify; the available index published, if it could be read.
    Notify(Option<u16>),
    /// The device did not ask.
    Decline,
}

/// The transport `virtio-drivers` drives: a [`CardTransport`] whose
/// queue notifications go through a [`Bell`].
#[derive(Debug)]
pub struct Doorbell(pub Arc<Bell>);

impl Doorbell {
    fn with<R>(&self, f: impl FnOnce(&mut CardTransport) -> R) -> R {
        f(&mut self.0.transport.lock())
    }
}

impl Transport for Doorbell {
    fn device_type(&self) -> DeviceType {
        self.with(|t| t.device_type())
    }

    fn read_device_features(&mut self) -> u64 {
        self.with(|t| t.read_device_features())
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.0
            .event_idx
            .store(driver_features & virtq::F_EVENT_IDX != 0, Ordering::Relaxed);
        let features = self.with(|t| {
            let features = offload::virtio_net_features(
                t.read_device_features(),
                driver_features,
                self.0.offload,
            );
            t.write_driver_features(features);
            features
        });
        self.0.features.store(features, Ordering::Relaxed);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.with(|t| t.max_queue_size(queue))
    }

    fn notify(&mut self, queue: u16) {
        match queue {
            QUEUE_TRANSMIT => self.0.notify_transmit(),
            QUEUE_RECEIVE => self.0.notify_if_asked(QUEUE_RECEIVE),
            _ => self.with(|t| t.notify(queue)),
        }
    }

    fn get_status(&self) -> DeviceStatus {
        self.with(|t| t.get_status())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.with(|t| t.set_status(status));
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.with(|t| t.set_guest_page_size(guest_page_size));
    }

    fn requires_legacy_layout(&self) -> bool {
        self.with(|t| t.requires_legacy_layout())
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        if let Some(slot) = self.0.rings.lock().get_mut(usize::from(queue)) {
            *slot = RingAddrs::new(size, driver_area, device_area);
        }
        if let Some(at) = self.0.notified_at.get(usize::from(queue)) {
            at.store(0, Ordering::Relaxed);
        }
        self.with(|t| t.queue_set(queue, size, descriptors, driver_area, device_area));
    }

    fn queue_unset(&mut self, queue: u16) {
        if let Some(slot) = self.0.rings.lock().get_mut(usize::from(queue)) {
            *slot = None;
        }
        self.with(|t| t.queue_unset(queue));
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.with(|t| t.queue_used(queue))
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.with(|t| t.ack_interrupt())
    }

    fn read_config_generation(&self) -> u32 {
        self.with(|t| t.read_config_generation())
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T> {
        self.with(|t| t.read_config_space(offset))
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<()> {
        self.with(|t| t.write_config_space(offset, value))
    }
}
