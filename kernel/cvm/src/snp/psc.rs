//! Page-state changes through the GHCB (AMD GHCB specification #56421,
//! section 4.1.6 "SNP Page State Change"): a descriptor in the GHCB's
//! shared buffer — a header (`cur_entry`, `end_entry`) and up to 253
//! entries (`cur_page` 11:0, GFN 51:12, operation 55:52, page size 56) —
//! sent with exit code `0x8000_0010`; the hypervisor works through the
//! entries, advancing `cur_entry`, and may return before the end, so the
//! guest repeats the request until `cur_entry > end_entry`.
//!
//! [`Batches`] splits a physical range into descriptors; [`check_progress`]
//! judges each answer: an error, a header the hypervisor moved backwards or
//! past the end, or no progress at all is a protocol error (Linux's
//! `vmgexit_psc` checks the same), never an endless loop.

use super::msr_protocol::PageOp;

/// Entries in one descriptor (fills the 2032-byte shared buffer).
pub const MAX_ENTRIES: usize = 253;
/// Header bytes.
pub const HEADER_BYTES: usize = 8;

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Guest frame number (of a 4 KiB page, or the first of a 2 MiB one).
    pub gfn: u64,
    /// What to make it.
    pub op: PageOp,
    /// A 2 MiB page rather than 4 KiB.
    pub huge: bool,
}

impl Entry {
    /// The entry's 64-bit encoding (`cur_page` 0).
    pub fn encode(&self) -> u64 {
        ((self.gfn & ((1 << 40) - 1)) << 12)
            | ((self.op as u64) << 52)
            | (u64::from(self.huge) << 56)
    }
}

/// Writes a descriptor for `entries` (at most [`MAX_ENTRIES`]) into `buf`
/// (the GHCB's shared buffer); returns the bytes used.
pub fn write_descriptor(entries: &[Entry], buf: &mut [u8]) -> Option<usize> {
    let n = entries.len();
    let bytes = HEADER_BYTES + 8 * n;
    if n == 0 || n > MAX_ENTRIES || buf.len() < bytes {
        return None;
    }
    buf[..2].copy_from_slice(&0u16.to_le_bytes());
    buf[2..4].copy_from_slice(&((n - 1) as u16).to_le_bytes());
    buf[4..8].fill(0);
    for (i, e) in entries.iter().enumerate() {
        let at = HEADER_BYTES + 8 * i;
        buf[at..at + 8].copy_from_slice(&e.encode().to_le_bytes());
    }
    Some(bytes)
}

/// The header of a descriptor the hypervisor handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Next entry to process.
    pub cur_entry: u16,
    /// Last entry.
    pub end_entry: u16,
}

/// Reads a descriptor's header.
pub fn read_header(buf: &[u8]) -> Option<Header> {
    Some(Header {
        cur_entry: u16::from_le_bytes([*buf.first()?, *buf.get(1)?]),
        end_entry: u16::from_le_bytes([*buf.get(2)?, *buf.get(3)?]),
    })
}

/// What a page-state-change answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All entries done.
    Done,
    /// Some done: send the descriptor again.
    Again,
}

/// Why a page-state change failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PscError {
    /// `SW_EXITINFO2` was not 0.
    Host(u64),
    /// The hypervisor changed the end, moved backwards or made no progress.
    Protocol(&'static str),
}

/// Judges the hypervisor's answer: `before` is the header as sent,
/// `after` as returned, `info2` the exit's `SW_EXITINFO2`.
pub fn check_progress(before: Header, after: Header, info2: u64) -> Result<Progress, PscError> {
    if info2 != 0 {
        return Err(PscError::Host(info2));
    }
    if after.end_entry != before.end_entry {
        return Err(PscError::Protocol("the end entry changed"));
    }
    if after.cur_entry > before.end_entry {
        return Ok(Progress::Done);
    }
    if after.cur_entry <= before.cur_entry {
        return Err(PscError::Protocol("no progress"));
    }
    Ok(Progress::Again)
}

/// The entries that change `[paddr, paddr + bytes)` (page-aligned) to
/// `op`, in descriptors of at most [`MAX_ENTRIES`]: 2 MiB entries where
/// the range covers whole aligned 2 MiB pages, 4 KiB ones elsewhere.
#[derive(Debug, Clone)]
pub struct Batches {
    next: u64,
    end: u64,
    op: PageOp,
}

