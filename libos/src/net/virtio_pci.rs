//! Where a virtio-pci function keeps its structures (virtio 1.2, §4.1.4):
//! the capability list of its configuration space read and checked, for
//! the kernel's PCI transport (`kernel/src/net/pci.rs`).
//!
//! On SEV-SNP and TDX the host answers every configuration read and owns
//! the BARs, so nothing it says is trusted: [`parse`] walks at most
//! [`MAX_CAPABILITIES`] entries, never revisits one (a loop ends the walk
//! with an error instead of hanging the boot), and accepts a structure
//! only inside the BAR it names, with the length the driver needs. The
//! kernel then reads each structure through a register range of exactly
//! that length, so a later lie about a register's contents can at most
//! make the device misbehave, not move an access elsewhere.
//!
//! [`notify_offset`] does the same for a queue's notification register.
//! The MSI-X table ([`Msix`]) is taken only when it lies inside its BAR;
//! otherwise the card keeps its INTx line. [`place_bars`] gives BARs
//! addresses where no firmware did (an IGVM launch has none).

/// Capabilities walked at most: a 256-byte configuration space holds at
/// most 48 (each at least 4 bytes, from offset 0x40).
pub const MAX_CAPABILITIES: usize = 48;

/// The capability list pointer.
pub const REG_CAPABILITIES: u8 = 0x34;
/// The status register (high half of the dword at 0x04); bit 4 says a
/// capability list exists.
pub const REG_STATUS_COMMAND: u8 = 0x04;
const STATUS_CAPABILITIES: u32 = 1 << (16 + 4);
/// Vendor-specific capability: virtio's structures.
const CAP_VENDOR: u8 = 0x09;
/// The MSI-X capability.
const CAP_MSIX: u8 = 0x11;
/// Bytes of one MSI-X table entry.
pub const MSIX_ENTRY_BYTES: u32 = 16;
/// `cfg_type`s.
const CFG_COMMON: u8 = 1;
const CFG_NOTIFY: u8 = 2;
const CFG_ISR: u8 = 3;
const CFG_DEVICE: u8 = 4;

/// Bytes of the common configuration structure (through
/// `queue_device`): what the driver reads and writes.
pub const COMMON_BYTES: u32 = 0x38;

/// One structure: `length` bytes at `offset` in BAR `bar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    /// BAR index, 0–5.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// A function's virtio structures, each inside its BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Common configuration, at least [`COMMON_BYTES`] long.
    pub common: Structure,
    /// Notification registers, at least 2 bytes.
    pub notify: Structure,
    /// `notify_off_multiplier`: bytes between queues' registers.
    pub notify_multiplier: u32,
    /// The ISR status byte.
    pub isr: Structure,
    /// Device-specific configuration, if the device has one.
    pub device: Option<Structure>,
    /// The MSI-X capability, if there is one whose table lies inside its
    /// BAR.
    pub msix: Option<Msix>,
}

/// A function's MSI-X capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msix {
    /// Where the capability is in configuration space (its message
    /// control register is the high half of that dword).
    pub cap: u8,
    /// Table entries, 1–2048.
    pub entries: u16,
    /// The table: [`MSIX_ENTRY_BYTES`] per entry.
    pub table: Structure,
}

