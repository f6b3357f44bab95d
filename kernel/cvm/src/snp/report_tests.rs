//! Tests of the report layout on a hand-built report: every field is
//! written at its table offset with a distinct pattern and read back.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn pattern<const N: usize>(seed: u8) -> [u8; N] {
    core::array::from_fn(|i| seed.wrapping_add(i as u8))
}

fn hand_built() -> Vec<u8> {
    let mut b = vec![0u8; REPORT_BYTES];
    put(&mut b, 0x00, &3u32.to_le_bytes());
    put(&mut b, 0x04, &7u32.to_le_bytes());
    put(&mut b, 0x08, &0x0003_0000u64.to_le_bytes());
    put(&mut b, 0x10, &pattern::<16>(0x10));
    put(&mut b, 0x20, &pattern::<16>(0x20));
    put(&mut b, 0x30, &1u32.to_le_bytes());
    put(&mut b, 0x34, &1u32.to_le_bytes());
    put(&mut b, 0x38, &0x1100_0000_0000_0304u64.to_le_bytes());
    put(&mut b, 0x40, &0x3u64.to_le_bytes());
    put(&mut b, 0x48, &0x5u32.to_le_bytes());
    put(&mut b, 0x50, &pattern::<64>(0x50));
    put(&mut b, 0x90, &pattern::<48>(0x90));
    put(&mut b, 0xc0, &pattern::<32>(0xc0));
    put(&mut b, 0xe0, &pattern::<48>(0xe0));
    put(&mut b, 0x110, &pattern::<48>(0x11));
    put(&mut b, 0x140, &pattern::<32>(0x40));
    put(&mut b, 0x160, &pattern::<32>(0x60));
    put(&mut b, 0x180, &0x1800u64.to_le_bytes());
    put(&mut b, 0x1a0, &pattern::<64>(0xa0));
    put(&mut b, 0x1e0, &0x1e00u64.to_le_bytes());
    put(&mut b, 0x1f0, &0x1f00u64.to_le_bytes());
    put(&mut b, 0x2a0, &pattern::<512>(0x2a));
    b
}

#[test]
fn every_field_at_its_offset() {
    let r = parse(&hand_built()).unwrap();
    assert_eq!(r.version, 3);
    assert_eq!(r.guest_svn, 7);
    assert_eq!(r.policy, 0x0003_0000);
    assert_eq!(r.family_id(), &pattern::<16>(0x10));
    assert_eq!(r.image_id(), &pattern::<16>(0x20));
    assert_eq!(r.vmpl, 1);
    assert_eq!(r.signature_algo, 1);
    assert_eq!(r.current_tcb, 0x1100_0000_0000_0304);
    assert_eq!(r.platform_info, 3);
    assert_eq!(r.key_info, 5);
    assert_eq!(r.report_data(), &pattern::<64>(0x50));
    assert_eq!(r.measurement(), &pattern::<48>(0x90));
    assert_eq!(r.host_data(), &pattern::<32>(0xc0));
    assert_eq!(r.id_key_digest(), &pattern::<48>(0xe0));
    assert_eq!(r.author_key_digest(), &pattern::<48>(0x11));
    assert_eq!(r.report_id(), &pattern::<32>(0x40));
    assert_eq!(r.report_id_ma(), &pattern::<32>(0x60));
    assert_eq!(r.reported_tcb, 0x1800);
    assert_eq!(r.chip_id(), &pattern::<64>(0xa0));
    assert_eq!(r.committed_tcb, 0x1e00);
    assert_eq!(r.launch_tcb, 0x1f00);
    assert_eq!(r.signature(), &pattern::<512>(0x2a));
    assert_eq!(r.signed_bytes().len(), 0x2a0);
    assert_eq!(&r.as_bytes()[..], &hand_built()[..]);
}

#[test]
fn bad_reports_are_refused() {
    let good = hand_built();
    assert!(parse(&good[..REPORT_BYTES - 1]).is_err());
    assert!(parse(&[]).is_err());
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xff; 32]);
    assert!(parse(&padded).is_ok());
    let mut v1 = good.clone();
    put(&mut v1, 0, &1u32.to_le_bytes());
    assert!(parse(&v1).is_err());
    let mut vmpl4 = good.clone();
    put(&mut vmpl4, 0x30, &4u32.to_le_bytes());
    assert!(parse(&vmpl4).is_err());
    let mut algo = good;
    put(&mut algo, 0x34, &2u32.to_le_bytes());
    assert!(parse(&algo).is_err());
}
