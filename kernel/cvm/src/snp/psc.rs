//! Page-state changes through the GHCB (GHCB spec #56421, the "SNP Page State
//! Change" event and its descriptor table) and `PVALIDATE` over ranges (AMD
//! APM vol. 3, `PVALIDATE`; Linux `arch/x86/coco/sev/core.c`).
//!
//! A page-state-change descriptor sits in the GHCB's shared buffer: an
//! 8-byte header (`cur_entry` u16, `end_entry` u16, reserved u32) and up
//! to [`MAX_ENTRIES`] 8-byte entries (bits 11:0 `cur_page`, 51:12 GFN,
//! 55:52 operation, 56 page size (1 = 2 MiB), 63:57 reserved). The guest
//! points `SW_SCRATCH` at it and exits with [`exit_code::PSC`]; the
//! hypervisor processes entries from `cur_entry`, advancing it, and may
//! return before the end, in which case the guest exits again. A host
//! that moves backwards, sets reserved bits, reports an error or stops
//! making progress gets an error.
//!
//! [`batches`] splits a physical range into descriptors (2 MiB entries
//! where a whole aligned block fits, 4 KiB elsewhere); [`change_state`]
//! runs them; [`validate_range`] runs `PVALIDATE` with the size-mismatch
//! fallback (a 2 MiB validation the RMP holds as 4 KiB pages is retried
//! page by page).

use alloc::vec::Vec;

use super::ghcb::{Field, Ghcb, SHARED_BUFFER_BYTES, SHARED_BUFFER_OFFSET, exit_code};
use super::msr_protocol::PageState;
use super::{Error, GhcbProtocol, Result};

/// Entries that fit the shared buffer after the header ((2032 - 8) / 8).
pub const MAX_ENTRIES: usize = 253;
/// Bytes of a 4 KiB page.
pub const PAGE_4K: u64 = 4096;
/// Bytes of a 2 MiB page.
pub const PAGE_2M: u64 = 2 << 20;
/// A host that returns this many times in a row without processing an
/// entry (or a 4 KiB part of one) is treated as broken.
pub const MAX_STALLED_EXITS: u32 = 16;

/// Page size of an entry or a `PVALIDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB.
    Size4K,
    /// 2 MiB.
    Size2M,
}

impl PageSize {
    /// Bytes in a page of this size.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Size4K => PAGE_4K,
            Self::Size2M => PAGE_2M,
        }
    }
}

/// One descriptor entry (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(pub u64);

impl Entry {
    /// An entry for the page at frame `gfn` (`None` if it does not fit 40
    /// bits).
    pub fn new(gfn: u64, state: PageState, size: PageSize) -> Option<Self> {
        if gfn >> 40 != 0 {
            return None;
        }
        Some(Self(
            (u64::from(size == PageSize::Size2M) << 56) | ((state as u64) << 52) | (gfn << 12),
        ))
    }

    /// The 4 KiB pages of a 2 MiB entry already processed (bits 11:0).
    pub fn cur_page(self) -> u16 {
        (self.0 & 0xfff) as u16
    }

    /// The frame number (bits 51:12).
    pub fn gfn(self) -> u64 {
        (self.0 >> 12) & ((1 << 40) - 1)
    }

    /// The operation (bits 55:52): 1 private, 2 shared, 3 PSMASH, 4
    /// UNSMASH.
    pub fn operation(self) -> u8 {
        ((self.0 >> 52) & 0xf) as u8
    }

    /// The page size (bit 56).
    pub fn size(self) -> PageSize {
        if self.0 & (1 << 56) != 0 {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        }
    }
}

/// A page-state-change descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The first entry the hypervisor is to process.
    pub cur_entry: u16,
    /// The last entry (inclusive).
    pub end_entry: u16,
    /// The entries (at most [`MAX_ENTRIES`], at least one).
    pub entries: Vec<Entry>,
}

impl Descriptor {
    /// Writes the descriptor into `buf` (the GHCB's shared buffer), the
    /// bytes after the last entry zeroed.
    pub fn write(&self, buf: &mut [u8]) -> Result<()> {
        let bytes = 8 + 8 * self.entries.len();
        if self.entries.len() > MAX_ENTRIES || buf.len() < bytes {
            return Err(Error::InvalidArgument);
        }
        buf.fill(0);
        buf[0..2].copy_from_slice(&self.cur_entry.to_le_bytes());
        buf[2..4].copy_from_slice(&self.end_entry.to_le_bytes());
        for (i, entry) in self.entries.iter().enumerate() {
            buf[8 + 8 * i..16 + 8 * i].copy_from_slice(&entry.0.to_le_bytes());
        }
        Ok(())
    }

