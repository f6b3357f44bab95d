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

/// Loads XMM0–15 (`wide`: YMM0–15) from `regs`, 16 or 32 bytes a register.
///
/// # Safety
/// SSE (with `wide`, AVX) must be on (`fpu::init`). The kernel is
/// soft-float, so no compiled code holds values in these registers.
unsafe fn load_vectors(regs: &[[u8; 32]; 16], wide: bool) {
    // SAFETY: reads 512 bytes from `regs`; writes only XMM/YMM0–15, which
    // no compiled kernel code uses (the caller's contract).
    unsafe {
        if wide {
            core::arch::asm!(
                "vmovdqu ymm0, [{p}]", "vmovdqu ymm1, [{p} + 32]", "vmovdqu ymm2, [{p} + 64]",
                "vmovdqu ymm3, [{p} + 96]", "vmovdqu ymm4, [{p} + 128]", "vmovdqu ymm5, [{p} + 160]",
                "vmovdqu ymm6, [{p} + 192]", "vmovdqu ymm7, [{p} + 224]", "vmovdqu ymm8, [{p} + 256]",
                "vmovdqu ymm9, [{p} + 288]", "vmovdqu ymm10, [{p} + 320]", "vmovdqu ymm11, [{p} + 352]",
                "vmovdqu ymm12, [{p} + 384]", "vmovdqu ymm13, [{p} + 416]", "vmovdqu ymm14, [{p} + 448]",
                "vmovdqu ymm15, [{p} + 480]",
                p = in(reg) regs.as_ptr(),
                options(nostack, readonly, preserves_flags),
            );
        } else {
            core::arch::asm!(
                "movdqu xmm0, [{p}]", "movdqu xmm1, [{p} + 32]", "movdqu xmm2, [{p} + 64]",
                "movdqu xmm3, [{p} + 96]", "movdqu xmm4, [{p} + 128]", "movdqu xmm5, [{p} + 160]",
                "movdqu xmm6, [{p} + 192]", "movdqu xmm7, [{p} + 224]", "movdqu xmm8, [{p} + 256]",
                "movdqu xmm9, [{p} + 288]", "movdqu xmm10, [{p} + 320]", "movdqu xmm11, [{p} + 352]",
                "movdqu xmm12, [{p} + 384]", "movdqu xmm13, [{p} + 416]", "movdqu xmm14, [{p} + 448]",
                "movdqu xmm15, [{p} + 480]",
                p = in(reg) regs.as_ptr(),
                options(nostack, readonly, preserves_flags),
            );
        }
    }
}

/// Stores XMM0–15 (`wide`: YMM0–15) into `regs`; without `wide` the upper
/// 16 bytes of each entry are left alone.
///
/// # Safety
/// As for [`load_vectors`].
unsafe fn store_vectors(regs: &mut [[u8; 32]; 16], wide: bool) {
    // SAFETY: writes at most 512 bytes to `regs`, which we borrow mutably;
    // reading the registers has no other effect.
    unsafe {
        if wide {
            core::arch::asm!(
                "vmovdqu [{p}], ymm0", "vmovdqu [{p} + 32], ymm1", "vmovdqu [{p} + 64], ymm2",
                "vmovdqu [{p} + 96], ymm3", "vmovdqu [{p} + 128], ymm4", "vmovdqu [{p} + 160], ymm5",
                "vmovdqu [{p} + 192], ymm6", "vmovdqu [{p} + 224], ymm7", "vmovdqu [{p} + 256], ymm8",
                "vmovdqu [{p} + 288], ymm9", "vmovdqu [{p} + 320], ymm10", "vmovdqu [{p} + 352], ymm11",
                "vmovdqu [{p} + 384], ymm12", "vmovdqu [{p} + 416], ymm13", "vmovdqu [{p} + 448], ymm14",
                "vmovdqu [{p} + 480], ymm15",
                p = in(reg) regs.as_mut_ptr(),
                options(nostack, preserves_flags),
            );
        } else {
            core::arch::asm!(
                "movdqu [{p}], xmm0", "movdqu [{p} + 32], xmm1", "movdqu [{p} + 64], xmm2",
                "movdqu [{p} + 96], xmm3", "movdqu [{p} + 128], xmm4", "movdqu [{p} + 160], xmm5",
                "movdqu [{p} + 192], xmm6", "movdqu [{p} + 224], xmm7", "movdqu [{p} + 256], xmm8",
                "movdqu [{p} + 288], xmm9", "movdqu [{p} + 320], xmm10", "movdqu [{p} + 352], xmm11",
                "movdqu [{p} + 384], xmm12", "movdqu [{p} + 416], xmm13", "movdqu [{p} + 448], xmm14",
                "movdqu [{p} + 480], xmm15",
                p = in(reg) regs.as_mut_ptr(),
                options(nostack, preserves_flags),
            );
        }
    }
}

ktest!(
    fn audit_blake3_and_polyval_run_simd_and_leave_the_vector_registers_as_they_were() {
        // AVX2 under `-cpu max` (AVX enabled in XCR0), else SSE4.1 or SSE2;
        // never the portable code (which would not touch the registers and
        // so prove nothing below).
        let wide = super::fpu::avx_enabled();
        let implementation = ::audit::simd::implementation();
        let expected: &[&str] = if wide {
            &["AVX2", "SSE4.1", "SSE2"]
        } else {
            &["SSE4.1", "SSE2"]
        };
        assert!(
            expected.contains(&implementation),
            "BLAKE3 runs {implementation}"
        );
        // The block MACs' carry-less multiply (`-cpu max` has PCLMULQDQ).
        let mac = ::audit::simd::mac_implementation();
        let expected_mac = if wide { "CLMUL (AVX)" } else { "CLMUL (SSE)" };
        assert_eq!(mac, expected_mac, "POLYVAL runs {mac}");
        let before: [[u8; 32]; 16] =
            core::array::from_fn(|r| core::array::from_fn(|b| (r * 32 + b) as u8 ^ 0xa5));
        let mut after = [[0u8; 32]; 16];
        if !wide {
            // Only the low halves are loaded and stored back.
            for (a, b) in after.iter_mut().zip(&before) {
                a[16..].copy_from_slice(&b[16..]);
            }
        }
        // SAFETY: the kernel enabled SSE (and AVX, when `wide`) at boot and
        // holds nothing in these registers.
        unsafe { load_vectors(&before, wide) };
        // Keyed hashes of 4 and 8 KiB and POLYVAL of 32 bytes and 8 KiB
        // (the block MAC's one-block and eight-block loops), through the
        // audit crate's scope.
        let right = ::audit::simd::known_answer_ok();
        // SAFETY: as above.
        unsafe { store_vectors(&mut after, wide) };
        assert!(right, "a keyed hash or a POLYVAL is wrong");
        assert_eq!(
            before, after,
            "a BLAKE3 or POLYVAL call changed the vector registers"
        );
    }
);
