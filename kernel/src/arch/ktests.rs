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

/// Loads XMM0–15 from `regs` (16 × 16 bytes).
///
/// # Safety
/// SSE must be on (`fpu::init`). The kernel is soft-float, so no compiled
/// code holds values in these registers.
unsafe fn load_xmm(regs: &[[u8; 16]; 16]) {
    // SAFETY: reads 256 bytes from `regs`; writes only XMM0–15, which no
    // compiled kernel code uses (the caller's contract).
    unsafe {
        core::arch::asm!(
            "movdqu xmm0, [{p}]", "movdqu xmm1, [{p} + 16]", "movdqu xmm2, [{p} + 32]",
            "movdqu xmm3, [{p} + 48]", "movdqu xmm4, [{p} + 64]", "movdqu xmm5, [{p} + 80]",
            "movdqu xmm6, [{p} + 96]", "movdqu xmm7, [{p} + 112]", "movdqu xmm8, [{p} + 128]",
            "movdqu xmm9, [{p} + 144]", "movdqu xmm10, [{p} + 160]", "movdqu xmm11, [{p} + 176]",
            "movdqu xmm12, [{p} + 192]", "movdqu xmm13, [{p} + 208]", "movdqu xmm14, [{p} + 224]",
            "movdqu xmm15, [{p} + 240]",
            p = in(reg) regs.as_ptr(),
            options(nostack, readonly, preserves_flags),
        );
    }
}

/// Stores XMM0–15 into `regs`.
fn store_xmm(regs: &mut [[u8; 16]; 16]) {
    // SAFETY: writes 256 bytes to `regs`, which we borrow mutably; reading
    // XMM registers has no other effect (SSE is on once the kernel booted).
    unsafe {
        core::arch::asm!(
            "movdqu [{p}], xmm0", "movdqu [{p} + 16], xmm1", "movdqu [{p} + 32], xmm2",
            "movdqu [{p} + 48], xmm3", "movdqu [{p} + 64], xmm4", "movdqu [{p} + 80], xmm5",
            "movdqu [{p} + 96], xmm6", "movdqu [{p} + 112], xmm7", "movdqu [{p} + 128], xmm8",
            "movdqu [{p} + 144], xmm9", "movdqu [{p} + 160], xmm10", "movdqu [{p} + 176], xmm11",
            "movdqu [{p} + 192], xmm12", "movdqu [{p} + 208], xmm13", "movdqu [{p} + 224], xmm14",
            "movdqu [{p} + 240], xmm15",
            p = in(reg) regs.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
}

ktest!(
    fn audit_blake3_runs_simd_and_leaves_the_xmm_registers_as_they_were() {
        // SSE4.1 under `-cpu max` and on any host CPU of the last 15 years;
        // never the portable code (which would not touch the registers and
        // so prove nothing below).
        let implementation = ::audit::simd::implementation();
        assert!(
            implementation == "SSE4.1" || implementation == "SSE2",
            "BLAKE3 runs {implementation}"
        );
        let before: [[u8; 16]; 16] =
            core::array::from_fn(|r| core::array::from_fn(|b| (r * 16 + b) as u8 ^ 0xa5));
        let mut after = [[0u8; 16]; 16];
        // SAFETY: the kernel enabled SSE at boot and holds nothing in XMM.
        unsafe { load_xmm(&before) };
        // A 4 KiB keyed hash, the block MAC, through the audit crate's scope.
        let right = ::audit::simd::known_answer_ok();
        store_xmm(&mut after);
        assert!(right, "the 4 KiB keyed hash is wrong");
        assert_eq!(before, after, "a BLAKE3 call changed the XMM registers");
    }
);