    /// Reads the header (`cur_entry`, `end_entry`, reserved) from `buf`.
    pub fn read_header(buf: &[u8]) -> Result<(u16, u16, u32)> {
        let header: &[u8; 8] = buf
            .get(..8)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::InvalidArgument)?;
        Ok((
            u16::from_le_bytes([header[0], header[1]]),
            u16::from_le_bytes([header[2], header[3]]),
            u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
        ))
    }

    /// Reads entry `index` from `buf`.
    pub fn read_entry(buf: &[u8], index: usize) -> Result<Entry> {
        let at = index
            .checked_mul(8)
            .and_then(|o| o.checked_add(8))
            .ok_or(Error::InvalidArgument)?;
        let bytes: [u8; 8] = buf
            .get(at..at + 8)
            .and_then(|e| e.try_into().ok())
            .ok_or(Error::InvalidArgument)?;
        Ok(Entry(u64::from_le_bytes(bytes)))
    }
}

/// Checks that `[paddr, paddr + bytes)` is page aligned and addressable,
/// returning its end.
fn range_end(paddr: u64, bytes: u64) -> Result<u64> {
    if !paddr.is_multiple_of(PAGE_4K) || !bytes.is_multiple_of(PAGE_4K) {
        return Err(Error::InvalidArgument);
    }
    let end = paddr.checked_add(bytes).ok_or(Error::InvalidArgument)?;
    if end > 1 << 52 {
        return Err(Error::InvalidArgument);
    }
    Ok(end)
}

/// The pages covering `[paddr, end)`: 2 MiB where a whole aligned block
/// fits, 4 KiB elsewhere.
fn pages(paddr: u64, end: u64) -> impl Iterator<Item = (u64, PageSize)> {
    let mut p = paddr;
    core::iter::from_fn(move || {
        if p >= end {
            return None;
        }
        let size = if p.is_multiple_of(PAGE_2M) && end - p >= PAGE_2M {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        };
        let page = (p, size);
        p += size.bytes();
        Some(page)
    })
}

/// Splits the page-aligned range `[paddr, paddr + bytes)` into
/// descriptors of at most [`MAX_ENTRIES`] entries that make it `state`.
pub fn batches(paddr: u64, bytes: u64, state: PageState) -> Result<Vec<Descriptor>> {
    let end = range_end(paddr, bytes)?;
    let mut out: Vec<Descriptor> = Vec::new();
    for (p, size) in pages(paddr, end) {
        let entry = Entry::new(p / PAGE_4K, state, size).ok_or(Error::InvalidArgument)?;
        match out.last_mut() {
            Some(d) if d.entries.len() < MAX_ENTRIES => d.entries.push(entry),
            _ => out.push(Descriptor {
                cur_entry: 0,
                end_entry: 0,
                entries: alloc::vec![entry],
            }),
        }
    }
    for d in &mut out {
        // At most 253 entries: the index fits.
        d.end_entry = (d.entries.len() - 1) as u16;
    }
    Ok(out)
}

