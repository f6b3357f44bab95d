//! `#VE` handling (Intel TDX Module ABI, "Virtualization Exception", and
//! the GHCI): the guest asks `TDG.VP.VEINFO.GET` why the exception came
//! (exit reason, exit qualification, addresses, instruction length) and
//! performs the operation the host must do with a `TDG.VP.VMCALL`. This
//! module decides what to do from that information, over a register file,
//! so the dispatch is tested with a mock host.

use super::tdcall::{Regs, TdcallError};
use super::tdvmcall::{self, VmcallError};

/// Exit reasons (VMX basic exit reasons) a `#VE` reports.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod reason {
    pub const CPUID: u32 = 10;
    pub const HLT: u32 = 12;
    pub const IO: u32 = 30;
    pub const MSR_READ: u32 = 31;
    pub const MSR_WRITE: u32 = 32;
    pub const EPT_VIOLATION: u32 = 48;
}

/// What `TDG.VP.VEINFO.GET` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VeInfo {
    /// Exit reason (RCX bits 31:0).
    pub reason: u32,
    /// Exit qualification (RDX).
    pub qualification: u64,
    /// Guest linear address (R8).
    pub gla: u64,
    /// Guest physical address (R9).
    pub gpa: u64,
    /// Instruction length (R10 bits 31:0).
    pub insn_len: u32,
}

/// Decodes `TDG.VP.VEINFO.GET`'s answer.
pub fn veinfo(r: &Regs) -> Result<VeInfo, TdcallError> {
    if r.rax != 0 {
        return Err(TdcallError::Status(r.rax));
    }
    Ok(VeInfo {
        reason: r.rcx as u32,
        qualification: r.rdx,
        gla: r.r8,
        gpa: r.r9,
        insn_len: r.r10 as u32,
    })
}

/// The general registers a handler reads and writes (the trap frame's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct Gprs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rip: u64,
}

/// An I/O instruction's exit qualification (as VMX): size - 1 in bits
/// 2:0, direction bit 3 (1 = IN), string bit 4, REP bit 5, port 31:16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoQualification {
    /// 1, 2 or 4.
    pub bytes: u8,
    /// IN.
    pub is_in: bool,
    /// The port.
    pub port: u16,
}

/// Decodes it; string and REP forms are refused (`None`).
pub fn io_qualification(q: u64) -> Option<IoQualification> {
    let bytes = (q & 7) as u8 + 1;
    if !matches!(bytes, 1 | 2 | 4) || q & (3 << 4) != 0 {
        return None;
    }
    Some(IoQualification {
        bytes,
        is_in: q & (1 << 3) != 0,
        port: (q >> 16) as u16,
    })
}

/// Why a `#VE` could not be handled (the guest then terminates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VeError {
    /// An exit reason this guest does not handle.
    Unhandled(u32),
    /// A string or REP I/O instruction.
    UnsupportedIo,
    /// An EPT violation: MMIO emulation needs the instruction decoded
    /// (`crate::insn`), which the caller does with the faulting bytes.
    NeedsDecode,
    /// The host failed the request.
    Host(VmcallError),
}

impl From<VmcallError> for VeError {
    fn from(e: VmcallError) -> Self {
        Self::Host(e)
    }
}

/// The host: executes a `TDG.VP.VMCALL` (the kernel's `tdcall`; a mock in
/// tests).
pub trait Host {
    /// Runs the call with `regs`, returning the registers after it.
    fn vmcall(&mut self, regs: Regs) -> Regs;
}

/// Whether the host may answer CPUID `leaf` in a `#VE`: only the
/// hypervisor range `0x4000_0000..=0x4FFF_FFFF` (as Linux's
/// `handle_cpuid`). Any other leaf the TDX module leaves to the guest
/// reads as zeros, so the host cannot invent CPU features.
pub fn host_cpuid_leaf(leaf: u32) -> bool {
    (0x4000_0000..=0x4fff_ffff).contains(&leaf)
}

/// Whether an EPT-violation `#VE` is a device access (its GPA is in the
/// shared half: MMIO, to decode) rather than a private page the host took
/// away or memory never accepted (fatal).
pub fn is_mmio(info: &VeInfo, shared_bit: u64) -> bool {
    info.reason == reason::EPT_VIOLATION && shared_bit != 0 && info.gpa & shared_bit != 0
}

/// The device access an EPT-violation `#VE` reports, for the decoder:
/// the physical address without the shared bit, and whether it was a write
/// (exit qualification bit 1, Intel SDM vol. 3, "Exit Qualification for
/// EPT Violations"). `None` unless [`is_mmio`].
pub fn mmio_access(info: &VeInfo, shared_bit: u64) -> Option<(u64, bool)> {
    is_mmio(info, shared_bit).then_some((info.gpa & !shared_bit, info.qualification & 2 != 0))
}

