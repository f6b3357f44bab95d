//! Hostile-host tests: every decoder and every exchange is fed
//! pseudo-random answers (a fixed-seed xorshift, so a failure reproduces)
//! and must return `Ok` or `Err`, never panic or loop forever.

use alloc::vec;

use super::calls::GhcbCaller;
use super::ghcb::{Ghcb, IoioInfo};
use super::guest_msg::{self, GuestChannel, GuestRequest, MESSAGE_BYTES};
use super::msr_protocol::{self as msr, CpuidRegister, PageState};
use super::secrets::SecretsPage;
use super::{GhcbProtocol, MsrProtocol, Result, report, vc};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// A hypervisor that scribbles over the GHCB: sometimes all of it,
/// sometimes only the verdict and a few bytes, so that both the early
/// checks and the later ones are reached.
struct Scribbler(Rng);

impl GhcbProtocol for Scribbler {
    fn ghcb_exchange(&mut self, ghcb: &mut Ghcb) {
        let page = ghcb.as_bytes_mut();
        if self.0.next().is_multiple_of(4) {
            self.0.fill(page);
        } else {
            // Success verdict, random registers, valid bits and buffer head.
            page[0x398..0x3a8].fill(0);
            self.0.fill(&mut page[0x1f8..0x200]);
            self.0.fill(&mut page[0x308..0x320]);
            self.0.fill(&mut page[0x3f0..0x400]);
            let n = (self.0.next() % 16) as usize;
            self.0.fill(&mut page[0x800..0x800 + n]);
        }
    }

    fn ghcb_gpa(&self) -> u64 {
        0x5000
    }
}

impl MsrProtocol for Rng {
    fn msr_exchange(&mut self, _request: u64) -> u64 {
        self.next()
    }
}

#[test]
fn random_msr_protocol_answers_are_errors_or_values() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let v = rng.next();
        let _ = msr::SevInfo::decode(v).and_then(|i| i.negotiate());
        let _ = msr::decode_cpuid_response(v, CpuidRegister::Edx);
        let _ = msr::decode_preferred_gpa(v);
        let _ = msr::check_register_gpa_response(v, 0x1234);
        let _ = msr::check_psc_response(v);
        let _ = msr::decode_hv_features(v);
        let _ = IoioInfo::decode(v);
    }
    let _ = msr::negotiate(&mut rng);
    let _ = msr::hypervisor_features(&mut rng);
    let _ = msr::change_page_state(&mut rng, 0x100, 64, PageState::Shared);
}

#[test]
fn random_ghcb_answers_never_panic() {
    let mut c = GhcbCaller::new(Scribbler(Rng(0x1234_5678_9abc_def1)), 2);
    for _ in 0..300 {
        let _ = c.cpuid(0xd, 1, 7);
        let _ = c.io_in(0x3f8, 4);
        let _ = c.io_out(0x3f8, 1, 0x41);
        let _ = c.rdmsr(0x1b);
        let _ = c.wrmsr(0x1b, 1);
        let _ = c.rdtsc();
        let _ = c.rdtscp();
        let _ = c.mmio_read(0xfeb0_0000, 8);
        let _ = c.guest_request(0x1000, 0x2000);
        // Bounded by the stall limit whatever the host writes.
        let _ = c.page_state_change(0, 300 * 4096, PageState::Private);
        let mut regs = vc::VcRegisters::default();
        let _ = vc::handle(super::ghcb::exit_code::IOIO, &mut regs, &[0xed], &mut c);
    }
}

#[test]
fn random_bytes_into_parsers() {
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    for _ in 0..500 {
        let mut page = vec![0u8; 4096];
        rng.fill(&mut page);
        let _ = report::parse(&page);
        let _ = guest_msg::report_response(&page);
        let _ = SecretsPage::parse(&page);
        let _ = vc::decode_port_insn(&page[..(rng.next() % 16) as usize]);
    }
}

/// A host that answers guest requests with random pages.
struct RandomResponses(Rng);

impl GuestRequest for RandomResponses {
    fn guest_request(
        &mut self,
        _request: &[u8; MESSAGE_BYTES],
        response: &mut [u8; MESSAGE_BYTES],
    ) -> Result<()> {
        self.0.fill(response);
        // Sometimes a plausible header, so the later checks are reached.
        if self.0.next().is_multiple_of(2) {
            response[0x20..0x28].copy_from_slice(&2u64.to_le_bytes());
            response[0x30..0x36].copy_from_slice(&[1, 1, 0x60, 0, 6, 1]);
            response[0x3c] = 0;
        }
        Ok(())
    }
}

#[test]
fn random_guest_responses_are_rejected() {
    let mut secrets = vec![0u8; 4096];
    secrets[0x20..0x40].fill(7);
    let secrets = SecretsPage::parse(&secrets).unwrap();
    let mut host = RandomResponses(Rng(0x5eed_5eed_5eed_5eed));
    for _ in 0..200 {
        let mut channel = GuestChannel::new(&secrets, 0).unwrap();
        // Forging a GCM tag at random does not happen.
        assert!(guest_msg::request_report(&mut channel, &mut host, &[1; 64], 0).is_err());
        assert!(channel.is_closed());
    }
}
