//! `TDG.VP.VMCALL`: requests to the host VMM (Intel GHCI specification,
//! "TDG.VP.VMCALL Interface"). A `TDCALL` with RAX = 0 and RCX the bitmap
//! of registers the host may see (here R10–R15: 0xfc00); R10 = 0 selects
//! the standard interface, R11 the sub-function, R12–R15 its arguments.
//! On return R10 holds the status (0 success) and R11 (or R12–R15) the
//! outputs.

use super::tdcall::{Regs, leaf};

/// Sub-functions: VMX exit reasons for the instruction-emulation calls,
/// 0x10000 and up for the GHCI's own.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod sub {
    pub const CPUID: u64 = 10;
    pub const HLT: u64 = 12;
    pub const IO: u64 = 30;
    pub const RDMSR: u64 = 31;
    pub const WRMSR: u64 = 32;
    pub const MMIO: u64 = 48;
    pub const MAP_GPA: u64 = 0x10001;
    pub const GET_QUOTE: u64 = 0x10002;
    pub const REPORT_FATAL_ERROR: u64 = 0x10003;
    pub const SETUP_EVENT_NOTIFY: u64 = 0x10004;
}

/// Return codes in R10.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod ret {
    pub const SUCCESS: u64 = 0;
    pub const RETRY: u64 = 1;
    pub const INVALID_OPERAND: u64 = 0x8000_0000_0000_0000;
    pub const GPA_INUSE: u64 = 0x8000_0000_0000_0001;
    pub const ALIGN_ERROR: u64 = 0x8000_0000_0000_0002;
}

/// The registers the host may see: R10–R15.
pub const EXPOSED: u64 = 0xfc00;

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmcallError {
    /// The `TDCALL` itself failed (RAX).
    Tdcall(u64),
    /// The host returned an error in R10.
    Host(u64),
}

fn call(sub: u64, r12: u64, r13: u64, r14: u64, r15: u64) -> Regs {
    Regs {
        rax: leaf::VP_VMCALL,
        rcx: EXPOSED,
        r10: 0,
        r11: sub,
        r12,
        r13,
        r14,
        r15,
        ..Regs::default()
    }
}

/// Checks the outcome of a call.
pub fn check(r: &Regs) -> Result<(), VmcallError> {
    if r.rax != 0 {
        return Err(VmcallError::Tdcall(r.rax));
    }
    match r.r10 {
        ret::SUCCESS => Ok(()),
        e => Err(VmcallError::Host(e)),
    }
}

/// `Instruction.CPUID` for `leaf`/`subleaf`; answer in R12–R15.
pub fn cpuid(leaf: u32, subleaf: u32) -> Regs {
    call(sub::CPUID, leaf.into(), subleaf.into(), 0, 0)
}

/// The CPUID answer: (EAX, EBX, ECX, EDX), each the low 32 bits.
pub fn cpuid_result(r: &Regs) -> Result<[u32; 4], VmcallError> {
    check(r)?;
    Ok([r.r12 as u32, r.r13 as u32, r.r14 as u32, r.r15 as u32])
}

/// `Instruction.HLT`; `interrupts_blocked` tells the host whether the
/// guest halts with interrupts off.
pub fn hlt(interrupts_blocked: bool) -> Regs {
    call(sub::HLT, u64::from(interrupts_blocked), 0, 0, 0)
}

/// `Instruction.IO`: `bytes` (1, 2 or 4) at `port`, reading (`value`
/// ignored) or writing `value`.
pub fn io(port: u16, bytes: u8, write: bool, value: u32) -> Option<Regs> {
    matches!(bytes, 1 | 2 | 4).then(|| {
        call(
            sub::IO,
            bytes.into(),
            u64::from(write),
            port.into(),
            if write { value.into() } else { 0 },
        )
    })
}

/// The value an `Instruction.IO` read returned (R11), cut to its width.
pub fn io_result(r: &Regs, bytes: u8) -> Result<u32, VmcallError> {
    check(r)?;
    let mask = match bytes {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    };
    Ok(r.r11 as u32 & mask)
}

/// `Instruction.RDMSR`.
pub fn rdmsr(msr: u32) -> Regs {
    call(sub::RDMSR, msr.into(), 0, 0, 0)
}

/// `Instruction.WRMSR`.
pub fn wrmsr(msr: u32, value: u64) -> Regs {
    call(sub::WRMSR, msr.into(), value, 0, 0)
}

/// `#VE.RequestMMIO`: `bytes` (1, 2, 4, 8) at guest physical `gpa`.
pub fn mmio(gpa: u64, bytes: u8, write: bool, value: u64) -> Option<Regs> {
    matches!(bytes, 1 | 2 | 4 | 8).then(|| {
        call(
            sub::MMIO,
            bytes.into(),
            u64::from(write),
            gpa,
            if write { value } else { 0 },
        )
    })
}

/// `MapGPA`: maps `[gpa, gpa + bytes)` shared (the shared bit set in
/// `gpa`) or private.
pub fn map_gpa(gpa: u64, bytes: u64) -> Regs {
    call(sub::MAP_GPA, gpa, bytes, 0, 0)
}

/// What a `MapGPA` answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapGpa {
    /// The whole range is mapped.
    Done,
    /// The host did part: call again from this address.
    RetryFrom(u64),
}