/// Handles a `#VE` that is not an EPT violation: performs the operation
/// through the host, updates `gprs` as the instruction would and moves RIP
/// past it.
pub fn handle(host: &mut impl Host, info: &VeInfo, gprs: &mut Gprs) -> Result<(), VeError> {
    match info.reason {
        reason::CPUID => {
            let leaf = gprs.rax as u32;
            let [a, b, c, d] = if host_cpuid_leaf(leaf) {
                let r = host.vmcall(tdvmcall::cpuid(leaf, gprs.rcx as u32));
                tdvmcall::cpuid_result(&r)?
            } else {
                [0; 4]
            };
            (gprs.rax, gprs.rbx, gprs.rcx, gprs.rdx) = (a.into(), b.into(), c.into(), d.into());
        }
        reason::HLT => {
            tdvmcall::check(&host.vmcall(tdvmcall::hlt(false)))?;
        }
        reason::IO => {
            let q = io_qualification(info.qualification).ok_or(VeError::UnsupportedIo)?;
            let regs = tdvmcall::io(q.port, q.bytes, !q.is_in, gprs.rax as u32)
                .ok_or(VeError::UnsupportedIo)?;
            let r = host.vmcall(regs);
            if q.is_in {
                let v = tdvmcall::io_result(&r, q.bytes)?;
                let mask: u64 = match q.bytes {
                    1 => 0xff,
                    2 => 0xffff,
                    _ => 0xffff_ffff,
                };
                // IN writes AL/AX/EAX; a 32-bit write zeroes the upper half.
                gprs.rax = if q.bytes == 4 {
                    u64::from(v)
                } else {
                    (gprs.rax & !mask) | u64::from(v)
                };
            } else {
                tdvmcall::check(&r)?;
            }
        }
        reason::MSR_READ => {
            let r = host.vmcall(tdvmcall::rdmsr(gprs.rcx as u32));
            tdvmcall::check(&r)?;
            gprs.rax = r.r11 & 0xffff_ffff;
            gprs.rdx = r.r11 >> 32;
        }
        reason::MSR_WRITE => {
            let value = (gprs.rdx << 32) | (gprs.rax & 0xffff_ffff);
            tdvmcall::check(&host.vmcall(tdvmcall::wrmsr(gprs.rcx as u32, value)))?;
        }
        reason::EPT_VIOLATION => return Err(VeError::NeedsDecode),
        other => return Err(VeError::Unhandled(other)),
    }
    gprs.rip = gprs.rip.wrapping_add(info.insn_len.into());
    Ok(())
}

/// Whether a `#VE` raised in user mode (ring 3) for `info` may be handled
/// for the program: only `CPUID` (glibc runs it at start-up). `HLT`, port
/// I/O and MSR accesses fault with `#GP` in ring 3 before any `#VE`, and an
/// EPT violation on the program's memory is not emulated for user code.
pub fn user_mode_allowed(info: &VeInfo) -> bool {
    info.reason == reason::CPUID
}

#[cfg(test)]
mod tests {
    use super::super::tdvmcall::{ret, sub};
    use super::*;

    #[test]
    fn user_mode_gets_cpuid_only() {
        let info = |reason| VeInfo {
            reason,
            qualification: 0,
            gla: 0,
            gpa: 0,
            insn_len: 2,
        };
        assert!(user_mode_allowed(&info(reason::CPUID)));
        for r in [
            reason::HLT,
            reason::IO,
            reason::MSR_READ,
            reason::MSR_WRITE,
            reason::EPT_VIOLATION,
        ] {
            assert!(!user_mode_allowed(&info(r)), "{r}");
        }
    }
    use alloc::vec::Vec;

    /// A host that answers from a script and records the calls.
    #[derive(Default)]
    struct Mock {
        calls: Vec<Regs>,
        fail: bool,
    }

    impl Host for Mock {
        fn vmcall(&mut self, regs: Regs) -> Regs {
            self.calls.push(regs);
            let mut out = regs;
            out.r10 = if self.fail { ret::INVALID_OPERAND } else { 0 };
            match regs.r11 {
                sub::CPUID => (out.r12, out.r13, out.r14, out.r15) = (0x11, 0x22, 0x33, 0x44),
                sub::IO => out.r11 = 0xaabb_ccdd,
                sub::RDMSR => out.r11 = 0x1234_5678_9abc_def0,
                _ => {}
            }
            out
        }
    }

    fn info(reason: u32, qualification: u64) -> VeInfo {
        VeInfo {
            reason,
            qualification,
            gla: 0,
            gpa: 0,
            insn_len: 2,
        }
    }

    #[test]
    fn veinfo_is_decoded_from_the_registers() {
        let r = Regs {
            rcx: 48,
            rdx: 0x181,
            r8: 0xffff_8000_fee0_0020,
            r9: 0xfee0_0020,
            r10: (7 << 32) | 3,
            ..Regs::default()
        };
        let v = veinfo(&r).unwrap();
        assert_eq!((v.reason, v.gpa, v.insn_len), (48, 0xfee0_0020, 3));
        assert!(veinfo(&Regs { rax: 1, ..r }).is_err());
    }

