//! The emulated-MMIO mode (`platform.mmio=emulate`): device registers left
//! unmapped, every access decoded and performed by the page-fault path.
//! The in-guest test `emulated_mmio_matches_direct_access` (ignored unless
//! named, since it needs the mode) boots with the mode on and compares
//! local APIC and I/O APIC registers read and written through the trapped
//! mapping with direct accesses. The programs' tests in this mode are in
//! `network.rs`; the decoder's host tests are `cargo test -p cvm insn`.

use tools::ktest::{self, Event};

const TEST: &str = "kernel::platform::ktests::emulated_mmio_matches_direct_access";

#[test]
fn trapped_device_registers_match_direct_accesses() {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("QEMU configuration");
    config.kernel_args.push("platform.mmio=emulate".into());
    let mut lines = Vec::new();
    let summary = ktest::run(&config, TEST, |event| {
        if let Event::Line(l) = event {
            lines.push(l.to_string());
        }
    })
    .expect("the guest ran");
    assert_eq!(summary.passed, [TEST], "{summary:#?}\n{lines:#?}");
    assert!(summary.failed.is_empty(), "{summary:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("mmio: emulated device-register accesses")),
        "{lines:#?}"
    );
    // The cost per access (docs/PERFORMANCE.md; `-- --nocapture` shows it).
    for l in lines.iter().filter(|l| l.contains("mmio cost:")) {
        println!("{l}");
    }
}
