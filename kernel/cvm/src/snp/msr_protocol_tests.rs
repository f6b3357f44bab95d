//! Tests of the GHCB MSR protocol against the spec's bit layouts and the
//! values Linux's `sev-common.h` macros produce.

use super::*;
use alloc::vec::Vec;

/// A hypervisor answering each request with `answer(request)` and
/// recording the requests.
struct MockHost<F: FnMut(u64) -> u64> {
    answer: F,
    requests: Vec<u64>,
}

impl<F: FnMut(u64) -> u64> MsrProtocol for MockHost<F> {
    fn msr_exchange(&mut self, request: u64) -> u64 {
        self.requests.push(request);
        (self.answer)(request)
    }
}

fn host<F: FnMut(u64) -> u64>(answer: F) -> MockHost<F> {
    MockHost {
        answer,
        requests: Vec::new(),
    }
}

#[test]
fn codes_match_the_spec_table() {
    assert_eq!(
        [
            info::SEV_INFO_RESP,
            info::SEV_INFO_REQ,
            info::CPUID_REQ,
            info::CPUID_RESP,
            info::PREFERRED_GPA_REQ,
            info::PREFERRED_GPA_RESP,
            info::REGISTER_GPA_REQ,
            info::REGISTER_GPA_RESP,
            info::PSC_REQ,
            info::PSC_RESP,
            info::HV_FEATURES_REQ,
            info::HV_FEATURES_RESP,
            info::TERMINATE_REQ,
        ],
        [
            0x001, 0x002, 0x004, 0x005, 0x010, 0x011, 0x012, 0x013, 0x014, 0x015, 0x080, 0x081,
            0x100
        ]
    );
    assert_eq!(MSR_GHCB, 0xc001_0130);
}

#[test]
fn sev_info_layout() {
    // GHCB_MSR_SEV_INFO(2, 1, 51) in Linux.
    let value = 0x0002_0001_3300_0001;
    let info = SevInfo::decode(value).unwrap();
    assert_eq!(
        info,
        SevInfo {
            max_protocol: 2,
            min_protocol: 1,
            c_bit: 51
        }
    );
    assert_eq!(info.encode(), value);
    assert_eq!(info.negotiate(), Ok(2));
    assert_eq!(SevInfo::REQUEST, 0x002);
    // A request code where a response belongs.
    assert!(SevInfo::decode(0x0002_0001_3300_0002).is_err());
}

#[test]
fn sev_info_negotiation_refuses_disjoint_ranges() {
    let only_v1 = SevInfo {
        max_protocol: 1,
        min_protocol: 1,
        c_bit: 51,
    };
    assert!(only_v1.negotiate().is_err());
    let only_v3 = SevInfo {
        max_protocol: 3,
        min_protocol: 3,
        c_bit: 51,
    };
    assert!(only_v3.negotiate().is_err());
    let inverted = SevInfo {
        max_protocol: 1,
        min_protocol: 2,
        c_bit: 51,
    };
    assert!(inverted.negotiate().is_err());
    let wide = SevInfo {
        max_protocol: 5,
        min_protocol: 1,
        c_bit: 47,
    };
    assert_eq!(wide.negotiate(), Ok(2));
    let mut h = host(|_| wide.encode());
    assert_eq!(negotiate(&mut h), Ok((2, 47)));
    assert_eq!(h.requests, [0x002]);
}

#[test]
fn cpuid_layout() {
    // GHCB_CPUID_REQ(0x8000001f, GHCB_CPUID_REQ_EBX) in Linux.
    assert_eq!(
        cpuid_request(0x8000_001f, CpuidRegister::Ebx),
        0x8000_001f_4000_0004
    );
    assert_eq!(cpuid_request(1, CpuidRegister::Eax), 0x0000_0001_0000_0004);
    assert_eq!(cpuid_request(7, CpuidRegister::Ecx), 0x0000_0007_8000_0004);
    assert_eq!(
        cpuid_request(0xd, CpuidRegister::Edx),
        0x0000_000d_c000_0004
    );
    // Response: value in 63:32, register echoed in 31:30.
    assert_eq!(
        decode_cpuid_response(0x1234_5678_4000_0005, CpuidRegister::Ebx),
        Ok(0x1234_5678)
    );
    assert!(decode_cpuid_response(0x1234_5678_8000_0005, CpuidRegister::Ebx).is_err());
    assert!(decode_cpuid_response(0x1234_5678_4000_0004, CpuidRegister::Ebx).is_err());
}