    #[test]
    fn cpuid_io_and_msrs_are_performed_through_the_host() {
        let mut h = Mock::default();
        let mut g = Gprs {
            rax: 0x4000_0001,
            rip: 0x1000,
            ..Gprs::default()
        };
        handle(&mut h, &info(reason::CPUID, 0), &mut g).unwrap();
        assert_eq!(
            (g.rax, g.rbx, g.rcx, g.rdx, g.rip),
            (0x11, 0x22, 0x33, 0x44, 0x1002)
        );
        // Outside the hypervisor range the host is not asked: zeros.
        let asked = h.calls.len();
        (g.rax, g.rbx, g.rcx, g.rdx) = (0x8000_0008, 9, 9, 9);
        handle(&mut h, &info(reason::CPUID, 0), &mut g).unwrap();
        assert_eq!((g.rax, g.rbx, g.rcx, g.rdx, g.rip), (0, 0, 0, 0, 0x1004));
        assert_eq!(h.calls.len(), asked);
        g.rip = 0x1002;
        // in al, 0x71: size 1, IN, port 0x71; only AL changes.
        g.rax = 0xffff_ffff_ffff_ff00;
        handle(&mut h, &info(reason::IO, (0x71 << 16) | 8), &mut g).unwrap();
        assert_eq!(g.rax, 0xffff_ffff_ffff_ffdd);
        // in eax, dx: the upper half is zeroed.
        handle(&mut h, &info(reason::IO, (0xcfc << 16) | 8 | 3), &mut g).unwrap();
        assert_eq!(g.rax, 0xaabb_ccdd);
        // out dx, al: the value goes to the host.
        g.rax = 0x41;
        handle(&mut h, &info(reason::IO, 0x3f8 << 16), &mut g).unwrap();
        let out = h.calls.last().unwrap();
        assert_eq!((out.r12, out.r13, out.r14, out.r15), (1, 1, 0x3f8, 0x41));
        // rdmsr splits EDX:EAX; wrmsr joins them.
        g.rcx = 0x1b;
        handle(&mut h, &info(reason::MSR_READ, 0), &mut g).unwrap();
        assert_eq!((g.rax, g.rdx), (0x9abc_def0, 0x1234_5678));
        handle(&mut h, &info(reason::MSR_WRITE, 0), &mut g).unwrap();
        assert_eq!(h.calls.last().unwrap().r13, 0x1234_5678_9abc_def0);
        handle(&mut h, &info(reason::HLT, 0), &mut g).unwrap();
    }

    #[test]
    fn ept_violations_are_mmio_only_in_the_shared_half() {
        let shared = 1 << 47;
        let mut v = info(reason::EPT_VIOLATION, 0);
        v.gpa = shared | 0xfee0_0000;
        assert!(is_mmio(&v, shared));
        v.gpa = 0xfee0_0000;
        assert!(!is_mmio(&v, shared), "a private GPA is not a device");
        assert!(!is_mmio(&v, 0));
        v.gpa |= shared;
        v.reason = reason::IO;
        assert!(!is_mmio(&v, shared));
    }

    #[test]
    fn an_ept_violation_names_the_device_address_and_direction() {
        let shared = 1 << 47;
        let mut v = info(reason::EPT_VIOLATION, 0);
        v.gpa = shared | 0xd000_0050;
        // Qualification: bit 0 read, bit 1 write.
        v.qualification = 0x1;
        assert_eq!(mmio_access(&v, shared), Some((0xd000_0050, false)));
        v.qualification = 0x2;
        assert_eq!(mmio_access(&v, shared), Some((0xd000_0050, true)));
        v.gpa = 0xd000_0050;
        assert_eq!(mmio_access(&v, shared), None, "private: not a device");
    }

    #[test]
    fn what_cannot_be_handled_is_an_error_and_rip_stays() {
        let mut h = Mock::default();
        let mut g = Gprs {
            rip: 0x1000,
            ..Gprs::default()
        };
        // rep outsb: string and REP.
        assert_eq!(
            handle(&mut h, &info(reason::IO, (0x3f8 << 16) | (3 << 4)), &mut g),
            Err(VeError::UnsupportedIo)
        );
        assert_eq!(
            handle(&mut h, &info(reason::EPT_VIOLATION, 0), &mut g),
            Err(VeError::NeedsDecode)
        );
        assert_eq!(
            handle(&mut h, &info(99, 0), &mut g),
            Err(VeError::Unhandled(99))
        );
        h.fail = true;
        g.rax = 0x4000_0000;
        assert!(matches!(
            handle(&mut h, &info(reason::CPUID, 0), &mut g),
            Err(VeError::Host(_))
        ));
        assert_eq!(g.rip, 0x1000);
        assert!(h.calls.iter().all(|c| c.r11 != sub::IO || c.r12 != 0));
    }
}
