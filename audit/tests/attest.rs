//! Attestation records, reports and key-release envelopes from hostile
//! bytes: decoding never panics and nothing but the genuine envelope opens;
//! an attestation appended to a real log verifies and binds its checkpoint.

use audit::attest::{
    AttestationRecord, GuestKey, NativeReport, ReportKind, append, report_data, seal_key,
};
use audit::{AuditLog, Config, Event, NoVisitor, VerifyOptions, verify};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = AttestationRecord::decode(&bytes);
        let _ = ReportKind::detect(&bytes);
        let _ = NativeReport::parse(&bytes);
        let guest = GuestKey::from_random([1; 32]);
        prop_assert!(guest.open(&[0; 64], &bytes).is_err());
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_report(
        key in any::<[u8; 32]>(),
        guest_random in any::<[u8; 32]>(),
        broker_random in any::<[u8; 32]>(),
        data in any::<[u8; 32]>(),
        flip in 0usize..64,
    ) {
        let guest = GuestKey::from_random(guest_random);
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&data);
        let env = seal_key(&guest.public(), &rd, &key, broker_random).unwrap();
        prop_assert_eq!(*guest.open(&rd, &env).unwrap(), key);
        let mut other = rd;
        other[flip] ^= 1;
        prop_assert!(guest.open(&other, &env).is_err());
    }
}

#[test]
fn an_appended_attestation_binds_a_checkpoint_the_image_verifies_against() {
    let key = [9u8; 32];
    let mut region = vec![0u8; 64 * 1024];
    let mut log = AuditLog::format(&mut region, &Config::new(key, [2; 16])).unwrap();
    log.append(&Event::Text { text: "boot" }, 1, 0).unwrap();
    let public = GuestKey::from_random([3; 32]).public();
    let mut seen = None;
    let a = append(&mut log, 2, 0, &public, |rd| {
        seen = Some(*rd);
        Ok::<_, ()>(
            NativeReport {
                measurement: None,
                report_data: *rd,
            }
            .to_bytes(),
        )
    })
    .unwrap();
    log.seal();
    drop(log);
    assert_eq!(
        seen,
        Some(report_data(&[2; 16], Some(&a.checkpoint), &public))
    );
    assert!(a.checkpoint.verify_tag(&key));
    let opts = VerifyOptions {
        key: Some(key),
        checkpoint: Some(a.checkpoint),
    };
    assert!(verify(&region, &opts, &mut NoVisitor).unwrap().passed());
}

#[test]
fn a_report_too_long_for_a_record_is_refused_not_truncated() {
    let mut region = vec![0u8; 64 * 1024];
    let mut log = AuditLog::format(&mut region, &Config::new([9; 32], [2; 16])).unwrap();
    let r = append(&mut log, 2, 0, &[1; 32], |_| Ok::<_, ()>(vec![0u8; 5000]));
    assert_eq!(
        r.err(),
        Some(audit::attest::AttestError::ReportTooLong(5000))
    );
    let r = append(&mut log, 3, 0, &[1; 32], |_| Err::<Vec<u8>, _>("no report"));
    assert_eq!(
        r.err(),
        Some(audit::attest::AttestError::Platform("no report"))
    );
}
