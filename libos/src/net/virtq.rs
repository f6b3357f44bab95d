//! When a virtio device wants to hear of new buffers: the notification
//! rules of the split virtqueue (virtio 1.2, §2.7.7 and §2.7.10), for the
//! kernel's driver to decide each notification itself.
//!
//! With `VIRTIO_F_EVENT_IDX` negotiated, the device writes `avail_event`
//! (the last `u16` of the used ring) to say "notify me once the available
//! index moves past this value", and leaves it alone (stale) while it is
//! busy with the queue. The driver must notify if and only if the index
//! crossed that value since it last notified: [`need_event`], the rule of
//! Linux's `vring_need_event`, in wrapping `u16` arithmetic. Without the
//! feature the device sets bit 0 of the used ring's `flags`
//! (`VIRTQ_USED_F_NO_NOTIFY`) while it does not want notifications.
//!
//! `virtio-drivers` 0.13 tests `avail_idx >= avail_event + 1` instead. It
//! is right when the device has just asked, but once `avail_event` is
//! stale every new buffer notifies again: a receive queue whose device
//! has plenty of buffers gets a notification per buffer given back, one
//! device-register write each (an exit to the hypervisor on SEV-SNP and
//! TDX). [`RingAddrs`] locates the two indices, so the kernel can apply
//! [`need_event`] instead (`kernel/src/net/doorbell.rs`).

/// Whether a driver that last notified at available index `old` and has
/// now published `new` must notify a device whose `avail_event` is
/// `event`: true iff `event` lies in `[old, new)`, modulo 2^16
/// (`vring_need_event`). `old == new` never needs one.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// `VIRTQ_USED_F_NO_NOTIFY`: the used ring's `flags` bit by which a
/// device without `VIRTIO_F_EVENT_IDX` declines notifications.
pub const USED_F_NO_NOTIFY: u16 = 1;

/// `VIRTIO_F_EVENT_IDX`: feature bit 29.
pub const F_EVENT_IDX: u64 = 1 << 29;

/// The physical addresses of one split virtqueue's notification fields,
/// from the addresses a driver gives the device (`queue_set`): the driver
/// area is the available ring (`flags`, `idx`, `ring[size]`,
/// `used_event`), the device area the used ring (`flags`, `idx`,
/// `ring[size]` of 8-byte elements, `avail_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingAddrs {
    /// The available ring's `idx`: what the driver has published.
    pub avail_idx: u64,
    /// The used ring's `flags`.
    pub used_flags: u64,
    /// The used ring's `avail_event`.
    pub avail_event: u64,
}

impl RingAddrs {
    /// The fields of a queue of `size` entries with the given areas;
    /// `None` if an address would overflow or the size is not a valid
    /// split-queue size (1 to 32768).
    pub fn new(size: u32, driver_area: u64, device_area: u64) -> Option<Self> {
        if size == 0 || size > 32768 {
            return None;
        }
        let used_ring_bytes = u64::from(size).checked_mul(8)?;
        Some(Self {
            avail_idx: driver_area.checked_add(2)?,
            used_flags: device_area,
            avail_event: device_area.checked_add(4)?.checked_add(used_ring_bytes)?,
        })
    }
}

