//! Fuzz the ELF parser, the load planner and the initial stack builder:
//! any input must give `Ok` or a clean `ElfError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libos::elf::{AuxvInfo, ElfFile, LoadPlan, build_initial_stack};

fuzz_target!(|data: &[u8]| {
    let Ok(elf) = ElfFile::parse(data) else {
        return;
    };
    let _ = elf.load_span();
    for bias in [0u64, 0x5555_5555_4000, 0x7fff_ffff_f000] {
        if let Ok(plan) = LoadPlan::new(&elf, bias) {
            let _ = plan.page_protections();
            let aux = AuxvInfo::new(&plan, None, b"/fuzz", [0; 16]);
            let _ = build_initial_stack(0x7fff_ffff_f000, &[b"/fuzz"], &[b"A=B"], &aux, 1 << 16);
        }
    }
});
