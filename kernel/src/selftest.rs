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
            crate::platform::platform().halt();
        }
    }
);

ktest!(
    #[ignore]
    fn uncaught_exception() {
        // No catch armed: the kernel must report the exception and exit
        // with the failure code.
        crate::arch::cpu::raise_invalid_opcode();
    }
);

ktest!(
    #[ignore]
    fn triple_fault() {
        // No handler can be found: the CPU triple-faults and QEMU (with
        // -no-reboot) stops.
        crate::arch::cpu::triple_fault();
    }
);

ktest!(
    #[ignore]
    fn passes_when_named() {}
);