#[test]
fn ghcb_gpa_layout() {
    assert_eq!(PREFERRED_GPA_REQUEST, 0x010);
    assert_eq!(
        decode_preferred_gpa(0x0000_0000_1234_5011),
        Ok(Some(0x12345))
    );
    assert_eq!(decode_preferred_gpa(0xffff_ffff_ffff_f011), Ok(None));
    assert!(decode_preferred_gpa(0x0000_0000_1234_5013).is_err());
    // GHCB_MSR_REG_GPA_REQ_VAL(0x12345) in Linux.
    assert_eq!(register_gpa_request(0x12345), 0x0000_0000_1234_5012);
    assert_eq!(
        check_register_gpa_response(0x0000_0000_1234_5013, 0x12345),
        Ok(())
    );
    // Refused (all ones) or another page.
    assert!(check_register_gpa_response(0xffff_ffff_ffff_f013, 0x12345).is_err());
    assert!(check_register_gpa_response(0x0000_0000_1234_6013, 0x12345).is_err());
    let mut h = host(|req| (req & !0xfff) | 0x013);
    assert_eq!(register_ghcb(&mut h, 0x777), Ok(()));
    let mut refusing = host(|_| 0xffff_ffff_ffff_f013);
    assert!(register_ghcb(&mut refusing, 0x777).is_err());
}

#[test]
fn psc_layout() {
    // GHCB_MSR_PSC_REQ_GFN(0x12345, SNP_PAGE_STATE_SHARED) in Linux.
    assert_eq!(
        psc_request(0x12345, PageState::Shared),
        Some(0x0020_0000_1234_5014)
    );
    assert_eq!(
        psc_request(0xff_ffff_ffff, PageState::Private),
        Some(0x001f_ffff_ffff_f014)
    );
    assert_eq!(psc_request(1 << 40, PageState::Private), None);
    assert_eq!(check_psc_response(0x0000_0000_0000_0015), Ok(()));
    assert_eq!(
        check_psc_response(0x0000_0003_0000_0015),
        Err(Error::HostError(3))
    );
    assert!(check_psc_response(0x0000_0000_0000_0014).is_err());
}

#[test]
fn psc_over_a_range_stops_at_the_first_error() {
    let mut h = host(|req| {
        if (req >> 12) & 0xff_ffff_ffff == 0x102 {
            0x0000_0001_0000_0015
        } else {
            0x015
        }
    });
    assert_eq!(
        change_page_state(&mut h, 0x100, 4, PageState::Shared),
        Err(Error::HostError(1))
    );
    assert_eq!(h.requests.len(), 3);
    let mut ok = host(|_| 0x015);
    assert_eq!(
        change_page_state(&mut ok, 0x100, 4, PageState::Private),
        Ok(())
    );
    assert_eq!(ok.requests[3], 0x0010_0000_0010_3014);
    assert_eq!(
        change_page_state(&mut ok, u64::MAX, 2, PageState::Private),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn hypervisor_features_layout() {
    assert_eq!(HV_FEATURES_REQUEST, 0x080);
    assert_eq!(decode_hv_features(0x0000_0000_0000_3081), Ok(0x3));
    assert!(decode_hv_features(0x0000_0000_0000_3080).is_err());
    let mut snp = host(|_| 0x1081);
    assert_eq!(hypervisor_features(&mut snp), Ok(hv_features::SNP));
    let mut no_snp = host(|_| 0x2081);
    assert!(hypervisor_features(&mut no_snp).is_err());
}

#[test]
fn termination_layout() {
    // GHCB_SEV_TERM_REASON(SEV_TERM_SET_GEN, GHCB_SNP_UNSUPPORTED).
    assert_eq!(
        terminate_request(REASON_SET_GENERAL, REASON_SNP_UNSUPPORTED),
        0x20100
    );
    assert_eq!(terminate_request(1, 4), 0x41100);
    assert_eq!(terminate_request(0xf, 0xff), 0xff_f100);
    // The set is four bits wide.
    assert_eq!(terminate_request(0x1f, 0), 0xf100);
}
