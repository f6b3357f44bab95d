//! `TDCALL` leaves (Intel TDX Module ABI specification, "TDX Guest-Side
//! Interface Functions"): the leaf number in RAX, arguments in RCX, RDX,
//! R8.., the completion status back in RAX. [`Regs`] is the register file
//! the kernel's thin `tdcall` wrapper loads and stores; this module fills
//! it and reads the answers.

/// Leaf numbers.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod leaf {
    pub const VP_VMCALL: u64 = 0;
    pub const VP_INFO: u64 = 1;
    pub const MR_RTMR_EXTEND: u64 = 2;
    pub const VP_VEINFO_GET: u64 = 3;
    pub const MR_REPORT: u64 = 4;
    pub const VP_CPUIDVE_SET: u64 = 5;
    pub const MEM_PAGE_ACCEPT: u64 = 6;
}

/// The registers a `TDCALL` reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct Regs {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// A completion status (RAX after `TDCALL`): bit 63 error, bits 62:32 the
/// class and details, bits 31:0 operand information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u64);

/// Status codes (the upper 32 bits) this crate tells apart.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const OPERAND_INVALID: u64 = 0xc000_0100;
    pub const OPERAND_BUSY: u64 = 0x8000_0200;
    pub const PAGE_ALREADY_ACCEPTED: u64 = 0x0000_0b0a;
    pub const PAGE_SIZE_MISMATCH: u64 = 0xc000_0b0b;
}

impl Status {
    /// The status code without the operand information.
    pub fn code(self) -> u64 {
        self.0 >> 32
    }
    /// Bit 63: the call failed.
    pub fn is_error(self) -> bool {
        self.0 & (1 << 63) != 0
    }
}

/// A completion status, typed: what a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// `TDX_SUCCESS` (0).
    Success,
    /// `TDX_PAGE_ALREADY_ACCEPTED` (a warning, bit 63 clear).
    PageAlreadyAccepted,
    /// Another warning (bit 63 clear): the call did its work.
    Warning,
    /// `TDX_OPERAND_INVALID`: an argument is wrong.
    OperandInvalid,
    /// `TDX_OPERAND_BUSY`: a resource is in use; the call may be repeated.
    OperandBusy,
    /// `TDX_PAGE_SIZE_MISMATCH`: the page is mapped in smaller pages.
    PageSizeMismatch,
    /// Any other error.
    Error,
}

impl Status {
    /// The status, typed by its code (bits 63:32).
    pub fn kind(self) -> StatusKind {
        match self.code() {
            status::SUCCESS if self.0 == 0 => StatusKind::Success,
            status::PAGE_ALREADY_ACCEPTED => StatusKind::PageAlreadyAccepted,
            status::OPERAND_INVALID => StatusKind::OperandInvalid,
            status::OPERAND_BUSY => StatusKind::OperandBusy,
            status::PAGE_SIZE_MISMATCH => StatusKind::PageSizeMismatch,
            _ if !self.is_error() => StatusKind::Warning,
            _ => StatusKind::Error,
        }
    }
}

/// `TDX_OPERAND_BUSY` answers in a row before an acceptance gives up.
pub const MAX_BUSY_RETRIES: u32 = 8;

/// What `TDG.VP.INFO` says about the trust domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdInfo {
    /// Guest physical address width (48 or 52).
    pub gpa_width: u8,
    /// TD attributes.
    pub attributes: u64,
    /// Virtual CPUs now, and at most.
    pub num_vcpus: u32,
    /// See [`TdInfo::num_vcpus`].
    pub max_vcpus: u32,
}

impl TdInfo {
    /// The shared bit: the top bit of the guest physical address.
    pub fn shared_bit(&self) -> u64 {
        1 << (self.gpa_width.clamp(1, 64) - 1)
    }
}

/// Registers for `TDG.VP.INFO`.
pub fn vp_info() -> Regs {
    Regs {
        rax: leaf::VP_INFO,
        ..Regs::default()
    }
}

/// Why a `TDCALL` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TdcallError {
    /// The module returned an error status.
    Status(u64),
    /// An answer outside what the specification allows.
    Protocol(&'static str),
}

/// Decodes `TDG.VP.INFO`'s answer.
pub fn vp_info_result(r: &Regs) -> Result<TdInfo, TdcallError> {
    if r.rax != 0 {
        return Err(TdcallError::Status(r.rax));
    }
    let gpa_width = (r.rcx & 0x3f) as u8;
    if gpa_width != 48 && gpa_width != 52 {
        return Err(TdcallError::Protocol("GPA width is neither 48 nor 52"));
    }
    Ok(TdInfo {
        gpa_width,
        attributes: r.rdx,
        num_vcpus: r.r8 as u32,
        max_vcpus: (r.r8 >> 32) as u32,
    })
}

