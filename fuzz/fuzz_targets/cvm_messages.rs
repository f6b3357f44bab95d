//! Fuzz what a hostile host or secure-processor channel can hand the CVM
//! protocol code: GHCB pages, page-state-change headers, guest-message
//! responses, SNP attestation reports, TDREPORTs, MapGPA answers and #VE
//! information. Any input must decode or give a clean error, never a panic.
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
    let mut page = [0u8; ghcb::GHCB_BYTES];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let g = ghcb::Ghcb::from_bytes(&page);
    let _ = g.outcome();
    let _ = g.get(ghcb::offset::RAX);
    if let Some(after) = psc::read_header(data) {
        let before = psc::Header {
            cur_entry: 0,
            end_entry: after.end_entry,
        };
        let _ = psc::check_progress(before, after, word(data, 1));
    }
    let mut channel = guest_msg::Channel::new(&[1; 32], 0);
    let _ = channel.open_response(guest_msg::msg_type::REPORT_REQ, data);
    let _ = guest_msg::report_from_response(data);
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
