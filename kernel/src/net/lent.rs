//! [`TxSpare`]: the transmit slot the virtio-net driver ([`super::virtio`],
//! native backend) sets aside for the next frame written in place. An
//! atomic outside the device lock, so that lending a slot costs no lock
//! round trip of its own: a sent frame takes one lock (to hand it to the
//! device and set the next slot aside), as when frames were copied. A
//! spare slot belongs to whoever swapped it out.

use core::sync::atomic::{AtomicU32, Ordering};

const NO_SPARE: u32 = u32::MAX;

/// A free transmit slot set aside, its virtio-net header written.
#[derive(Debug)]
pub(super) struct TxSpare(AtomicU32);

impl Default for TxSpare {
    fn default() -> Self {
        Self(AtomicU32::new(NO_SPARE))
    }
}

impl TxSpare {
    /// Takes the spare slot and its header's length, if there is one.
    pub fn take(&self) -> Option<(u16, u16)> {
        let word = self.0.swap(NO_SPARE, Ordering::AcqRel);
        (word != NO_SPARE).then_some(((word >> 16) as u16, word as u16))
    }

    /// Sets `slot` aside; `false` (nothing changed) if one is set aside
    /// already.
    pub fn offer(&self, slot: u16, header: u16) -> bool {
        let word = u32::from(slot) << 16 | u32::from(header);
        self.0
            .compare_exchange(NO_SPARE, word, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}
