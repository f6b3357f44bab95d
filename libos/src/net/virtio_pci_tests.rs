//! Tests of [`super::parse`] and [`super::notify_offset`] over
//! configuration spaces built here: QEMU's `virtio-net-pci` layout, and
//! lists a hostile host could answer with.

use super::*;

/// A 256-byte configuration space.
struct Space([u8; 256]);

impl Space {
    /// Status says "capability list", the list starts at `first`.
    fn new(first: u8) -> Self {
        let mut s = Self([0; 256]);
        s.put(REG_STATUS_COMMAND, STATUS_CAPABILITIES);
        s.put(REG_CAPABILITIES, u32::from(first));
        s
    }

    fn put(&mut self, at: u8, v: u32) {
        let at = usize::from(at);
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A virtio capability at `at` linking to `next`.
    fn virtio(&mut self, at: u8, next: u8, cfg_type: u8, s: Structure, extra: Option<u32>) {
        let len: u32 = if extra.is_some() { 20 } else { 16 };
        self.put(
            at,
            u32::from(CAP_VENDOR) | u32::from(next) << 8 | len << 16 | u32::from(cfg_type) << 24,
        );
        self.put(at + 4, u32::from(s.bar));
        self.put(at + 8, s.offset);
        self.put(at + 12, s.length);
        if let Some(x) = extra {
            self.put(at + 16, x);
        }
    }

    fn read(&self) -> impl FnMut(u8) -> u32 + '_ {
        |at| {
            let at = usize::from(at & !3);
            u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
        }
    }
}

const fn st(bar: u8, offset: u32, length: u32) -> Structure {
    Structure {
        bar,
        offset,
        length,
    }
}

/// BAR1 4 KiB (MSI-X), BAR4 16 KiB (the virtio structures), as QEMU's.
const BARS: [u64; 6] = [0, 0x1000, 0, 0, 0x4000, 0];

/// QEMU's `virtio-net-pci` (modern): an MSI-X capability first, then
/// common, ISR, device, notify and the PCI-config access capability.
fn qemu() -> Space {
    let mut s = Space::new(0xb8);
    // MSI-X, next 0x40, 3 vectors; the table at BAR1 + 0, the PBA at + 0x800.
    s.put(0xb8, 0x11 | 0x40 << 8 | 2 << 16);
    s.put(0xbc, 1);
    s.put(0xc0, 0x801);
    s.virtio(0x40, 0x58, CFG_COMMON, st(4, 0, 0x1000), None);
    s.virtio(0x58, 0x70, CFG_ISR, st(4, 0x1000, 0x1000), None);
    s.virtio(0x70, 0x88, CFG_DEVICE, st(4, 0x2000, 0x1000), None);
    s.virtio(0x88, 0xa0, CFG_NOTIFY, st(4, 0x3000, 0x1000), Some(4));
    s.virtio(0xa0, 0x00, 5, st(0, 0, 0), None);
    s
}

#[test]
fn qemus_virtio_net_pci_layout_is_read() {
    let s = qemu();
    let layout = parse(s.read(), &BARS).unwrap();
    assert_eq!(
        layout,
        Layout {
            common: st(4, 0, 0x1000),
            notify: st(4, 0x3000, 0x1000),
            notify_multiplier: 4,
            isr: st(4, 0x1000, 0x1000),
            device: Some(st(4, 0x2000, 0x1000)),
            msix: Some(Msix {
                cap: 0xb8,
                entries: 3,
                table: st(1, 0, 48),
            }),
        }
    );
}

#[test]
fn an_msix_table_outside_its_bar_leaves_the_card_on_intx() {
    // 2048 vectors: 32 KiB of table in a 4 KiB BAR.
    let mut s = qemu();
    s.put(0xb8, 0x11 | 0x40 << 8 | 0x7ff << 16);
    let layout = parse(s.read(), &BARS).unwrap();
    assert_eq!(layout.msix, None);
    // The table in an unassigned BAR.
    let mut s = qemu();
    s.put(0xbc, 2);
    assert_eq!(parse(s.read(), &BARS).unwrap().msix, None);
    // No MSI-X capability at all.
    let mut s = qemu();
    s.put(REG_CAPABILITIES, 0x40);
    assert_eq!(parse(s.read(), &BARS).unwrap().msix, None);
}

