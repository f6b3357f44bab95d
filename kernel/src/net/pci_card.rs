//! [`PciCard`]: the kernel's virtio-pci transport (modern, virtio 1.0)
//! over a layout [`super::pci`] read and checked
//! ([`libos::net::virtio_pci::parse`]): each structure is a register range
//! of exactly its checked length, so every access here stays inside it
//! whatever the host answers. Queue notifications are one write each
//! ([`QueueNotify`]); with MSI-X on, every queue raises vector 0 and an
//! interrupt needs no acknowledgement (no ISR read).

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::platform::mmio::DeviceRegisters;

/// Registers of the common configuration structure (virtio 1.2, §4.1.4.3).
pub(super) mod common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

/// The two queues' notification registers (receive, transmit), each two
/// bytes mapped on its own: a notification is the queue's index written
/// there.
#[derive(Debug, Clone, Copy)]
pub struct QueueNotify {
    pub(super) regs: [DeviceRegisters; 2],
}

impl QueueNotify {
    /// Notifies the device of `queue` (0 or 1); `false` (nothing written)
    /// for another queue.
    pub fn notify(&self, queue: u16) -> bool {
        match self.regs.get(usize::from(queue)) {
            Some(reg) => {
                reg.write16(0, queue);
                true
            }
            None => false,
        }
    }
}

/// The kernel's virtio-pci transport over a checked layout.
#[derive(Debug)]
pub struct PciCard {
    pub(super) device_type: DeviceType,
    pub(super) common: DeviceRegisters,
    pub(super) isr: DeviceRegisters,
    pub(super) device: Option<DeviceRegisters>,
    pub(super) notify: QueueNotify,
    /// MSI-X is on: queues raise vector 0, interrupts need no ISR read.
    pub(super) msix: bool,
}

impl PciCard {
    /// The queues' notification registers.
    pub fn queue_notify(&self) -> QueueNotify {
        self.notify
    }

    fn select(&self, queue: u16) {
        self.common.write16(common::QUEUE_SELECT, queue);
    }

    fn write64(&self, offset: u64, value: u64) {
        // Two 32-bit halves, low first, as virtio 1.2 §4.1.3.1 allows.
        self.common.write32(offset, value as u32);
        self.common.write32(offset + 4, (value >> 32) as u32);
    }

    /// The device configuration `[offset, offset + len)`, if it lies there.
    fn device_range(&self, offset: usize, len: usize) -> virtio_drivers::Result<&DeviceRegisters> {
        let device = self.device.as_ref().ok_or(Error::ConfigSpaceMissing)?;
        match offset.checked_add(len) {
            Some(end) if end as u64 <= device.bytes() => Ok(device),
            _ => Err(Error::ConfigSpaceTooSmall),
        }
    }
}

impl Transport for PciCard {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn read_device_features(&mut self) -> u64 {
        self.common.write32(common::DEVICE_FEATURE_SELECT, 0);
        let low = self.common.read32(common::DEVICE_FEATURE);
        self.common.write32(common::DEVICE_FEATURE_SELECT, 1);
        let high = self.common.read32(common::DEVICE_FEATURE);
        u64::from(low) | u64::from(high) << 32
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.common.write32(common::DRIVER_FEATURE_SELECT, 0);
        self.common
            .write32(common::DRIVER_FEATURE, driver_features as u32);
        self.common.write32(common::DRIVER_FEATURE_SELECT, 1);
        self.common
            .write32(common::DRIVER_FEATURE, (driver_features >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.select(queue);
        self.common.read16(common::QUEUE_SIZE).into()
    }

    fn notify(&mut self, queue: u16) {
        if !self.notify.notify(queue) {
            log::warn!("virtio-pci: no notification register for queue {queue}");
        }
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.common.read8(common::DEVICE_STATUS).into())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.common
            .write8(common::DEVICE_STATUS, status.bits() as u8);
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {
        // The PCI transport has no page size.
    }

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.select(queue);
        self.common.write16(common::QUEUE_SIZE, size as u16);
        if self.msix {
            // Every queue raises vector 0 of the table; the device answers
            // NO_VECTOR if it cannot.
            self.common.write16(common::QUEUE_MSIX_VECTOR, 0);
            if self.common.read16(common::QUEUE_MSIX_VECTOR) != 0 {
                log::warn!(
                    "virtio-pci: queue {queue} refused MSI-X vector 0: it will not interrupt"
                );
            }
        }
        self.write64(common::QUEUE_DESC, descriptors);
        self.write64(common::QUEUE_DRIVER, driver_area);
        self.write64(common::QUEUE_DEVICE, device_area);
        self.common.write16(common::QUEUE_ENABLE, 1);
    }

    fn queue_unset(&mut self, _queue: u16) {
        // A queue cannot be disabled on PCI short of a device reset.
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.select(queue);
        self.common.read16(common::QUEUE_ENABLE) == 1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        if self.msix {
            // A message needs no acknowledgement, and the ISR status is
            // INTx's (virtio 1.2, §4.1.4.5): no device access.
            return InterruptStatus::QUEUE_INTERRUPT;
        }
        // Reading the ISR status clears it and lowers the INTx line.
        InterruptStatus::from_bits_retain(self.isr.read8(0).into())
    }

    fn read_config_generation(&self) -> u32 {
        self.common.read8(common::CONFIG_GENERATION).into()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(
        &self,
        offset: usize,
    ) -> virtio_drivers::Result<T> {
        let len = size_of::<T>();
        let device = self.device_range(offset, len)?;
        let mut value = T::new_zeroed();
        let bytes = value.as_mut_bytes();
        let at = offset as u64;
        match len {
            4 if offset.is_multiple_of(4) => {
                bytes.copy_from_slice(&device.read32(at).to_le_bytes())
            }
            2 if offset.is_multiple_of(2) => {
                bytes.copy_from_slice(&device.read16(at).to_le_bytes())
            }
            _ => {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = device.read8(at + i as u64);
                }
            }
        }
        Ok(value)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> virtio_drivers::Result<()> {
        let device = self.device_range(offset, size_of::<T>())?;
        for (i, b) in value.as_bytes().iter().enumerate() {
            device.write8(offset as u64 + i as u64, *b);
        }
        Ok(())
    }
}