/// Runs one descriptor through the hypervisor until it processed every
/// entry (see the module docs for what counts as misbehaviour).
pub fn run_descriptor(
    host: &mut impl GhcbProtocol,
    ghcb: &mut Ghcb,
    protocol_version: u16,
    descriptor: &Descriptor,
) -> Result<()> {
    ghcb.start(protocol_version);
    descriptor.write(ghcb.shared_buffer_mut())?;
    let (mut cur, end, _) = Descriptor::read_header(ghcb.shared_buffer())?;
    let mut cur_page = Descriptor::read_entry(ghcb.shared_buffer(), cur.into())?.cur_page();
    let scratch = host
        .ghcb_gpa()
        .checked_add(SHARED_BUFFER_OFFSET as u64)
        .ok_or(Error::InvalidArgument)?;
    let mut stalled = 0;
    while cur <= end {
        ghcb.start(protocol_version);
        ghcb.set(Field::SwScratch, scratch);
        ghcb.set_exit(exit_code::PSC, 0, 0);
        host.ghcb_exchange(ghcb);
        ghcb.check_result()?;
        match ghcb.raw(Field::SwExitInfo2) {
            0 => {}
            code => return Err(Error::HostError(code)),
        }
        let (new_cur, new_end, reserved) = Descriptor::read_header(ghcb.shared_buffer())?;
        if reserved != 0 {
            return Err(Error::Protocol("reserved bits set in the PSC header"));
        }
        if new_end != end || new_cur < cur {
            return Err(Error::Protocol(
                "the hypervisor moved the PSC window backwards",
            ));
        }
        let new_page = if usize::from(new_cur) < descriptor.entries.len() {
            Descriptor::read_entry(ghcb.shared_buffer(), new_cur.into())?.cur_page()
        } else {
            0
        };
        if new_cur == cur && new_page <= cur_page {
            stalled += 1;
            if stalled >= MAX_STALLED_EXITS {
                return Err(Error::Protocol("the hypervisor does not advance the PSC"));
            }
        } else {
            stalled = 0;
        }
        cur = new_cur;
        cur_page = new_page;
    }
    Ok(())
}

/// Makes `[paddr, paddr + bytes)` `state` through the GHCB, descriptor by
/// descriptor.
pub fn change_state(
    host: &mut impl GhcbProtocol,
    ghcb: &mut Ghcb,
    protocol_version: u16,
    paddr: u64,
    bytes: u64,
    state: PageState,
) -> Result<()> {
    debug_assert_eq!(8 + 8 * MAX_ENTRIES, SHARED_BUFFER_BYTES);
    for descriptor in batches(paddr, bytes, state)? {
        run_descriptor(host, ghcb, protocol_version, &descriptor)?;
    }
    Ok(())
}

/// What `PVALIDATE` returned (`EAX`, and whether `RFLAGS.CF` said the RMP
/// was left unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvalidateOutcome {
    /// `EAX`: 0 success, 1 `FAIL_INPUT`, 6 `FAIL_SIZEMISMATCH`.
    pub code: u32,
    /// `CF` set: the page already had the requested validated state.
    pub unchanged: bool,
}

/// `PVALIDATE` success.
pub const PVALIDATE_SUCCESS: u32 = 0;
/// `PVALIDATE`: bad input.
pub const PVALIDATE_FAIL_INPUT: u32 = 1;
/// `PVALIDATE`: a 2 MiB request on a page the RMP holds as 4 KiB pages.
pub const PVALIDATE_FAIL_SIZEMISMATCH: u32 = 6;

/// The `PVALIDATE` instruction on one page at physical address `paddr`
/// (the kernel turns it into the page's private mapping).
pub trait Pvalidate {
    /// Validates (`validate`) or rescinds the page.
    fn pvalidate(&mut self, paddr: u64, size: PageSize, validate: bool) -> PvalidateOutcome;
}

/// Validates or rescinds every page of `[paddr, paddr + bytes)`. A 2 MiB
/// request that fails with a size mismatch is retried as 512 4 KiB pages;
/// a page whose state did not change is an error when validating (a
/// host could otherwise make the guest accept a page twice and swap its
/// contents between the two), as Linux does.
pub fn validate_range(
    cpu: &mut impl Pvalidate,
    paddr: u64,
    bytes: u64,
    validate: bool,
) -> Result<()> {
    let end = range_end(paddr, bytes)?;
    for (p, size) in pages(paddr, end) {
        let outcome = cpu.pvalidate(p, size, validate);
        if outcome.code == PVALIDATE_FAIL_SIZEMISMATCH && size == PageSize::Size2M {
            for q in (p..p + PAGE_2M).step_by(PAGE_4K as usize) {
                check_pvalidate(cpu.pvalidate(q, PageSize::Size4K, validate), validate)?;
            }
        } else {
            check_pvalidate(outcome, validate)?;
        }
    }
    Ok(())
}

fn check_pvalidate(outcome: PvalidateOutcome, validate: bool) -> Result<()> {
    match outcome.code {
        PVALIDATE_SUCCESS if outcome.unchanged && validate => Err(Error::Protocol(
            "PVALIDATE found the page already validated",
        )),
        PVALIDATE_SUCCESS => Ok(()),
        code => Err(Error::HostError(code.into())),
    }
}

#[cfg(test)]
#[path = "psc_tests.rs"]
mod tests;
