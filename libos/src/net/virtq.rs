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

#[cfg(test)]
mod tests {
    use super::*;

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