/// Page sizes for `TDG.MEM.PAGE.ACCEPT` (RCX bits 2:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageLevel {
    /// 4 KiB.
    Size4K = 0,
    /// 2 MiB.
    Size2M = 1,
}

impl PageLevel {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 4096,
            Self::Size2M => 2 << 20,
        }
    }
}

/// Registers for `TDG.MEM.PAGE.ACCEPT` of the page at `gpa`.
pub fn page_accept(gpa: u64, level: PageLevel) -> Regs {
    Regs {
        rax: leaf::MEM_PAGE_ACCEPT,
        rcx: (gpa & !0xfff) | level as u64,
        ..Regs::default()
    }
}

/// Registers for `TDG.MR.REPORT`: the TDREPORT goes to `report_gpa`
/// (1024-byte aligned), the 64 bytes of report data come from `data_gpa`
/// (64-byte aligned), sub-type 0.
pub fn mr_report(report_gpa: u64, data_gpa: u64) -> Option<Regs> {
    if !report_gpa.is_multiple_of(1024) || !data_gpa.is_multiple_of(64) {
        return None;
    }
    Some(Regs {
        rax: leaf::MR_REPORT,
        rcx: report_gpa,
        rdx: data_gpa,
        r8: 0,
        ..Regs::default()
    })
}

/// Registers for `TDG.VP.VEINFO.GET`.
pub fn veinfo_get() -> Regs {
    Regs {
        rax: leaf::VP_VEINFO_GET,
        ..Regs::default()
    }
}

/// The module: executes a `TDCALL` (the kernel's wrapper; a mock in tests).
pub trait Module {
    /// Runs one `TDCALL` with `regs`, returning the registers after it.
    fn tdcall(&mut self, regs: Regs) -> Regs;
}

/// Accepts the RAM range `[gpa, gpa + bytes)` before its first use: 2 MiB
/// pages where the range covers aligned 2 MiB, 4 KiB elsewhere, and a 2 MiB
/// accept the module refuses for its size is retried as 512 small ones.
/// A page already accepted is fine (a second accept of the same memory).
pub fn accept_range(module: &mut impl Module, gpa: u64, bytes: u64) -> Result<(), TdcallError> {
    let end = gpa
        .checked_add(bytes)
        .ok_or(TdcallError::Protocol("range wraps"))?;
    if !gpa.is_multiple_of(4096) || !bytes.is_multiple_of(4096) {
        return Err(TdcallError::Protocol("range not page aligned"));
    }
    let mut at = gpa;
    while at < end {
        let huge =
            at.is_multiple_of(PageLevel::Size2M.bytes()) && end - at >= PageLevel::Size2M.bytes();
        if huge && accept_one(module, at, PageLevel::Size2M)? {
            at += PageLevel::Size2M.bytes();
            continue;
        }
        let stop = if huge {
            at + PageLevel::Size2M.bytes()
        } else {
            at + 4096
        };
        while at < stop {
            if !accept_one(module, at, PageLevel::Size4K)? {
                return Err(TdcallError::Protocol(
                    "a 4 KiB page was refused for its size",
                ));
            }
            at += 4096;
        }
    }
    Ok(())
}

