//! Converting a range between private and shared (GHCI,
//! `TDG.VP.VMCALL<MapGPA>`) as one operation: [`map_gpa_range`] repeats
//! `MapGPA` from where the host says after each `RETRY` (every retry must
//! advance inside the range, [`super::tdvmcall::map_gpa_result`], so a
//! host cannot keep the guest looping), and [`make_private`] accepts the
//! range once it is private again (its pages come back pending).
//!
//! The kernel's TDX backend calls these with its `TDCALL` wrapper as the
//! [`Module`]; the tests with a mock host.

use super::tdcall::{Module, TdcallError, accept_range};
use super::tdvmcall::{MapGpa, VmcallError, map_gpa, map_gpa_result};

/// Why a conversion failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertError {
    /// The range is not 4 KiB aligned, wraps, or reaches the shared bit
    /// (or there is no shared bit).
    InvalidRange,
    /// The host refused `MapGPA`, or its retry did not advance.
    Map(VmcallError),
    /// Accepting the range, private again, failed.
    Accept(TdcallError),
}

/// Maps `[gpa, gpa + bytes)` — addresses below `shared_bit` — shared
/// (`to_shared`: `MapGPA` with the shared bit set) or private (clear).
pub fn map_gpa_range(
    module: &mut impl Module,
    gpa: u64,
    bytes: u64,
    shared_bit: u64,
    to_shared: bool,
) -> Result<(), ConvertError> {
    let end = gpa.checked_add(bytes).ok_or(ConvertError::InvalidRange)?;
    if shared_bit == 0
        || end > shared_bit
        || !gpa.is_multiple_of(4096)
        || !bytes.is_multiple_of(4096)
    {
        return Err(ConvertError::InvalidRange);
    }
    let bit = if to_shared { shared_bit } else { 0 };
    let (mut at, end) = (gpa | bit, end | bit);
    while at < end {
        let answer = module.tdcall(map_gpa(at, end - at));
        match map_gpa_result(&answer, at, end - at).map_err(ConvertError::Map)? {
            MapGpa::Done => return Ok(()),
            // Strictly greater than `at` (checked by map_gpa_result): the
            // loop ends.
            MapGpa::RetryFrom(next) => at = next,
        }
    }
    Ok(())
}

/// Maps a shared range private again and accepts it.
pub fn make_private(
    module: &mut impl Module,
    gpa: u64,
    bytes: u64,
    shared_bit: u64,
) -> Result<(), ConvertError> {
    map_gpa_range(module, gpa, bytes, shared_bit, false)?;
    accept_range(module, gpa, bytes).map_err(ConvertError::Accept)
}

#[cfg(test)]
mod tests {
    use super::super::tdcall::{Regs, leaf, status};
    use super::super::tdvmcall::{ret, sub};
    use super::*;
    use alloc::vec::Vec;

    const SHARED: u64 = 1 << 47;

    /// A host converting at most `per_call` bytes a call (0: it answers
    /// `RETRY` without progress), or refusing with `refuse`; a module that
    /// accepts every page.
    #[derive(Default)]
    struct Mock {
        calls: Vec<Regs>,
        per_call: u64,
        refuse: Option<u64>,
    }

    impl Module for Mock {
        fn tdcall(&mut self, regs: Regs) -> Regs {
            self.calls.push(regs);
            let mut out = regs;
            out.rax = status::SUCCESS;
            if regs.rax == leaf::VP_VMCALL && regs.r11 == sub::MAP_GPA {
                out.r10 = ret::SUCCESS;
                if let Some(code) = self.refuse {
                    out.r10 = code;
                } else if regs.r13 > self.per_call {
                    (out.r10, out.r11) = (ret::RETRY, regs.r12 + self.per_call);
                }
            }
            out
        }
    }

    fn map_calls(m: &Mock) -> Vec<(u64, u64)> {
        m.calls
            .iter()
            .filter(|r| r.rax == leaf::VP_VMCALL)
            .map(|r| (r.r12, r.r13))
            .collect()
    }

    #[test]
    fn the_shared_bit_is_set_and_retries_resume_where_the_host_says() {
        let mut m = Mock {
            per_call: 0x3000,
            ..Mock::default()
        };
        map_gpa_range(&mut m, 0x10_0000, 0x8000, SHARED, true).unwrap();
        assert_eq!(
            map_calls(&m),
            [
                (SHARED | 0x10_0000, 0x8000),
                (SHARED | 0x10_3000, 0x5000),
                (SHARED | 0x10_6000, 0x2000)
            ]
        );
    }

    #[test]
    fn private_again_is_mapped_without_the_bit_then_accepted() {
        let mut m = Mock {
            per_call: u64::MAX,
            ..Mock::default()
        };
        make_private(&mut m, 0x10_0000, 0x2000, SHARED).unwrap();
        assert_eq!(map_calls(&m), [(0x10_0000, 0x2000)]);
        let accepts: Vec<u64> = m
            .calls
            .iter()
            .filter(|r| r.rax == leaf::MEM_PAGE_ACCEPT)
            .map(|r| r.rcx)
            .collect();
        assert_eq!(accepts, [0x10_0000, 0x10_1000]);
    }

    #[test]
    fn a_stalling_or_refusing_host_and_bad_ranges_are_errors() {
        let mut m = Mock::default();
        assert!(matches!(
            map_gpa_range(&mut m, 0, 0x2000, SHARED, true),
            Err(ConvertError::Map(_))
        ));
        assert_eq!(m.calls.len(), 1, "a retry without progress is not repeated");
        let mut m = Mock {
            refuse: Some(ret::GPA_INUSE),
            ..Mock::default()
        };
        assert_eq!(
            make_private(&mut m, 0, 0x1000, SHARED),
            Err(ConvertError::Map(VmcallError::Host(ret::GPA_INUSE)))
        );
        assert_eq!(m.calls.len(), 1, "nothing accepted after a refusal");
        for (gpa, bytes, bit) in [
            (1, 0x1000, SHARED),
            (0, 0x1001, SHARED),
            (SHARED - 0x1000, 0x2000, SHARED),
            (!0xfff, 0x2000, SHARED),
            (0, 0x1000, 0),
        ] {
            assert_eq!(
                map_gpa_range(&mut m, gpa, bytes, bit, true),
                Err(ConvertError::InvalidRange),
                "{gpa:#x}+{bytes:#x}"
            );
        }
    }
}
