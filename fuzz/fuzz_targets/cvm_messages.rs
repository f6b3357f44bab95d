//! Fuzz what a hostile host or secure-processor channel can hand the CVM
//! protocol code: GHCB pages, page-state-change descriptors, guest-message
//! headers, SNP attestation reports, TDREPORTs, TDVMCALL answers and #VE
//! information (`cvm::snp::hostile_tests` does the same on stable with
//! seeded random answers). Any input must decode or give a clean error, never a panic.
#![no_main]

use cvm::snp::{ghcb, guest_msg, psc, report};
use cvm::tdx::{self, tdcall::Regs};
use libfuzzer_sys::fuzz_target;

fn word(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (j, x) in b.iter_mut().enumerate() {
        *x = data.get(i * 8 + j).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let mut g = ghcb::Ghcb::default();
    let n = data.len().min(ghcb::GHCB_BYTES);
    g.as_bytes_mut()[..n].copy_from_slice(&data[..n]);
    let _ = g.check_result();
    let _ = g.returned(ghcb::Field::Rax);
    let _ = ghcb::IoioInfo::decode(word(data, 0));
    if psc::Descriptor::read_header(data).is_ok() {
        for i in 0..4 {
            let _ = psc::Descriptor::read_entry(data, i);
        }
    }
    let mut page = [0u8; guest_msg::MESSAGE_BYTES];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let _ = guest_msg::Header::read(&page);
    let _ = report::parse(data);
    let _ = tdx::report::parse(data);
    let regs = Regs {
        rax: word(data, 0),
        rcx: word(data, 1),
        rdx: word(data, 2),
        r8: word(data, 3),
        r9: word(data, 4),
        r10: word(data, 5),
        r11: word(data, 6),
        ..Regs::default()
    };
    let _ = tdx::tdcall::vp_info_result(&regs);
    let _ = tdx::tdvmcall::map_gpa_result(&regs, word(data, 7), word(data, 8));
    let _ = tdx::ve::veinfo(&regs);
    let _ = tdx::ve::io_qualification(word(data, 9));
});