#[test]
fn bars_are_placed_aligned_and_clear_of_others() {
    let req = |index, bytes| BarRequest { index, bytes };
    // virtio-net-pci: BAR1 4 KiB, BAR4 16 KiB; AHCI's BAR at 0xe000_1000.
    let placed = place_bars(
        &[req(1, 0x1000), req(4, 0x4000)],
        &[(0xe000_1000, 0xe000_2000)],
        (0xe000_0000, 0xfec0_0000),
    )
    .unwrap();
    assert_eq!(placed, [(1, 0xe000_0000), (4, 0xe000_4000)]);
    // Nothing fits: refused.
    assert_eq!(place_bars(&[req(0, 0x2000)], &[], (0x1000, 0x2000)), None);
    // A size that is not a power of two, or below 16 bytes.
    assert_eq!(place_bars(&[req(0, 0x3000)], &[], (0, 1 << 32)), None);
    assert_eq!(place_bars(&[req(0, 8)], &[], (0, 1 << 32)), None);
    // At the top of the address space: no overflow.
    assert_eq!(place_bars(&[req(0, 1 << 63)], &[], (1, u64::MAX)), None);
}

#[test]
fn random_placements_never_overlap() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2_000 {
        let bars: Vec<BarRequest> = (0..(next() % 6) as u8)
            .map(|index| BarRequest {
                index,
                bytes: 1 << (4 + next() % 20),
            })
            .collect();
        let taken: Vec<(u64, u64)> = (0..next() % 4)
            .map(|_| {
                let s = 0xe000_0000 + (next() % 0x1000_0000);
                (s, s + 1 + next() % 0x10_0000)
            })
            .collect();
        let window = (0xe000_0000, 0xfec0_0000);
        if let Some(placed) = place_bars(&bars, &taken, window) {
            assert_eq!(placed.len(), bars.len());
            let mut all: Vec<(u64, u64)> = taken.clone();
            for (i, at) in &placed {
                let bytes = bars[usize::from(*i)].bytes;
                assert_eq!(at % bytes, 0, "BAR{i} at {at:#x} is not aligned");
                assert!(*at >= window.0 && at + bytes <= window.1);
                for &(s, e) in &all {
                    assert!(
                        at + bytes <= s || e <= *at,
                        "BAR{i} overlaps {s:#x}..{e:#x}"
                    );
                }
                all.push((*at, at + bytes));
            }
        }
    }
}

#[test]
fn the_first_structure_of_each_type_is_taken() {
    let mut s = qemu();
    // A second common configuration after the first: ignored.
    s.virtio(0xa0, 0xc8, 5, st(0, 0, 0), None);
    s.virtio(0xc8, 0x00, CFG_COMMON, st(4, 0x800, 0x100), None);
    assert_eq!(parse(s.read(), &BARS).unwrap().common, st(4, 0, 0x1000));
}

#[test]
fn a_device_without_its_own_configuration_is_fine() {
    let mut s = qemu();
    s.virtio(0x70, 0x88, 7, st(4, 0x2000, 0x1000), None);
    assert_eq!(parse(s.read(), &BARS).unwrap().device, None);
}

#[test]
fn broken_lists_end_the_walk_with_an_error() {
    let mut s = qemu();
    s.put(REG_STATUS_COMMAND, 0);
    assert_eq!(parse(s.read(), &BARS), Err(LayoutError::NoCapabilities));
    // A loop back to an entry already seen.
    let mut s = qemu();
    s.virtio(0xa0, 0x40, 5, st(0, 0, 0), None);
    assert_eq!(parse(s.read(), &BARS), Err(LayoutError::BadList));
    // An entry pointing at itself.
    let mut s = Space::new(0x40);
    s.virtio(0x40, 0x40, CFG_COMMON, st(4, 0, 0x1000), None);
    assert_eq!(parse(s.read(), &BARS), Err(LayoutError::BadList));
    // Into the header.
    let mut s = Space::new(0x10);
    s.put(0x10, 0);
    assert_eq!(parse(s.read(), &BARS), Err(LayoutError::BadList));
    // The low two bits of a pointer are reserved and ignored.
    let mut s = qemu();
    s.put(REG_CAPABILITIES, 0xb8 | 3);
    assert!(parse(s.read(), &BARS).is_ok());
}

