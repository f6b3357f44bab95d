//! The SEV-SNP CPUID page (SEV-SNP firmware ABI #56860, "CPUID Reporting";
//! page type `SNP_PAGE_TYPE_CPUID` of `SNP_LAUNCH_UPDATE`): a table the
//! launch writes, which the PSP checks against the real CPU before the
//! guest starts, so its answers are trustworthy where the hypervisor's are
//! not.
//!
//! Layout (the same in Linux's `struct snp_cpuid_table` and COCONUT-SVSM's
//! `SnpCpuidTable`): a 16-byte header — `count: u32`, 12 reserved bytes —
//! then up to [`MAX_ENTRIES`] entries of [`ENTRY_BYTES`]: `eax_in`,
//! `ecx_in` (u32), `xcr0_in`, `xss_in` (u64), `eax`, `ebx`, `ecx`, `edx`
//! (u32), 8 reserved bytes. The host tool `cloister build --igvm` writes the
//! template ([`encode_template`]); the kernel reads the C-bit position from
//! leaf `0x8000_001F` ([`lookup`]).

use super::{Error, Result};

/// Size of the page.
pub const PAGE_BYTES: usize = 4096;
/// Bytes before the first entry.
pub const HEADER_BYTES: usize = 16;
/// Bytes of one entry.
pub const ENTRY_BYTES: usize = 48;
/// Most entries the firmware accepts.
pub const MAX_ENTRIES: usize = 64;

/// One CPUID answer of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidEntry {
    /// The leaf (`EAX` in).
    pub leaf: u32,
    /// The sub-leaf (`ECX` in).
    pub subleaf: u32,
    /// `EAX`, `EBX`, `ECX`, `EDX` out.
    pub regs: [u32; 4],
}

fn u32_at(page: &[u8], offset: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&page[offset..offset + 4]);
    u32::from_le_bytes(raw)
}

/// The entries of `page` (a whole page); an error when the count exceeds
/// [`MAX_ENTRIES`] or the page is short.
pub fn entries(page: &[u8]) -> Result<impl Iterator<Item = CpuidEntry> + '_> {
    if page.len() < PAGE_BYTES {
        return Err(Error::InvalidArgument);
    }
    let count = u32_at(page, 0) as usize;
    if count > MAX_ENTRIES {
        return Err(Error::Protocol("CPUID page claims more than 64 entries"));
    }
    Ok((0..count).map(move |i| {
        let at = HEADER_BYTES + i * ENTRY_BYTES;
        CpuidEntry {
            leaf: u32_at(page, at),
            subleaf: u32_at(page, at + 4),
            regs: [
                u32_at(page, at + 24),
                u32_at(page, at + 28),
                u32_at(page, at + 32),
                u32_at(page, at + 36),
            ],
        }
    }))
}

/// The answer for `leaf`/`subleaf`, if the page has one.
pub fn lookup(page: &[u8], leaf: u32, subleaf: u32) -> Result<Option<[u32; 4]>> {
    Ok(entries(page)?
        .find(|e| e.leaf == leaf && e.subleaf == subleaf)
        .map(|e| e.regs))
}

/// The C-bit position the page reports (leaf `0x8000_001F`, `EBX[5:0]`),
/// checked to lie in 32..=63.
pub fn c_bit(page: &[u8]) -> Result<u8> {
    let regs = lookup(page, 0x8000_001f, 0)?
        .ok_or(Error::Protocol("CPUID page has no leaf 0x8000_001F"))?;
    let bit = (regs[1] & 0x3f) as u8;
    if !(32..=63).contains(&bit) {
        return Err(Error::Protocol(
            "CPUID page reports a C-bit outside 32..=63",
        ));
    }
    Ok(bit)
}

/// A page listing `leaves` (leaf, sub-leaf) with zero answers, for the
/// launch to fill: the hypervisor writes its values, the PSP checks them.
/// `None` when there are more than [`MAX_ENTRIES`].
pub fn encode_template(leaves: &[(u32, u32)]) -> Option<[u8; PAGE_BYTES]> {
    if leaves.len() > MAX_ENTRIES {
        return None;
    }
    let mut page = [0u8; PAGE_BYTES];
    page[..4].copy_from_slice(&(leaves.len() as u32).to_le_bytes());
    for (i, (leaf, subleaf)) in leaves.iter().enumerate() {
        let at = HEADER_BYTES + i * ENTRY_BYTES;
        page[at..at + 4].copy_from_slice(&leaf.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&subleaf.to_le_bytes());
    }
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_answer(page: &mut [u8], index: usize, regs: [u32; 4]) {
        let at = HEADER_BYTES + index * ENTRY_BYTES + 24;
        for (i, r) in regs.iter().enumerate() {
            page[at + 4 * i..at + 4 * i + 4].copy_from_slice(&r.to_le_bytes());
        }
    }

    #[test]
    fn template_round_trips_and_answers_are_read_at_their_offsets() {
        let mut page = encode_template(&[(0, 0), (7, 1), (0x8000_001f, 0)]).unwrap();
        assert_eq!(u32_at(&page, 0), 3);
        // Entry 2 starts at 16 + 2 * 48 = 112; EBX is 28 bytes in.
        with_answer(&mut page, 2, [0x1_0003, 0x0000_5173, 0, 0]);
        assert_eq!(page[112 + 28], 0x73);
        assert_eq!(
            lookup(&page, 0x8000_001f, 0).unwrap(),
            Some([0x1_0003, 0x5173, 0, 0])
        );
        assert_eq!(lookup(&page, 7, 0).unwrap(), None);
        assert_eq!(c_bit(&page), Ok(51));
    }

    #[test]
    fn bad_pages_are_errors() {
        assert_eq!(lookup(&[0u8; 100], 0, 0), Err(Error::InvalidArgument));
        let mut page = [0u8; PAGE_BYTES];
        page[0] = 65;
        assert!(lookup(&page, 0, 0).is_err());
        // Leaf missing, or a C-bit below 32.
        let mut page = encode_template(&[(0x8000_001f, 0)]).unwrap();
        assert!(c_bit(&page).is_err());
        with_answer(&mut page, 0, [0, 31, 0, 0]);
        assert!(c_bit(&page).is_err());
        assert!(c_bit(&[0u8; PAGE_BYTES]).is_err());
        assert!(encode_template(&[(0, 0); 65]).is_none());
    }
}