/// Decodes a `MapGPA` answer for the request `[start, start + bytes)`: a
/// retry address outside the range, or one that does not advance, is an
/// error (a host that loops the guest for ever).
pub fn map_gpa_result(r: &Regs, start: u64, bytes: u64) -> Result<MapGpa, VmcallError> {
    if r.rax != 0 {
        return Err(VmcallError::Tdcall(r.rax));
    }
    match r.r10 {
        ret::SUCCESS => Ok(MapGpa::Done),
        ret::RETRY if r.r11 > start && r.r11 < start.saturating_add(bytes) => {
            Ok(MapGpa::RetryFrom(r.r11))
        }
        e => Err(VmcallError::Host(e)),
    }
}

/// `ReportFatalError` with `code` (the guest ends).
pub fn report_fatal_error(code: u64) -> Regs {
    call(sub::REPORT_FATAL_ERROR, code, 0, 0, 0)
}

/// `GetQuote`: the host's quoting service turns the TDREPORT in the
/// shared buffer at `gpa` (`bytes` long, 4 KiB multiple) into a quote, in
/// the same buffer. `None` for a buffer that is not whole pages.
pub fn get_quote(gpa: u64, bytes: u64) -> Option<Regs> {
    (gpa.is_multiple_of(4096) && bytes.is_multiple_of(4096) && bytes > 0)
        .then(|| call(sub::GET_QUOTE, gpa, bytes, 0, 0))
}

/// `SetupEventNotifyInterrupt`: the host signals events (a quote ready)
/// with interrupt `vector`, 32–255.
pub fn setup_event_notify(vector: u8) -> Option<Regs> {
    (vector >= 32).then(|| call(sub::SETUP_EVENT_NOTIFY, vector.into(), 0, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_follow_the_ghcis_register_conventions() {
        let c = cpuid(0x21, 0);
        assert_eq!(
            (c.rax, c.rcx, c.r10, c.r11, c.r12, c.r13),
            (0, 0xfc00, 0, 10, 0x21, 0)
        );
        let w = io(0x3f8, 1, true, 0x41).unwrap();
        assert_eq!((w.r11, w.r12, w.r13, w.r14, w.r15), (30, 1, 1, 0x3f8, 0x41));
        let rd = io(0x71, 1, false, 0xdead).unwrap();
        assert_eq!((rd.r13, rd.r15), (0, 0), "reads send no value");
        assert!(io(0x71, 8, false, 0).is_none());
        let m = mmio(0xfee0_0020, 4, false, 0).unwrap();
        assert_eq!((m.r11, m.r12, m.r13, m.r14), (48, 4, 0, 0xfee0_0020));
        assert!(mmio(0, 3, false, 0).is_none());
        assert_eq!((rdmsr(0x1b).r11, rdmsr(0x1b).r12), (31, 0x1b));
        assert_eq!((wrmsr(0x1b, 7).r11, wrmsr(0x1b, 7).r13), (32, 7));
        assert_eq!((hlt(true).r11, hlt(true).r12), (12, 1));
        assert_eq!(map_gpa(1 << 51, 4096).r11, 0x10001);
        let f = report_fatal_error(5);
        assert_eq!((f.r11, f.r12), (0x10003, 5));
        let q = get_quote(0x8000, 0x2000).unwrap();
        assert_eq!(
            (q.rcx, q.r11, q.r12, q.r13),
            (0xfc00, 0x10002, 0x8000, 0x2000)
        );
        assert!(get_quote(0x8001, 0x2000).is_none());
        assert!(get_quote(0x8000, 0).is_none());
        let n = setup_event_notify(0xec).unwrap();
        assert_eq!((n.r11, n.r12), (0x10004, 0xec));
        assert!(setup_event_notify(14).is_none(), "exception vectors");
    }

    #[test]
    fn answers_are_checked() {
        let ok = Regs {
            r11: 0x0012_3456_789a,
            ..Regs::default()
        };
        assert_eq!(io_result(&ok, 1), Ok(0x9a));
        assert_eq!(io_result(&ok, 2), Ok(0x789a));
        assert_eq!(io_result(&ok, 4), Ok(0x3456_789a));
        let failed = Regs {
            r10: ret::INVALID_OPERAND,
            ..ok
        };
        assert_eq!(
            io_result(&failed, 1),
            Err(VmcallError::Host(ret::INVALID_OPERAND))
        );
        let not_called = Regs { rax: 5, ..ok };
        assert_eq!(check(&not_called), Err(VmcallError::Tdcall(5)));
        let cpu = Regs {
            r12: 1,
            r13: 2,
            r14: 3,
            r15: 0xffff_ffff_0000_0004,
            ..Regs::default()
        };
        assert_eq!(cpuid_result(&cpu), Ok([1, 2, 3, 4]));
    }

    #[test]
    fn map_gpa_retries_must_advance_inside_the_range() {
        let start = 0x10_0000;
        let retry = |r11| Regs {
            r10: ret::RETRY,
            r11,
            ..Regs::default()
        };
        assert_eq!(
            map_gpa_result(&Regs::default(), start, 0x4000),
            Ok(MapGpa::Done)
        );
        assert_eq!(
            map_gpa_result(&retry(0x10_2000), start, 0x4000),
            Ok(MapGpa::RetryFrom(0x10_2000))
        );
        assert!(
            map_gpa_result(&retry(start), start, 0x4000).is_err(),
            "no progress"
        );
        assert!(
            map_gpa_result(&retry(0x10_4000), start, 0x4000).is_err(),
            "past the end"
        );
        assert!(map_gpa_result(&retry(0), start, 0x4000).is_err());
    }
}