/// Where a virtqueue's notification register lies in its BAR on
/// virtio-pci (virtio 1.2, §4.1.4.4): `cap_offset + queue_notify_off ×
/// multiplier`, two bytes wide, from the notification capability (its
/// `offset` and `length` in the BAR, its `notify_off_multiplier`) and the
/// queue's `queue_notify_off`. `None` when that lies outside the
/// notification structure or the BAR (`bar_bytes`), or is not 2-byte
/// aligned — what a misbehaving device could announce.
///
/// A driver that computes it once per queue notifies with one register
/// write; `virtio-drivers` 0.13's PCI transport selects the queue and
/// reads `queue_notify_off` before every notification, three device
/// accesses (three exits to the hypervisor on SEV-SNP and TDX).
pub fn pci_notify_offset(
    cap_offset: u32,
    cap_length: u32,
    queue_notify_off: u16,
    multiplier: u32,
    bar_bytes: u64,
) -> Option<u64> {
    let within = u64::from(queue_notify_off).checked_mul(u64::from(multiplier))?;
    if within + 2 > u64::from(cap_length) {
        return None;
    }
    let offset = u64::from(cap_offset) + within;
    (offset + 2 <= bar_bytes && offset.is_multiple_of(2)).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pci_notify_register_is_found_and_kept_inside_its_structure() {
        // QEMU's virtio-net-pci: notification structure at 0x3000 of a
        // 16 KiB BAR, 4 KiB long, multiplier 4, queue i at offset i.
        assert_eq!(
            pci_notify_offset(0x3000, 0x1000, 0, 4, 0x4000),
            Some(0x3000)
        );
        assert_eq!(
            pci_notify_offset(0x3000, 0x1000, 1, 4, 0x4000),
            Some(0x3004)
        );
        // Multiplier 0: every queue shares one register.
        assert_eq!(
            pci_notify_offset(0x3000, 0x1000, 7, 0, 0x4000),
            Some(0x3000)
        );
        // The last two bytes of the structure, and one past them.
        assert_eq!(pci_notify_offset(0, 8, 3, 2, 8), Some(6));
        assert_eq!(pci_notify_offset(0, 8, 4, 2, 8), None);
        // Inside the structure but past the BAR (the structure claims too much).
        assert_eq!(pci_notify_offset(0x3ffe, 0x1000, 1, 4, 0x4000), None);
        // Odd offsets, huge products: refused, no overflow.
        assert_eq!(pci_notify_offset(0x3001, 0x1000, 0, 4, 0x4000), None);
        assert_eq!(
            pci_notify_offset(0, u32::MAX, u16::MAX, u32::MAX, u64::MAX),
            None
        );
        assert_eq!(
            pci_notify_offset(u32::MAX - 1, u32::MAX, 0, 4, u64::MAX),
            Some(u64::from(u32::MAX - 1))
        );
    }

    #[test]
    fn notifies_only_when_the_index_crossed_the_event() {
        // The device asked at 10 (it has seen buffers up to 10): one more
        // buffer (10 -> 11) must notify.
        assert!(need_event(10, 11, 10));
        // Several buffers at once, across the event.
        assert!(need_event(10, 14, 8));
        // A stale event: the device asked at 3, the driver notified at 8
        // since; the device is still busy. This is what virtio-drivers'
        // `avail_idx >= avail_event + 1` gets wrong (14 >= 4).
        assert!(!need_event(3, 14, 8));
        // The event ahead of the index: not yet.
        assert!(!need_event(20, 14, 8));
        // Nothing new: never.
        assert!(!need_event(8, 8, 8));
    }

    #[test]
    fn wraps_at_two_to_the_sixteen() {
        // Asked at 65534, index 65533 -> 1 (wrapped): crossed.
        assert!(need_event(65534, 1, 65533));
        // Asked at 65535, one buffer: 65535 -> 0.
        assert!(need_event(65535, 0, 65535));
        // virtio-drivers' comparison misses this one: 1 >= 65535 is false.
        assert!(need_event(65534, 1, 65534));
        // Stale across the wrap: asked at 65000, notified at 65530 since.
        assert!(!need_event(65000, 5, 65530));
    }

    #[test]
    fn agrees_with_the_interval_definition_everywhere_near_the_wrap() {
        // `event` in [old, new) modulo 2^16, by counting steps.
        for old in [0u16, 1, 100, 65530, 65535] {
            for step in 0u16..12 {
                let new = old.wrapping_add(step);
                for delta in 0u16..16 {
                    let event = old.wrapping_add(delta).wrapping_sub(2);
                    let inside = (0..step).any(|k| old.wrapping_add(k) == event);
                    assert_eq!(need_event(event, new, old), inside, "{event} {new} {old}");
                }
            }
        }
    }

    #[test]
    fn locates_the_fields_of_a_ring() {
        let r = RingAddrs::new(256, 0x1000, 0x3000).unwrap();
        assert_eq!(r.avail_idx, 0x1002);
        assert_eq!(r.used_flags, 0x3000);
        assert_eq!(r.avail_event, 0x3000 + 4 + 256 * 8);
        assert_eq!(RingAddrs::new(0, 0x1000, 0x3000), None);
        assert_eq!(RingAddrs::new(65536, 0x1000, 0x3000), None);
        assert_eq!(RingAddrs::new(16, u64::MAX - 1, 0x3000), None);
        assert_eq!(RingAddrs::new(16, 0x1000, u64::MAX - 64), None);
    }
}
