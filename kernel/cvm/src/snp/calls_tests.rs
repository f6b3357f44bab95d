//! Tests of the GHCB requests against a mock hypervisor that checks the
//! request's layout and answers like KVM does (or leaves registers
//! invalid, or injects an exception).

use super::*;
use alloc::vec::Vec;

/// A hypervisor with one port (0x3f8), MSRs, a TSC and a CPUID table.
#[derive(Debug, Default)]
pub(crate) struct MockHv {
    pub(crate) port_writes: Vec<(u16, u64, u64)>,
    pub(crate) msrs: Vec<(u32, u64)>,
    /// Answer without marking the registers valid.
    pub(crate) forget_valid_bits: bool,
    /// Answer with `#GP(0)` to inject.
    pub(crate) inject_gp: bool,
    pub(crate) guest_requests: Vec<(u64, u64)>,
    pub(crate) mmio_writes: Vec<(u64, usize, u64)>,
}

/// The mock's device: reads at 0xfeb0_0000 and above.
fn ghcb_code_is_read(gpa: u64) -> bool {
    gpa >= 0xfeb0_0000
}

impl GhcbProtocol for MockHv {
    fn ghcb_exchange(&mut self, ghcb: &mut Ghcb) {
        assert_eq!(ghcb.protocol_version(), 2);
        let info1 = ghcb.get(Field::SwExitInfo1).unwrap();
        let info2 = ghcb.get(Field::SwExitInfo2).unwrap();
        let mut out: Vec<(Field, u64)> = Vec::new();
        let code = ghcb.get(Field::SwExitCode).unwrap();
        match code {
            exit_code::CPUID => {
                let leaf = ghcb.get(Field::Rax).unwrap();
                let sub = ghcb.get(Field::Rcx).unwrap();
                let xcr0 = ghcb.get(Field::Xcr0).unwrap_or(0);
                out = alloc::vec![
                    (Field::Rax, leaf + 0x100),
                    (Field::Rbx, sub + 0x200),
                    (Field::Rcx, xcr0),
                    (Field::Rdx, 0xffff_ffff_0000_0004),
                ];
            }
            exit_code::IOIO => {
                let io = IoioInfo::decode(info1).unwrap();
                assert!(!io.string && !io.rep);
                let rax = ghcb.get(Field::Rax).unwrap();
                if io.direction == IoDirection::In {
                    out.push((Field::Rax, 0xdead_beef_cafe_f00d));
                } else {
                    self.port_writes.push((io.port, io.size_bytes.into(), rax));
                }
            }
            exit_code::MSR => {
                let msr = ghcb.get(Field::Rcx).unwrap() as u32;
                if info1 == 1 {
                    let v = (ghcb.get(Field::Rdx).unwrap() << 32) | ghcb.get(Field::Rax).unwrap();
                    self.msrs.push((msr, v));
                } else {
                    let v = self
                        .msrs
                        .iter()
                        .rev()
                        .find(|m| m.0 == msr)
                        .map_or(0, |m| m.1);
                    out.push((Field::Rax, v & 0xffff_ffff));
                    out.push((Field::Rdx, v >> 32));
                }
            }
            exit_code::RDTSC => {
                out.push((Field::Rax, 0x89ab_cdef));
                out.push((Field::Rdx, 0x0123_4567));
            }
            exit_code::RDTSCP => {
                out.push((Field::Rax, 0x89ab_cdef));
                out.push((Field::Rdx, 0x0123_4567));
                out.push((Field::Rcx, 3));
            }
            exit_code::GUEST_REQUEST => self.guest_requests.push((info1, info2)),
            exit_code::MMIO_READ | exit_code::MMIO_WRITE => {
                assert_eq!(ghcb.get(Field::SwScratch), Some(0x9800));
                let n = info2 as usize;
                let buf = ghcb.shared_buffer_mut();
                if ghcb_code_is_read(info1) {
                    buf[..8].copy_from_slice(&0x0807_0605_0403_0201u64.to_le_bytes());
                    buf[n..8].fill(0xee);
                } else {
                    let mut v = [0u8; 8];
                    v[..n].copy_from_slice(&buf[..n]);
                    self.mmio_writes.push((info1, n, u64::from_le_bytes(v)));
                }
            }
            other => panic!("unexpected exit {other:#x}"),
        }
        ghcb.start(2);
        for (field, value) in out {
            if self.forget_valid_bits {
                let at = field.offset();
                ghcb.as_bytes_mut()[at..at + 8].copy_from_slice(&value.to_le_bytes());
            } else {
                ghcb.set(field, value);
            }
        }
        if self.inject_gp {
            ghcb.set_exit(0, 1, 0x8000_0b0d);
        } else {
            ghcb.set_exit(0, 0, 0);
        }
    }

