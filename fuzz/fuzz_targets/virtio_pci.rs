//! Fuzz the virtio-pci capability walk: any 256-byte configuration space
//! and any BAR sizes (what a confidential VM's host may answer) must give
//! a layout whose structures lie inside their BARs, or an error — never a
//! panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libos::net::virtio_pci::{COMMON_BYTES, notify_offset, parse};

fuzz_target!(|data: &[u8]| {
    let mut space = [0u8; 256];
    let (bars_raw, rest) = data.split_at(data.len().min(48));
    let n = rest.len().min(256);
    space[..n].copy_from_slice(&rest[..n]);
    let bars: [u64; 6] = core::array::from_fn(|i| {
        let mut b = [0u8; 8];
        let s = &bars_raw[(i * 8).min(bars_raw.len())..((i + 1) * 8).min(bars_raw.len())];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    });
    let read = |at: u8| {
        let at = usize::from(at & !3);
        u32::from_le_bytes(space[at..at + 4].try_into().unwrap())
    };
    if let Ok(l) = parse(read, &bars) {
        let tables = l.msix.map(|m| m.table);
        for s in [Some(l.common), Some(l.notify), Some(l.isr), l.device, tables].into_iter().flatten() {
            assert!(u64::from(s.offset) + u64::from(s.length) <= bars[usize::from(s.bar)]);
        }
        assert!(l.common.length >= COMMON_BYTES);
        for q in [0u16, 1, u16::MAX] {
            if let Some(at) = notify_offset(l.notify.length, q, l.notify_multiplier) {
                assert!(u64::from(at) + 2 <= u64::from(l.notify.length));
            }
        }
    }
});