#[test]
fn structures_outside_their_bar_or_too_short_are_refused() {
    let cases: [(u8, Structure, Option<u32>, LayoutError); 6] = [
        (
            CFG_COMMON,
            st(4, 0x3f00, 0x200),
            None,
            LayoutError::BadStructure("common configuration"),
        ),
        (
            CFG_COMMON,
            st(4, 0, 0x20),
            None,
            LayoutError::BadStructure("common configuration"),
        ),
        (
            CFG_COMMON,
            st(7, 0, 0x1000),
            None,
            LayoutError::BadStructure("common configuration"),
        ),
        (
            CFG_COMMON,
            st(2, 0, 0x1000),
            None,
            LayoutError::BadStructure("common configuration"),
        ),
        (
            CFG_NOTIFY,
            st(4, 0xffff_f000, 0x2000),
            Some(4),
            LayoutError::BadStructure("notification"),
        ),
        (
            CFG_NOTIFY,
            st(4, 0x3000, 0x1000),
            Some(3),
            LayoutError::OddMultiplier,
        ),
    ];
    for (cfg_type, bad, extra, want) in cases {
        let mut s = qemu();
        let at = if cfg_type == CFG_COMMON { 0x40 } else { 0x88 };
        let next = if cfg_type == CFG_COMMON { 0x58 } else { 0xa0 };
        s.virtio(at, next, cfg_type, bad, extra);
        assert_eq!(parse(s.read(), &BARS), Err(want), "{bad:?}");
    }
    // A notification capability too short for its multiplier is skipped:
    // the structure is then missing.
    let mut s = qemu();
    s.virtio(0x88, 0xa0, CFG_NOTIFY, st(4, 0x3000, 0x1000), None);
    assert_eq!(
        parse(s.read(), &BARS),
        Err(LayoutError::Missing("notification"))
    );
}

#[test]
fn any_configuration_space_is_parsed_without_a_panic_or_a_hang() {
    // Random spaces, and QEMU's with random bytes changed: every answer is
    // a layout inside the BARs or an error.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut layouts = 0;
    for round in 0..20_000 {
        let mut s = if round % 2 == 0 {
            qemu()
        } else {
            Space::new(0x40)
        };
        for _ in 0..(next() % 24) {
            let at = (next() % 256) as usize;
            s.0[at] = next() as u8;
        }
        let bars: [u64; 6] = core::array::from_fn(|_| match next() % 3 {
            0 => 0,
            1 => 0x4000,
            _ => next() & 0xffff_ffff,
        });
        if let Ok(l) = parse(s.read(), &bars) {
            layouts += 1;
            let mut inside = [l.common, l.notify, l.isr].to_vec();
            inside.extend(l.device);
            inside.extend(l.msix.map(|m| m.table));
            for st in inside {
                let end = u64::from(st.offset) + u64::from(st.length);
                assert!(end <= bars[usize::from(st.bar)], "{st:?} outside {bars:?}");
            }
            assert!(l.common.length >= COMMON_BYTES && l.notify_multiplier % 2 == 0);
        }
    }
    assert!(
        layouts > 100,
        "only {layouts} spaces parsed: the mutations are too harsh"
    );
}

#[test]
fn the_notify_register_is_kept_inside_its_structure() {
    // QEMU: multiplier 4, queue i at 4 i.
    assert_eq!(notify_offset(0x1000, 0, 4), Some(0));
    assert_eq!(notify_offset(0x1000, 1, 4), Some(4));
    // Multiplier 0: every queue shares one register.
    assert_eq!(notify_offset(0x1000, 7, 0), Some(0));
    // The last two bytes, and one past them.
    assert_eq!(notify_offset(8, 3, 2), Some(6));
    assert_eq!(notify_offset(8, 4, 2), None);
    // Huge products: refused, no overflow.
    assert_eq!(notify_offset(u32::MAX, u16::MAX, u32::MAX), None);
}
