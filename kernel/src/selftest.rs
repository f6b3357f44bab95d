//! Tests that fail on purpose, to prove the host runner notices: each is
//! `#[ignore]`d, so it runs only when named exactly (`ktest=selftest::…`),
//! which the runner's own tests in `tests/tests/runner.rs` do.

use crate::ktest;

ktest!(
    #[ignore]
    fn must_fail() {
        assert_eq!(1 + 1, 3, "this test fails on purpose");
    }
);

ktest!(
    #[ignore]
    fn hang() {
        loop {
            x86_64::instructions::hlt();
        }
    }
);

ktest!(
    #[ignore]
    fn uncaught_exception() {
        // SAFETY: deliberately raises #UD with no catch armed: the kernel must
        // report the exception and exit with the failure code.
        unsafe { core::arch::asm!("ud2") };
    }
);

ktest!(
    #[ignore]
    fn triple_fault() {
        use x86_64::structures::DescriptorTablePointer;
        let empty = DescriptorTablePointer {
            limit: 0,
            base: x86_64::VirtAddr::new(0),
        };
        // SAFETY: deliberately loads an empty IDT and raises #UD: no handler can
        // be found, so the CPU triple-faults and QEMU (with -no-reboot) stops.
        unsafe {
            x86_64::instructions::interrupts::disable();
            x86_64::instructions::tables::lidt(&empty);
            core::arch::asm!("ud2");
        }
    }
);

ktest!(
    #[ignore]
    fn passes_when_named() {}
);
