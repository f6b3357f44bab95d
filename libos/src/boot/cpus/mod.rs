//! Which CPUs the machine has: the application processors' local APIC ids,
//! read from the firmware's tables before they are started.
//!
//! Sources, in the order the kernel tries them ([`discover`]):
//!
//! - the ACPI MADT ([`acpi`]), found from the RSDP the PVH start info names
//!   or by scanning the BIOS area — what `q35`, `pc` and `microvm` with
//!   ACPI provide;
//! - the Intel MultiProcessor Specification table ([`mptable`]) — what
//!   qboot writes at `0x9fc00` on QEMU `microvm` with `acpi=off`, the
//!   machine Cloister's tools start;
//! - neither: the kernel falls back to a count from CPUID and assumes the
//!   ids `0..count` ([`CpuList::contiguous`]), which is how QEMU numbers
//!   vCPUs of a flat topology (a guess, logged as such).
//!
//! Every table is guest-physical memory written by firmware the guest does
//! not trust to be well-formed: lengths are bounded, checksums checked, and
//! a bad table is an error ([`CpuTableError`]), never a panic (the host
//! tests mutate fixtures at random).

pub mod acpi;
pub mod mptable;
#[cfg(test)]
mod tests;

use crate::boot::pvh::PhysReader;

/// The most CPUs Cloister keeps track of; more are counted in
/// [`CpuList::dropped`].
pub const MAX_CPUS: usize = 64;

/// The largest firmware table read: a sanity bound on the lengths the
/// tables claim, and room for far more than [`MAX_CPUS`] entries (a MADT
/// with 64 x2APIC entries is about 1.1 KiB). A longer table is refused as
/// malformed.
pub const MAX_TABLE_BYTES: usize = 4096;

/// Where a [`CpuList`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSource {
    /// ACPI's Multiple APIC Description Table.
    AcpiMadt,
    /// The MultiProcessor Specification configuration table.
    MpTable,
    /// No table: a CPU count from CPUID, ids assumed contiguous.
    Cpuid,
}

impl CpuSource {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::AcpiMadt => "ACPI MADT",
            Self::MpTable => "MP table",
            Self::Cpuid => "CPUID count (ids assumed 0..n)",
        }
    }
}