/// One accept: `Ok(false)` when the module wants smaller pages. A busy
/// module is asked again, at most [`MAX_BUSY_RETRIES`] times.
fn accept_one(module: &mut impl Module, gpa: u64, level: PageLevel) -> Result<bool, TdcallError> {
    let mut busy = 0;
    loop {
        let st = Status(module.tdcall(page_accept(gpa, level)).rax);
        match st.kind() {
            StatusKind::Success | StatusKind::PageAlreadyAccepted => return Ok(true),
            StatusKind::PageSizeMismatch => return Ok(false),
            StatusKind::OperandBusy if busy < MAX_BUSY_RETRIES => busy += 1,
            _ => return Err(TdcallError::Status(st.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn registers_follow_the_abi() {
        assert_eq!(vp_info().rax, 1);
        let a = page_accept(0x20_0000, PageLevel::Size2M);
        assert_eq!((a.rax, a.rcx), (6, 0x20_0001));
        assert_eq!(page_accept(0x1234_5000, PageLevel::Size4K).rcx, 0x1234_5000);
        let r = mr_report(0x40_0000, 0x40_0400).unwrap();
        assert_eq!((r.rax, r.rcx, r.rdx, r.r8), (4, 0x40_0000, 0x40_0400, 0));
        assert!(mr_report(0x40_0100, 0x40_0400).is_none());
        assert!(mr_report(0x40_0000, 0x40_0401).is_none());
        assert_eq!(veinfo_get().rax, 3);
    }

    #[test]
    fn td_info_and_the_shared_bit() {
        let r = Regs {
            rcx: 52,
            rdx: 0x1000_0000,
            r8: (8 << 32) | 2,
            ..Regs::default()
        };
        let info = vp_info_result(&r).unwrap();
        assert_eq!((info.gpa_width, info.num_vcpus, info.max_vcpus), (52, 2, 8));
        assert_eq!(info.shared_bit(), 1 << 51);
        assert_eq!(
            vp_info_result(&Regs { rcx: 48, ..r }).unwrap().shared_bit(),
            1 << 47
        );
        assert!(vp_info_result(&Regs { rcx: 40, ..r }).is_err());
        assert!(vp_info_result(&Regs { rax: 1 << 63, ..r }).is_err());
        assert!(Status(status::OPERAND_BUSY << 32).is_error());
        assert!(!Status(status::PAGE_ALREADY_ACCEPTED << 32).is_error());
    }

    #[test]
    fn statuses_are_typed_by_their_code() {
        for (rax, kind) in [
            (0, StatusKind::Success),
            (0x0000_0b0a_0000_0000, StatusKind::PageAlreadyAccepted),
            (0x0000_0001_0000_0000, StatusKind::Warning),
            (0xc000_0100_0000_0003, StatusKind::OperandInvalid),
            (0x8000_0200_0000_0001, StatusKind::OperandBusy),
            (0xc000_0b0b_0000_0000, StatusKind::PageSizeMismatch),
            (0xc000_0999_0000_0000, StatusKind::Error),
            (0x8000_0000_0000_0000, StatusKind::Error),
        ] {
            assert_eq!(Status(rax).kind(), kind, "{rax:#x}");
        }
    }

    /// A module that accepts, refuses 2 MiB pages in some ranges, and
    /// remembers what it was asked.
    struct Mock {
        calls: Vec<(u64, u64)>,
        small_only_below: u64,
        fail_at: Option<u64>,
    }

    impl Module for Mock {
        fn tdcall(&mut self, regs: Regs) -> Regs {
            let (gpa, level) = (regs.rcx & !0xfff, regs.rcx & 7);
            self.calls.push((gpa, level));
            let rax = if Some(gpa) == self.fail_at {
                status::OPERAND_BUSY << 32
            } else if level == 1 && gpa < self.small_only_below {
                status::PAGE_SIZE_MISMATCH << 32
            } else if gpa == 0x1000 {
                status::PAGE_ALREADY_ACCEPTED << 32
            } else {
                0
            };
            Regs { rax, ..regs }
        }
    }

    #[test]
    fn ranges_are_accepted_in_the_largest_pages_the_module_takes() {
        let mut m = Mock {
            calls: Vec::new(),
            small_only_below: 0,
            fail_at: None,
        };
        // 4 KiB pages up to the 2 MiB boundary, then 2 MiB pages.
        accept_range(&mut m, 0x1f_e000, 0x2000 + (4 << 20)).unwrap();
        assert_eq!(
            m.calls,
            [
                (0x1f_e000, 0),
                (0x1f_f000, 0),
                (0x20_0000, 1),
                (0x40_0000, 1)
            ]
        );
        // A size mismatch falls back to 512 small pages.
        let mut m = Mock {
            calls: Vec::new(),
            small_only_below: 4 << 20,
            fail_at: None,
        };
        accept_range(&mut m, 2 << 20, 4 << 20).unwrap();
        assert_eq!(m.calls.len(), 1 + 512 + 1);
        // Already accepted is fine; a real error stops.
        let mut m = Mock {
            calls: Vec::new(),
            small_only_below: 0,
            fail_at: Some(0x3000),
        };
        assert_eq!(
            accept_range(&mut m, 0x1000, 0x4000),
            Err(TdcallError::Status(status::OPERAND_BUSY << 32))
        );
        let busy_calls = m.calls.iter().filter(|c| c.0 == 0x3000).count();
        assert_eq!(busy_calls, MAX_BUSY_RETRIES as usize + 1, "bounded");
        assert!(accept_range(&mut m, 1, 4096).is_err());
        assert!(accept_range(&mut m, u64::MAX - 4095, 8192).is_err());
    }
}
