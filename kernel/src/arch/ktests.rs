//! In-guest tests of the exception path, the timer and clock, and the CPU
//! protections.

use core::arch::global_asm;

use super::catch::catch_fault;
use super::{cpu, gdt};
use crate::{ktest, time};

global_asm!(
    r#"
    .text
    .global ktest_ud2
ktest_ud2:
    ud2
    ret
    .global ktest_div0
ktest_div0:
    xor eax, eax
    xor edx, edx
    xor ecx, ecx
ktest_div0_insn:
    div ecx
    ret
    .global ktest_div0_insn
    .global ktest_noncanonical
ktest_noncanonical:
    movabs rax, 0x8000000000000000
    mov rax, [rax]
    ret
    "#
);

unsafe extern "C" {
    fn ktest_ud2();
    fn ktest_div0();
    fn ktest_div0_insn();
    fn ktest_noncanonical();
}

extern "C" fn call(f: usize) {
    // SAFETY: `f` is one of the assembly functions above, which follow the C
    // ABI; the exceptions they raise are what the tests expect.
    let f: extern "C" fn() = unsafe { core::mem::transmute(f) };
    f();
}

ktest!(
    fn invalid_opcode_is_delivered_with_its_rip() {
        let f = ktest_ud2 as *const () as usize;
        let fault = catch_fault(call, f).expect("ud2 must raise #UD");
        assert_eq!((fault.vector, fault.rip), (6, f as u64));
    }
);

ktest!(
    fn divide_error_is_delivered() {
        let fault =
            catch_fault(call, ktest_div0 as *const () as usize).expect("div by 0 must raise #DE");
        assert_eq!(
            (fault.vector, fault.rip),
            (0, ktest_div0_insn as *const () as usize as u64)
        );
    }
);

ktest!(
    fn non_canonical_access_is_a_general_protection_fault() {
        let fault =
            catch_fault(call, ktest_noncanonical as *const () as usize).expect("must raise #GP");
        assert_eq!((fault.vector, fault.error_code), (13, 0));
    }
);

extern "C" fn read_null(_: usize) {
    // SAFETY: deliberately reads the unmapped page 0; the test expects #PF.
    core::hint::black_box(unsafe { core::ptr::null::<u64>().read_volatile() });
}

ktest!(
    fn null_read_is_a_non_present_page_fault() {
        let fault = catch_fault(read_null, 0).expect("page 0 must be unmapped");
        assert_eq!((fault.vector, fault.cr2, fault.error_code), (14, 0, 0));
    }
);

ktest!(
    fn execution_continues_normally_after_a_caught_fault() {
        for _ in 0..100 {
            assert!(catch_fault(call, ktest_ud2 as *const () as usize).is_some());
        }
        extern "C" fn nothing(_: usize) {}
        assert_eq!(catch_fault(nothing, 0), None);
    }
);

ktest!(
    fn timer_ticks_advance_at_the_programmed_rate() {
        let (t0, ns0) = (time::ticks(), time::now_ns());
        while time::ticks() < t0 + 20 {
            assert!(
                time::now_ns() - ns0 < 5_000_000_000,
                "timer stalled at {} ticks",
                time::ticks() - t0
            );
            x86_64::instructions::hlt();
        }
        let elapsed_ms = (time::now_ns() - ns0) / 1_000_000;
        // 20 ticks at the default 100 Hz is 200 ms; a loaded host may stretch
        // it, but never shrink it much below.
        assert!(elapsed_ms >= 150, "20 ticks took only {elapsed_ms} ms");
    }
);

ktest!(
    fn clock_is_monotonic_and_calibrated() {
        assert!(time::tsc_hz() > 100_000_000, "TSC at {} Hz", time::tsc_hz());
        let mut last = time::now_ns();
        for _ in 0..10_000 {
            let now = time::now_ns();
            assert!(now >= last);
            last = now;
        }
    }
);

ktest!(
    fn protections_are_on_where_the_cpu_has_them() {
        let f = cpu::features();
        let on = cpu::enable_protections(&f);
        assert!(on.nx, "NX must be on");
        assert_eq!((on.smep, on.smap), (f.smep, f.smap));
        let cr0 = x86_64::registers::control::Cr0::read();
        assert!(cr0.contains(x86_64::registers::control::Cr0Flags::WRITE_PROTECT));
    }
);

ktest!(
    fn gdt_layout_suits_syscall_and_sysret() {
        let s = gdt::selectors().expect("GDT loaded");
        // SYSRET loads SS from STAR[63:48] + 8 and CS from STAR[63:48] + 16.
        assert_eq!(s.user_code.0 & !3, (s.user_data.0 & !3) + 8);
        assert_eq!(s.kernel_data.0, s.kernel_code.0 + 8);
        assert_eq!((s.user_code.0 & 3, s.user_data.0 & 3), (3, 3));
    }
);
