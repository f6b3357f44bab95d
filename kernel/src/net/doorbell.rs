//! [`Doorbell`]: the virtio-mmio transport with the transmit queue's
//! notification (the doorbell) held back, so that the frames one burst of
//! work produces reach the device together.
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
//! Every other transport call goes straight to the wrapped
//! [`MmioTransport`].

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;
use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// virtio-net's transmit queue (`transmitq1`).
pub const QUEUE_TRANSMIT: u16 = 1;

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
    transport: Mutex<MmioTransport<'static>>,
    /// Whether transmit notifications are held back.
    hold: AtomicBool,
    /// Transmit notifications held back since the last ring.
    owed: AtomicU32,
    /// Notifications of the transmit queue the device got.
    rung: AtomicU64,
}

impl Bell {
    /// Shared state over `transport`, holding notifications if `hold`.
    pub fn new(transport: MmioTransport<'static>, hold: bool) -> Arc<Self> {
        Arc::new(Self {
            transport: Mutex::new(transport),
            hold: AtomicBool::new(hold),
            owed: AtomicU32::new(0),
            rung: AtomicU64::new(0),
        })
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

    /// Sends the transmit notification if one is owed. Call with the
    /// driver's lock held and interrupts off (the device interrupt's
    /// handler takes the transport's lock too).
    pub(super) fn ring(&self) {
        if self.owed.swap(0, Ordering::Relaxed) != 0 {
            self.notify_now();
        }
    }

    fn notify_now(&self) {
        self.transport.lock().notify(QUEUE_TRANSMIT);
        self.rung.fetch_add(1, Ordering::Relaxed);
    }

    /// The transmit queue's notification, as the driver asks for it.
    fn notify_transmit(&self) {
        if !self.holds() {
            self.notify_now();
        } else if self.owed.fetch_add(1, Ordering::Relaxed) + 1 >= RING_AFTER {
            self.ring();
        }
    }
}

/// The transport `virtio-drivers` drives: an [`MmioTransport`] whose
/// transmit notifications go through a [`Bell`].
#[derive(Debug)]
pub struct Doorbell(pub Arc<Bell>);

impl Doorbell {
    fn with<R>(&self, f: impl FnOnce(&mut MmioTransport<'static>) -> R) -> R {
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
        self.with(|t| t.write_driver_features(driver_features));
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.with(|t| t.max_queue_size(queue))
    }

    fn notify(&mut self, queue: u16) {
        if queue == QUEUE_TRANSMIT {
            self.0.notify_transmit();
        } else {
            self.with(|t| t.notify(queue));
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
        self.with(|t| t.queue_set(queue, size, descriptors, driver_area, device_area));
    }

    fn queue_unset(&mut self, queue: u16) {
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
