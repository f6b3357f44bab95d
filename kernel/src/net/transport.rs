//! [`CardTransport`]: the card's transport, virtio-mmio (`virtio-drivers`'
//! own, on `microvm`) or virtio-pci (the kernel's [`PciCard`], on `q35`),
//! so the driver above is the same for both.

use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::pci::{PciCard, QueueNotify};

/// The card's transport.
#[derive(Debug)]
pub enum CardTransport {
    /// A virtio-mmio transport.
    Mmio(MmioTransport<'static>),
    /// A virtio-pci function.
    Pci(PciCard),
}

impl CardTransport {
    /// The queues' notification registers, where the transport has them
    /// found (virtio-pci): a notification is then one write, no lock.
    pub fn queue_notify(&self) -> Option<QueueNotify> {
        match self {
            Self::Mmio(_) => None,
            Self::Pci(card) => Some(card.queue_notify()),
        }
    }
}

/// Calls `$call` on whichever transport `$self` holds.
macro_rules! each {
    ($self:expr, $t:ident => $call:expr) => {
        match $self {
            CardTransport::Mmio($t) => $call,
            CardTransport::Pci($t) => $call,
        }
    };
}

impl Transport for CardTransport {
    fn device_type(&self) -> DeviceType {
        each!(self, t => t.device_type())
    }

    fn read_device_features(&mut self) -> u64 {
        each!(self, t => t.read_device_features())
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        each!(self, t => t.write_driver_features(driver_features))
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        each!(self, t => t.max_queue_size(queue))
    }

    fn notify(&mut self, queue: u16) {
        each!(self, t => t.notify(queue))
    }

    fn get_status(&self) -> DeviceStatus {
        each!(self, t => t.get_status())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        each!(self, t => t.set_status(status))
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        each!(self, t => t.set_guest_page_size(guest_page_size))
    }

    fn requires_legacy_layout(&self) -> bool {
        each!(self, t => t.requires_legacy_layout())
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        each!(self, t => t.queue_set(queue, size, descriptors, driver_area, device_area))
    }

    fn queue_unset(&mut self, queue: u16) {
        each!(self, t => t.queue_unset(queue))
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        each!(self, t => t.queue_used(queue))
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        each!(self, t => t.ack_interrupt())
    }

    fn read_config_generation(&self) -> u32 {
        each!(self, t => t.read_config_generation())
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T> {
        each!(self, t => t.read_config_space(offset))
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<()> {
        each!(self, t => t.write_config_space(offset, value))
    }
}