/// 4 KiB.
const PAGE: u64 = 4096;
/// 2 MiB.
const HUGE: u64 = 2 << 20;

impl Batches {
    /// `None` if the range is not page aligned or wraps.
    pub fn new(paddr: u64, bytes: u64, op: PageOp) -> Option<Self> {
        let end = paddr.checked_add(bytes)?;
        if !paddr.is_multiple_of(PAGE) || !bytes.is_multiple_of(PAGE) {
            return None;
        }
        Some(Self {
            next: paddr,
            end,
            op,
        })
    }
}

impl Iterator for Batches {
    type Item = alloc::vec::Vec<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut batch = alloc::vec::Vec::new();
        while self.next < self.end && batch.len() < MAX_ENTRIES {
            let huge = self.next.is_multiple_of(HUGE) && self.end - self.next >= HUGE;
            batch.push(Entry {
                gfn: self.next / PAGE,
                op: self.op,
                huge,
            });
            self.next += if huge { HUGE } else { PAGE };
        }
        (!batch.is_empty()).then_some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn entries_and_the_header_have_the_specifications_layout() {
        let e = Entry {
            gfn: 0x12345,
            op: PageOp::Shared,
            huge: true,
        };
        assert_eq!(e.encode(), (1 << 56) | (2 << 52) | (0x12345 << 12));
        let mut buf = [0xffu8; 2032];
        assert_eq!(write_descriptor(&[e, e], &mut buf), Some(24));
        assert_eq!(&buf[..8], &[0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(&buf[8..16], &e.encode().to_le_bytes());
        assert_eq!(
            read_header(&buf),
            Some(Header {
                cur_entry: 0,
                end_entry: 1
            })
        );
        assert_eq!(write_descriptor(&[], &mut buf), None);
        assert_eq!(write_descriptor(&[e; 254], &mut buf), None);
        assert_eq!(write_descriptor(&[e; 253], &mut buf), Some(2032));
    }

    #[test]
    fn ranges_split_into_huge_and_small_pages_in_full_descriptors() {
        // 4 KiB below a 2 MiB boundary, two 2 MiB pages, 4 KiB after.
        let start = (2 << 20) - 4096;
        let bytes = 4096 + (4 << 20) + 8192;
        let all: Vec<Entry> = Batches::new(start, bytes, PageOp::Shared)
            .unwrap()
            .flatten()
            .collect();
        let sizes: Vec<bool> = all.iter().map(|e| e.huge).collect();
        assert_eq!(sizes, [false, true, true, false, false]);
        assert_eq!(all[1].gfn, 512);
        assert_eq!(all[4].gfn, (6 << 20) / 4096 + 1);
        // 1000 small pages: 253 + 253 + 253 + 241.
        let lens: Vec<usize> = Batches::new(4096, 1000 * 4096, PageOp::Private)
            .unwrap()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, [253, 253, 253, 241]);
        assert!(Batches::new(1, 4096, PageOp::Shared).is_none());
        assert!(Batches::new(u64::MAX - 4095, 8192, PageOp::Shared).is_none());
    }

    /// A hypervisor that does `per_call` entries a call, or misbehaves.
    fn run(per_call: u16, sabotage: Option<&str>) -> Result<u32, PscError> {
        let mut header = Header {
            cur_entry: 0,
            end_entry: 9,
        };
        let mut calls = 0;
        loop {
            calls += 1;
            let mut after = header;
            after.cur_entry = (header.cur_entry + per_call).min(header.end_entry + 1);
            match sabotage {
                Some("end") => after.end_entry = 3,
                Some("error") => return check_progress(header, after, 5).map(|_| calls),
                _ => {}
            }
            match check_progress(header, after, 0)? {
                Progress::Done => return Ok(calls),
                Progress::Again => header = after,
            }
        }
    }

    #[test]
    fn answers_are_judged_and_a_stalling_host_is_an_error_not_a_loop() {
        assert_eq!(run(10, None), Ok(1));
        assert_eq!(run(3, None), Ok(4));
        assert_eq!(run(0, None), Err(PscError::Protocol("no progress")));
        assert_eq!(
            run(3, Some("end")),
            Err(PscError::Protocol("the end entry changed"))
        );
        assert_eq!(run(3, Some("error")), Err(PscError::Host(5)));
    }
}
