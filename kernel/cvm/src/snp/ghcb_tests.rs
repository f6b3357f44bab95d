//! Tests of the GHCB layout against Linux's `struct ghcb_save_area`
//! offsets and the spec's valid-bitmap rule, the exit codes, the IOIO
//! encoding and the result check.

use super::*;

#[test]
fn field_offsets_and_valid_bits() {
    // Offsets of Linux's struct ghcb_save_area.
    let expected = [
        (Field::Cpl, 0xcb, 25),
        (Field::Xss, 0x140, 40),
        (Field::Rax, 0x1f8, 63),
        (Field::Rcx, 0x308, 97),
        (Field::Rdx, 0x310, 98),
        (Field::Rbx, 0x318, 99),
        (Field::SwExitCode, 0x390, 114),
        (Field::SwExitInfo1, 0x398, 115),
        (Field::SwExitInfo2, 0x3a0, 116),
        (Field::SwScratch, 0x3a8, 117),
        (Field::Xcr0, 0x3e8, 125),
    ];
    for (field, offset, bit) in expected {
        assert_eq!(field.offset(), offset, "{field:?}");
        assert_eq!(field.valid_bit(), bit, "{field:?}");
    }
    assert_eq!(SHARED_BUFFER_OFFSET + SHARED_BUFFER_BYTES, 0xff0);
    assert_eq!(PROTOCOL_VERSION_OFFSET, 0xffa);
    assert_eq!(USAGE_OFFSET, 0xffc);
}

#[test]
fn setting_a_field_marks_it_valid() {
    let mut ghcb = Ghcb::new();
    assert_eq!(ghcb.get(Field::Rax), None);
    ghcb.set(Field::Rax, 0x1122_3344_5566_7788);
    assert_eq!(ghcb.get(Field::Rax), Some(0x1122_3344_5566_7788));
    // Little endian at 0x1f8, bit 63 = byte 7 bit 7 of the bitmap.
    assert_eq!(ghcb.as_bytes()[0x1f8], 0x88);
    assert_eq!(ghcb.as_bytes()[0x1ff], 0x11);
    assert_eq!(ghcb.as_bytes()[VALID_BITMAP_OFFSET + 7], 0x80);
    ghcb.set(Field::SwExitCode, exit_code::CPUID);
    // Bit 114 = byte 14 bit 2.
    assert_eq!(ghcb.as_bytes()[VALID_BITMAP_OFFSET + 14], 0x04);
    ghcb.set(Field::Cpl, 0x1ff);
    assert_eq!(ghcb.as_bytes()[0xcb], 0xff);
    assert_eq!(ghcb.as_bytes()[0xcc], 0);
    assert_eq!(ghcb.get(Field::Cpl), Some(0xff));
    assert_eq!(ghcb.get(Field::Rbx), None);
    assert!(ghcb.returned(Field::Rbx).is_err());
}

#[test]
fn start_clears_the_save_area_and_sets_version_and_usage() {
    let mut ghcb = Ghcb::new();
    ghcb.set(Field::Rcx, 5);
    ghcb.shared_buffer_mut()[0] = 0xaa;
    ghcb.as_bytes_mut()[USAGE_OFFSET] = 7;
    ghcb.start(2);
    assert_eq!(ghcb.get(Field::Rcx), None);
    assert_eq!(ghcb.raw(Field::Rcx), 0);
    assert_eq!(ghcb.shared_buffer()[0], 0xaa);
    assert_eq!(ghcb.protocol_version(), 2);
    assert_eq!(ghcb.as_bytes()[0xffa..0xffc], [2, 0]);
    assert_eq!(ghcb.usage(), 0);
}

#[test]
fn exit_codes_match_the_spec() {
    use exit_code::*;
    assert_eq!(
        [RDTSC, CPUID, IOIO, MSR, VMMCALL, RDTSCP, WBINVD, NPF],
        [0x6e, 0x72, 0x7b, 0x7c, 0x81, 0x87, 0x89, 0x400]
    );
    assert_eq!(
        [
            MMIO_READ,
            MMIO_WRITE,
            NMI_COMPLETE,
            AP_HLT_LOOP,
            AP_JUMP_TABLE
        ],
        [
            0x8000_0001,
            0x8000_0002,
            0x8000_0003,
            0x8000_0004,
            0x8000_0005
        ]
    );
    assert_eq!(
        [PSC, GUEST_REQUEST, EXT_GUEST_REQUEST, AP_CREATION],
        [0x8000_0010, 0x8000_0011, 0x8000_0012, 0x8000_0013]
    );
    assert_eq!(
        [HV_FEATURES, TERMINATE, UNSUPPORTED],
        [0x8000_fffd, 0x8000_fffe, 0x8000_ffff]
    );
}

#[test]
fn ioio_encoding() {
    // `out dx, al` to 0x3f8: port << 16 | SZ8.
    let out = IoioInfo::simple(0x3f8, 1, IoDirection::Out);
    assert_eq!(out.encode(), Some(0x03f8_0010));
    // `in eax, dx` from 0xcfc: TYPE | SZ32.
    let inl = IoioInfo::simple(0xcfc, 4, IoDirection::In);
    assert_eq!(inl.encode(), Some(0x0cfc_0041));
    // `rep outsw` with 64-bit addresses: STR | REP | SZ16 | A64.
    let rep = IoioInfo {
        port: 0x1f0,
        size_bytes: 2,
        direction: IoDirection::Out,
        string: true,
        rep: true,
        address_bytes: 8,
    };
    assert_eq!(rep.encode(), Some(0x01f0_022c));
    for info in [out, inl, rep] {
        assert_eq!(IoioInfo::decode(info.encode().unwrap()), Some(info));
    }
    assert_eq!(IoioInfo::simple(1, 3, IoDirection::In).encode(), None);
    // No size bit, two size bits, two address bits.
    assert_eq!(IoioInfo::decode(0x03f8_0000), None);
    assert_eq!(IoioInfo::decode(0x03f8_0030), None);
    assert_eq!(IoioInfo::decode(0x03f8_0190), None);
}

fn answered(info1: u64, info2: u64) -> Ghcb {
    let mut ghcb = Ghcb::new();
    ghcb.set(Field::SwExitInfo1, info1);
    ghcb.set(Field::SwExitInfo2, info2);
    ghcb
}

#[test]
fn result_check() {
    assert_eq!(answered(0, 0).check_result(), Ok(()));
    // Upper half of SW_EXITINFO1 is not part of the verdict.
    assert_eq!(answered(0xdead_0000_0000, 5).check_result(), Ok(()));
    // #GP(0) to inject: valid, type 3, error code valid, vector 13.
    assert_eq!(
        answered(1, 0x8000_0b0d).check_result(),
        Err(Error::Exception {
            vector: 13,
            error_code: Some(0)
        })
    );
    // #UD without an error code.
    assert_eq!(
        answered(1, 0x8000_0306).check_result(),
        Err(Error::Exception {
            vector: 6,
            error_code: None
        })
    );
    // Not an exception event: a host error code.
    assert_eq!(
        answered(1, 0x42).check_result(),
        Err(Error::HostError(0x42))
    );
    assert_eq!(
        answered(1, 0x8000_0206).check_result(),
        Err(Error::HostError(0x8000_0206))
    );
    assert!(matches!(
        answered(2, 0).check_result(),
        Err(Error::Protocol(_))
    ));
}