/// Why a table was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuTableError {
    /// No such table in the places searched.
    NotFound,
    /// Memory the table points to could not be read.
    Unreadable {
        /// Which structure.
        what: &'static str,
        /// Its guest-physical address.
        paddr: u64,
    },
    /// A checksum did not add up to zero.
    BadChecksum(&'static str),
    /// A length or entry that does not fit the structure.
    Malformed(&'static str),
}

impl core::fmt::Display for CpuTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Unreadable { what, paddr } => write!(f, "cannot read the {what} at {paddr:#x}"),
            Self::BadChecksum(what) => write!(f, "bad checksum in the {what}"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

/// The enabled CPUs' local APIC ids, in table order, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList {
    ids: [u32; MAX_CPUS],
    len: usize,
    /// Where the list came from.
    pub source: CpuSource,
    /// Enabled CPUs beyond [`MAX_CPUS`] (not kept).
    pub dropped: u32,
    /// The boot processor's id, when the table marks it (MP table only).
    pub boot_cpu: Option<u32>,
}

impl CpuList {
    /// An empty list from `source`.
    pub fn new(source: CpuSource) -> Self {
        Self {
            ids: [0; MAX_CPUS],
            len: 0,
            source,
            dropped: 0,
            boot_cpu: None,
        }
    }

    /// `count` CPUs with ids `0..count` (the CPUID fallback).
    pub fn contiguous(count: u32) -> Self {
        let mut list = Self::new(CpuSource::Cpuid);
        for id in 0..count {
            list.push(id);
        }
        list
    }

    /// Adds `apic_id` unless it is already there; counts it in
    /// [`CpuList::dropped`] when the list is full.
    pub fn push(&mut self, apic_id: u32) {
        if self.ids().contains(&apic_id) {
            return;
        }
        match self.ids.get_mut(self.len) {
            Some(slot) => {
                *slot = apic_id;
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    /// The ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// How many CPUs the list holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Finds the CPUs from the firmware's tables: the MADT first (through
/// `rsdp_paddr` when the loader gave one, else a scan), then the MP table.
/// Returns the MADT's error when neither is there, except that a missing
/// MADT reports the MP table's error (the more telling one on `microvm`).
pub fn discover(mem: &dyn PhysReader, rsdp_paddr: u64) -> Result<CpuList, CpuTableError> {
    match acpi::find_cpus(mem, rsdp_paddr) {
        Ok(list) if !list.is_empty() => return Ok(list),
        Ok(_) | Err(CpuTableError::NotFound) => {}
        Err(e) => {
            // A broken MADT: the MP table may still be good.
            return mptable::find_cpus(mem).or(Err(e));
        }
    }
    mptable::find_cpus(mem)
}

/// Reads a little-endian `u16` at `off` (0 when out of range: callers
/// check lengths first).
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut v = [0u8; 2];
    if let Some(s) = b.get(off..off.saturating_add(2)) {
        v.copy_from_slice(s);
    }
    u16::from_le_bytes(v)
}

/// Reads a little-endian `u32` at `off` (0 when out of range).
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

/// Reads a little-endian `u64` at `off` (0 when out of range).
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// Whether the bytes add up to 0 modulo 256.
pub(crate) fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |sum, &x| sum.wrapping_add(x)) == 0
}

/// A firmware table copied out of guest memory: at most
/// [`MAX_TABLE_BYTES`], on the stack (the kernel reads the tables before
/// its heap exists).
pub(crate) struct TableBuf {
    bytes: [u8; MAX_TABLE_BYTES],
    len: usize,
}

impl core::ops::Deref for TableBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads `len` bytes at `paddr` (at most [`MAX_TABLE_BYTES`]).
pub(crate) fn read_table(
    mem: &dyn PhysReader,
    what: &'static str,
    paddr: u64,
    len: usize,
) -> Result<TableBuf, CpuTableError> {
    if len > MAX_TABLE_BYTES {
        return Err(CpuTableError::Malformed(what));
    }
    let mut buf = TableBuf {
        bytes: [0; MAX_TABLE_BYTES],
        len,
    };
    if paddr.checked_add(len as u64).is_none() || !mem.read_phys(paddr, &mut buf.bytes[..len]) {
        return Err(CpuTableError::Unreadable { what, paddr });
    }
    Ok(buf)
}

/// Bytes read at a time by [`scan`].
const SCAN_CHUNK_BYTES: usize = 1024;

/// Scans `[start, start + len)` for a 16-byte-aligned `signature` (at most
/// 16 bytes) whose structure `valid` accepts; returns its address. Reads
/// 1 KiB at a time (a chunk that cannot be read is skipped); an aligned
/// signature never straddles two chunks.
pub(crate) fn scan(
    mem: &dyn PhysReader,
    start: u64,
    len: usize,
    signature: &[u8],
    valid: impl Fn(u64) -> bool,
) -> Option<u64> {
    if signature.len() > 16 {
        return None;
    }
    let mut chunk = [0u8; SCAN_CHUNK_BYTES];
    for chunk_off in (0..len).step_by(SCAN_CHUNK_BYTES) {
        let bytes = (len - chunk_off).min(SCAN_CHUNK_BYTES);
        let chunk_paddr = start.checked_add(chunk_off as u64)?;
        if !mem.read_phys(chunk_paddr, &mut chunk[..bytes]) {
            continue;
        }
        let found = (0..bytes)
            .step_by(16)
            .filter(|&off| chunk[..bytes].get(off..off + signature.len()) == Some(signature))
            .map(|off| chunk_paddr + off as u64)
            .find(|&paddr| valid(paddr));
        if found.is_some() {
            return found;
        }
    }
    None
}