/// Why a function's capabilities are not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The status register says there is no capability list.
    NoCapabilities,
    /// The list points below 0x40, is not 4-aligned, revisits an entry
    /// or goes on past [`MAX_CAPABILITIES`].
    BadList,
    /// A required structure (common, notify, ISR) is missing.
    Missing(&'static str),
    /// A structure names a BAR that is not 0–5 or not a memory BAR, or
    /// lies (partly) outside it, or is shorter than the driver needs.
    BadStructure(&'static str),
    /// `notify_off_multiplier` is odd (registers are 16 bits wide).
    OddMultiplier,
}

/// Reads the capability list of one function through `read` (a 32-bit
/// configuration-space read at a 4-aligned offset) and checks each
/// structure against `bar_bytes` (each BAR's size in bytes, 0 for an
/// unassigned or I/O BAR). The first structure of each type is taken, as
/// virtio 1.2 §4.1.4 asks.
pub fn parse(mut read: impl FnMut(u8) -> u32, bar_bytes: &[u64; 6]) -> Result<Layout, LayoutError> {
    if read(REG_STATUS_COMMAND) & STATUS_CAPABILITIES == 0 {
        return Err(LayoutError::NoCapabilities);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut msix = None;
    let mut seen = [false; 64];
    // The low two bits of each pointer are reserved (PCI 3.0, §6.7).
    let mut next = (read(REG_CAPABILITIES) as u8) & !3;
    let mut walked = 0;
    while next != 0 {
        let slot = usize::from(next / 4);
        if next < 0x40 || !next.is_multiple_of(4) || seen[slot] || walked == MAX_CAPABILITIES {
            return Err(LayoutError::BadList);
        }
        seen[slot] = true;
        walked += 1;
        let header = read(next);
        let (id, link, len, cfg_type) = (
            header as u8,
            (header >> 8) as u8,
            (header >> 16) as u8,
            (header >> 24) as u8,
        );
        if id == CAP_MSIX && msix.is_none() && usize::from(next) + 12 <= 256 {
            let entries = (header >> 16) as u16 % 0x800 + 1;
            let table = read(next + 4);
            msix = Some(Msix {
                cap: next,
                entries,
                table: Structure {
                    bar: (table & 7) as u8,
                    offset: table & !7,
                    length: u32::from(entries) * MSIX_ENTRY_BYTES,
                },
            });
        }
        // The fields after the header must lie in configuration space.
        if id == CAP_VENDOR && len >= 16 && usize::from(next) + usize::from(len) <= 256 {
            let s = Structure {
                bar: read(next + 4) as u8,
                offset: read(next + 8),
                length: read(next + 12),
            };
            match cfg_type {
                CFG_COMMON if common.is_none() => common = Some(s),
                CFG_NOTIFY if notify.is_none() && len >= 20 => {
                    notify = Some((s, read(next + 16)));
                }
                CFG_ISR if isr.is_none() => isr = Some(s),
                CFG_DEVICE if device.is_none() => device = Some(s),
                _ => {}
            }
        }
        next = link & !3;
    }
    let checked = |s: Option<Structure>, what: &'static str, least: u32| {
        let s = s.ok_or(LayoutError::Missing(what))?;
        let bar = bar_bytes.get(usize::from(s.bar)).copied().unwrap_or(0);
        let end = u64::from(s.offset) + u64::from(s.length);
        if bar == 0 || end > bar || s.length < least {
            return Err(LayoutError::BadStructure(what));
        }
        Ok(s)
    };
    let (notify_s, multiplier) = match notify {
        Some((s, m)) => (Some(s), m),
        None => (None, 0),
    };
    let layout = Layout {
        common: checked(common, "common configuration", COMMON_BYTES)?,
        notify: checked(notify_s, "notification", 2)?,
        notify_multiplier: multiplier,
        isr: checked(isr, "ISR status", 1)?,
        device: match device {
            Some(d) => Some(checked(Some(d), "device configuration", 1)?),
            None => None,
        },
        msix: msix.filter(|m| checked(Some(m.table), "MSI-X table", MSIX_ENTRY_BYTES).is_ok()),
    };
    if !multiplier.is_multiple_of(2) {
        return Err(LayoutError::OddMultiplier);
    }
    Ok(layout)
}

/// Where a virtqueue's notification register lies in the notification
/// structure (virtio 1.2, §4.1.4.4): `queue_notify_off × multiplier`, two
/// bytes wide; `None` when that is outside the structure (`length`
/// bytes) — what a misbehaving device could announce.
pub fn notify_offset(length: u32, queue_notify_off: u16, multiplier: u32) -> Option<u32> {
    let within = u64::from(queue_notify_off).checked_mul(u64::from(multiplier))?;
    (within + 2 <= u64::from(length)).then_some(within as u32)
}

/// One memory BAR to place: its index, size (a power of two, at least
/// 16) and whether it takes 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarRequest {
    /// BAR index, 0–5.
    pub index: u8,
    /// Size in bytes.
    pub bytes: u64,
}

/// Addresses for `bars` inside `window` (`[start, end)`), each naturally
/// aligned and clear of every range in `taken` (other functions' BARs,
/// each `[start, end)`), largest first so that alignment wastes least;
/// `None` if they do not fit or a size is not a power of two. What a
/// firmware does at boot; the kernel does it when none did.
pub fn place_bars(
    bars: &[BarRequest],
    taken: &[(u64, u64)],
    window: (u64, u64),
) -> Option<alloc::vec::Vec<(u8, u64)>> {
    let mut order: alloc::vec::Vec<BarRequest> = bars.to_vec();
    order.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.index.cmp(&b.index)));
    let mut used: alloc::vec::Vec<(u64, u64)> = taken.to_vec();
    let mut placed = alloc::vec::Vec::new();
    for bar in order {
        if !bar.bytes.is_power_of_two() || bar.bytes < 16 {
            return None;
        }
        let mut at = window.0.checked_next_multiple_of(bar.bytes)?;
        loop {
            let end = at.checked_add(bar.bytes)?;
            if end > window.1 {
                return None;
            }
            match used.iter().find(|&&(s, e)| s < end && at < e) {
                // Past the range in the way, aligned again.
                Some(&(_, e)) => at = e.checked_next_multiple_of(bar.bytes)?,
                None => break,
            }
        }
        used.push((at, at + bar.bytes));
        placed.push((bar.index, at));
    }
    placed.sort();
    Some(placed)
}

#[cfg(test)]
#[path = "virtio_pci_tests.rs"]
mod tests;
