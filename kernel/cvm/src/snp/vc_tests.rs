//! Tests of the `#VC` dispatch over a register file, with the mock
//! hypervisor of the GHCB-request tests.

use super::*;
use crate::snp::calls::tests::MockHv;

fn caller() -> GhcbCaller<MockHv> {
    GhcbCaller::new(MockHv::default(), 2)
}

fn regs() -> VcRegisters {
    VcRegisters {
        rip: 0x1000,
        ..VcRegisters::default()
    }
}

#[test]
fn port_instructions_decode() {
    let d = |b: &[u8]| decode_port_insn(b);
    assert_eq!(
        d(&[0xe4, 0x60]),
        Ok(PortInsn {
            is_in: true,
            size_bytes: 1,
            immediate_port: Some(0x60),
            len: 2
        })
    );
    assert_eq!(
        d(&[0x66, 0xed]).map(|p| (p.is_in, p.size_bytes, p.len)),
        Ok((true, 2, 2))
    );
    assert_eq!(
        d(&[0xef]).map(|p| (p.is_in, p.size_bytes, p.len)),
        Ok((false, 4, 1))
    );
    assert_eq!(
        d(&[0x66, 0xe7, 0x80]).map(|p| (p.size_bytes, p.len)),
        Ok((2, 3))
    );
    assert_eq!(d(&[0xee]).map(|p| p.immediate_port), Ok(None));
    assert!(matches!(d(&[0x6e]), Err(Error::Unsupported(_))));
    assert!(matches!(d(&[0x90]), Err(Error::Protocol(_))));
    assert_eq!(d(&[0xe6]), Err(Error::InvalidArgument));
    assert!(d(&[]).is_err());
}

#[test]
fn cpuid_fills_four_registers_and_steps_over() {
    let mut c = caller();
    let mut r = regs();
    r.rax = 0xffff_ffff_0000_0007;
    r.rcx = 1;
    handle(exit_code::CPUID, &mut r, &[0x0f, 0xa2, 0x90], &mut c).unwrap();
    assert_eq!((r.rax, r.rbx, r.rcx, r.rdx), (0x107, 0x201, 0, 4));
    assert_eq!(r.rip, 0x1002);
    // The exit code must match the instruction.
    let mut r = regs();
    assert!(handle(exit_code::CPUID, &mut r, &[0x0f, 0x31], &mut c).is_err());
    assert_eq!(r.rip, 0x1000);
}

#[test]
fn in_merges_by_size_and_out_uses_dx() {
    let mut c = caller();
    let mut r = regs();
    r.rax = 0x1111_2222_3333_4444;
    handle(exit_code::IOIO, &mut r, &[0xe4, 0x60], &mut c).unwrap();
    assert_eq!(r.rax, 0x1111_2222_3333_440d);
    assert_eq!(r.rip, 0x1002);
    handle(exit_code::IOIO, &mut r, &[0x66, 0xed], &mut c).unwrap();
    assert_eq!(r.rax, 0x1111_2222_3333_f00d);
    handle(exit_code::IOIO, &mut r, &[0xed], &mut c).unwrap();
    assert_eq!(r.rax, 0xcafe_f00d);
    assert_eq!(r.rip, 0x1005);
    r.rdx = 0x3f8;
    r.rax = 0x41;
    handle(exit_code::IOIO, &mut r, &[0xee], &mut c).unwrap();
    assert_eq!(c.host().port_writes, [(0x3f8, 1, 0x41)]);
}

#[test]
fn msr_tsc_and_tscp() {
    let mut c = caller();
    let mut r = regs();
    r.rcx = 0xc000_0103;
    r.rax = 0xffff_ffff_5566_7788;
    r.rdx = 0x1122_3344;
    handle(exit_code::MSR, &mut r, &[0x0f, 0x30], &mut c).unwrap();
    assert_eq!(c.host().msrs, [(0xc000_0103, 0x1122_3344_5566_7788)]);
    r.rax = 0;
    r.rdx = 0;
    handle(exit_code::MSR, &mut r, &[0x0f, 0x32], &mut c).unwrap();
    assert_eq!((r.rax, r.rdx), (0x5566_7788, 0x1122_3344));
    assert!(handle(exit_code::MSR, &mut r, &[0x0f, 0x31], &mut c).is_err());
    handle(exit_code::RDTSC, &mut r, &[0x0f, 0x31], &mut c).unwrap();
    assert_eq!((r.rax, r.rdx), (0x89ab_cdef, 0x0123_4567));
    handle(exit_code::RDTSCP, &mut r, &[0x0f, 0x01, 0xf9], &mut c).unwrap();
    assert_eq!(r.rcx, 3);
    assert_eq!(r.rip, 0x1000 + 2 + 2 + 2 + 3);
}

#[test]
fn mmio_and_unknown_exits_are_errors() {
    let mut c = caller();
    let mut r = regs();
    assert!(matches!(
        handle(exit_code::NPF, &mut r, &[0x8b, 0x00], &mut c),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        handle(exit_code::WBINVD, &mut r, &[0x0f, 0x09], &mut c),
        Err(Error::Unsupported(_))
    ));
    assert_eq!(r.rip, 0x1000);
}

#[test]
fn user_mode_gets_cpuid_and_the_tsc_only() {
    for code in [exit_code::CPUID, exit_code::RDTSC, exit_code::RDTSCP] {
        assert!(user_mode_allowed(code), "{code:#x}");
    }
    for code in [exit_code::IOIO, exit_code::MSR, exit_code::NPF, 0, u64::MAX] {
        assert!(!user_mode_allowed(code), "{code:#x}");
    }
}