    fn ghcb_gpa(&self) -> u64 {
        0x9000
    }
}

fn caller() -> GhcbCaller<MockHv> {
    GhcbCaller::new(MockHv::default(), 2)
}

#[test]
fn cpuid_sends_leaf_subleaf_and_xcr0_for_leaf_d() {
    let mut c = caller();
    assert_eq!(
        c.cpuid(7, 1, 0xe7),
        Ok(Cpuid {
            eax: 0x107,
            ebx: 0x201,
            ecx: 0,
            edx: 4
        })
    );
    assert_eq!(c.cpuid(0xd, 0, 0xe7).unwrap().ecx, 0xe7);
}

#[test]
fn port_io_encodes_exit_info_and_masks_values() {
    let mut c = caller();
    assert_eq!(c.io_in(0x3f8, 1), Ok(0x0d));
    assert_eq!(c.io_in(0x3f8, 2), Ok(0xf00d));
    assert_eq!(c.io_in(0x3f8, 4), Ok(0xcafe_f00d));
    c.io_out(0x3f9, 1, 0x1234).unwrap();
    c.io_out(0xcf8, 4, 0x8000_0000).unwrap();
    assert_eq!(
        c.host().port_writes,
        [(0x3f9, 1, 0x34), (0xcf8, 4, 0x8000_0000)]
    );
    assert_eq!(c.io_in(0x3f8, 3), Err(Error::InvalidArgument));
}

#[test]
fn msrs_split_into_eax_and_edx() {
    let mut c = caller();
    c.wrmsr(0xc000_0103, 0x1122_3344_5566_7788).unwrap();
    assert_eq!(c.host().msrs, [(0xc000_0103, 0x1122_3344_5566_7788)]);
    assert_eq!(c.rdmsr(0xc000_0103), Ok(0x1122_3344_5566_7788));
    assert_eq!(c.rdtsc(), Ok(0x0123_4567_89ab_cdef));
    assert_eq!(c.rdtscp(), Ok((0x0123_4567_89ab_cdef, 3)));
}

#[test]
fn registers_not_marked_valid_are_refused() {
    let mut c = caller();
    c.host().forget_valid_bits = true;
    assert!(matches!(c.cpuid(1, 0, 0), Err(Error::Protocol(_))));
    assert!(matches!(c.rdmsr(0x10), Err(Error::Protocol(_))));
    assert!(matches!(c.io_in(0x3f8, 1), Err(Error::Protocol(_))));
}

#[test]
fn an_injected_exception_is_reported() {
    let mut c = caller();
    c.host().inject_gp = true;
    assert_eq!(
        c.rdmsr(0x10),
        Err(Error::Exception {
            vector: 13,
            error_code: Some(0)
        })
    );
}

#[test]
fn guest_request_passes_both_pages_and_checks_exit_info_2() {
    let mut c = caller();
    // The mock leaves SW_EXITINFO2 at 0: success.
    assert_eq!(c.guest_request(0x1000, 0x2000), Ok(()));
    assert_eq!(c.host().guest_requests, [(0x1000, 0x2000)]);
}

#[test]
fn mmio_goes_through_the_shared_buffer() {
    let mut c = caller();
    assert_eq!(c.mmio_read(0xfeb0_0000, 1), Ok(0x01));
    assert_eq!(c.mmio_read(0xfeb0_0004, 4), Ok(0x0403_0201));
    assert_eq!(c.mmio_read(0xfeb0_0008, 8), Ok(0x0807_0605_0403_0201));
    c.mmio_write(0x1000, 2, 0xaabb_ccdd).unwrap();
    assert_eq!(c.host().mmio_writes, [(0x1000, 2, 0xccdd)]);
    assert_eq!(c.mmio_read(0xfeb0_0000, 3), Err(Error::InvalidArgument));
    assert_eq!(c.mmio_write(0x1000, 16, 0), Err(Error::InvalidArgument));
}
