//! Tampering with real region images: every case is detected and located.
mod common;

use audit::{AuditLog, FindingKind, OverflowPolicy, RegionView, wire};
use common::*;

const BLOCK: usize = 4096;
/// Records of [`base`]: four full blocks and four records.
const BASE_RECORDS: u64 = 4 * PER_BLOCK + 4;

fn slot_off(slot: u64) -> usize {
    wire::REGION_HEADER_BYTES + slot as usize * BLOCK
}

/// Image offset and length of record `seq`.
fn record_at(img: &[u8], seq: u64) -> (usize, usize) {
    let view = RegionView::new_checked(img).unwrap();
    for slot in 0..view.header().block_count {
        for item in view.block(slot).records().into_iter().flatten() {
            if let audit::RecordItem::Record(r) = item
                && r.seq == seq
            {
                return (r.offset as usize, r.bytes);
            }
        }
    }
    panic!("record {seq} not found");
}

fn base() -> Vec<u8> {
    // Syscall records of 80 bytes, 49 per block; blocks 0..=4 sealed.
    let img = sealed_image(BASE_RECORDS, BOOT);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    assert_eq!(s.sealed_blocks, 5);
    assert_eq!(record_at(&img, PER_BLOCK + 1).1, 80);
    // A block's first record stores its time whole: 2 bytes more on CPU
    // 1, one on CPU 0 (whose byte the even padding had taken).
    assert_eq!(record_at(&img, PER_BLOCK).1, 82);
    assert_eq!(record_at(&img, 2 * PER_BLOCK).1, 80);
    img
}

#[test]
fn bit_flip_in_a_payload_fails_that_block() {
    let mut img = base();
    let (off, _) = record_at(&img, PER_BLOCK + 1); // block 1
    img[off + 30] ^= 0x04;
    let (s, c) = check(&img, Some(KEY));
    assert!(!s.passed());
    let e = c.errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, FindingKind::MacMismatch);
    assert_eq!(e[0].location.block_seq, Some(1));
    assert_eq!(e[0].location.slot, Some(1));
    // Records of that block are marked failed, the others verified.
    assert!(
        c.records
            .iter()
            .filter(|r| (PER_BLOCK..2 * PER_BLOCK).contains(&r.seq))
            .all(|r| r.auth == audit::Auth::Failed)
    );
    assert!(
        c.records
            .iter()
            .filter(|r| r.seq >= 2 * PER_BLOCK)
            .all(|r| r.auth == audit::Auth::Verified)
    );
}

#[test]
fn bit_flip_in_a_record_header_is_located_at_the_record() {
    let mut img = base();
    let (off, _) = record_at(&img, 2 * PER_BLOCK + 2); // block 2
    // The payload length, 71 → 70: the last argument is cut short.
    img[off + wire::field::record::PAYLOAD_LEN.start] ^= 0x01;
    let (_, c) = check(&img, Some(KEY));
    assert!(c.has_error(|f| f.kind == FindingKind::MacMismatch && f.location.block_seq == Some(2)));
    assert!(c.has_error(
        |f| matches!(f.kind, FindingKind::BadEvent(_)) && f.location.offset == Some(off as u64)
    ));
}

#[test]
fn a_changed_time_fails_the_block() {
    let mut img = base();
    let (off, _) = record_at(&img, 2 * PER_BLOCK + 2);
    img[off + 6] ^= 0x01; // the time's difference to the record before
    let (_, c) = check(&img, Some(KEY));
    let e = c.errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, FindingKind::MacMismatch);
    assert_eq!(e[0].location.block_seq, Some(2));
}

#[test]
fn record_deletion_is_detected() {
    let mut img = base();
    let (off, len) = record_at(&img, PER_BLOCK + 9);
    let block_end = slot_off(1) + BLOCK;
    img.copy_within(off + len..block_end, off);
    let (s, c) = check(&img, Some(KEY));
    assert!(!s.passed());
    assert!(c.has_error(|f| f.kind == FindingKind::MacMismatch && f.location.block_seq == Some(1)));
    // Sequence numbers are implied by the block, so the gap shows in the
    // block's count (and the next block's numbers).
    assert!(c.has_error(|f| matches!(
        f.kind,
        FindingKind::RecordCountMismatch {
            header: 49,
            found: 48
        }
    ) && f.location.block_seq == Some(1)));
}

#[test]
fn record_reordering_is_detected() {
    let mut img = base();
    let (a, len) = record_at(&img, 10);
    let (b, _) = record_at(&img, 11);
    let ra = img[a..a + len].to_vec();
    let rb = img[b..b + len].to_vec();
    img[a..a + len].copy_from_slice(&rb);
    img[b..b + len].copy_from_slice(&ra);
    let (_, c) = check(&img, Some(KEY));
    // Same sizes and time steps: only the MAC sees it, for the block.
    let e = c.errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, FindingKind::MacMismatch);
    assert_eq!(e[0].location.block_seq, Some(0));
}

#[test]
fn block_reordering_is_detected() {
    let mut img = base();
    let (a, b) = (slot_off(1), slot_off(2));
    let blk1 = img[a..a + BLOCK].to_vec();
    let blk2 = img[b..b + BLOCK].to_vec();
    img[a..a + BLOCK].copy_from_slice(&blk2);
    img[b..b + BLOCK].copy_from_slice(&blk1);
    let (s, c) = check(&img, Some(KEY));
    assert!(!s.passed());
    assert!(
        c.has_error(|f| f.kind == FindingKind::MisplacedBlock { found_seq: 2 }
            && f.location.slot == Some(1))
    );
    assert!(
        c.has_error(|f| f.kind == FindingKind::MisplacedBlock { found_seq: 1 }
            && f.location.slot == Some(2))
    );
    assert!(
        c.has_error(|f| f.kind == FindingKind::MissingBlock && f.location.block_seq == Some(1))
    );
}

#[test]
fn block_deletion_is_detected() {
    let mut img = base();
    img[slot_off(2)..slot_off(3)].fill(0);
    let (_, c) = check(&img, Some(KEY));
    assert!(
        c.has_error(|f| f.kind == FindingKind::MissingBlock && f.location.block_seq == Some(2))
    );
}

#[test]
fn tail_truncation_is_detected_by_header_and_by_checkpoint() {
    let mut img = base();
    img[slot_off(3)..slot_off(5)].fill(0);
    let (_, c) = check(&img, Some(KEY));
    assert!(c.has_error(|f| f.kind
        == FindingKind::TailTruncated {
            header_sealed: 5,
            found_sealed: 3
        }));

    // An attacker who also rewinds the header hints needs a checkpoint to
    // be caught: build a log with one, then roll the whole file back.
    let mut img = vec![0u8; 64 * 1024];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 4096)).unwrap();
    for i in 0..2 * PER_BLOCK + 2 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    log.seal();
    let snapshot = log.region().to_vec();
    for i in 2 * PER_BLOCK + 2..3 * PER_BLOCK {
        log.append(&syscall(i), i, 0).unwrap();
    }
    let cp = log.checkpoint(1, 0).unwrap();
    drop(log);
    let opts = audit::VerifyOptions {
        key: Some(KEY),
        checkpoint: Some(cp),
    };
    let mut c = Collect::default();
    assert!(
        audit::verify(&img, &opts, &mut c).unwrap().passed(),
        "{:?}",
        c.findings
    );
    let mut c = Collect::default();
    let s = audit::verify(&snapshot, &opts, &mut c).unwrap();
    assert!(!s.passed());
    assert!(c.has_error(|f| matches!(
        f.kind,
        FindingKind::RolledBack {
            found_sealed: 3,
            ..
        }
    )));
}

#[test]
fn replay_of_an_old_block_is_detected() {
    // A wrapped 15-slot ring: snapshot, write more, put an old block back.
    let mut img = vec![0u8; 64 * 1024];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 4096)).unwrap();
    for i in 0..PER_BLOCK * 20 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    let old = log.region().to_vec();
    for i in PER_BLOCK * 20..PER_BLOCK * 27 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    log.seal();
    drop(log);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    // Slot 7 held block 22 in the snapshot and holds block 37... find one.
    let view = RegionView::new_checked(&img).unwrap();
    let newest = s.newest_block.unwrap();
    let target = newest - 5;
    let slot = target % view.header().block_count;
    let old_seq = RegionView::new_checked(&old).unwrap().block(slot).seq();
    assert!(old_seq < target);
    let o = slot_off(slot);
    img[o..o + BLOCK].copy_from_slice(&old[o..o + BLOCK]);
    let (s, c) = check(&img, Some(KEY));
    assert!(!s.passed());
    assert!(
        c.has_error(|f| f.kind == FindingKind::StaleBlock { found_seq: old_seq }
            && f.location.block_seq == Some(target)
            && f.location.slot == Some(slot))
    );
}

#[test]
fn splice_from_another_boot_is_detected() {
    let mut img = base();
    let other = sealed_image(BASE_RECORDS, OTHER_BOOT);
    let o = slot_off(2);
    img[o..o + BLOCK].copy_from_slice(&other[o..o + BLOCK]);
    let (_, c) = check(&img, Some(KEY));
    assert!(
        c.has_error(|f| f.kind == FindingKind::BlockFromOtherBoot && f.location.slot == Some(2))
    );
    assert!(
        c.has_error(|f| f.kind == FindingKind::MissingBlock && f.location.block_seq == Some(2))
    );

    // Even with its boot tag rewritten, the MAC (keyed per boot) fails.
    let tag = wire::field::block::BOOT_TAG;
    let ours = RegionView::new_checked(&base())
        .unwrap()
        .block(2)
        .boot_tag();
    img[o + tag.start..o + tag.end].copy_from_slice(&ours);
    let (_, c) = check(&img, Some(KEY));
    assert!(c.has_error(|f| f.kind == FindingKind::MacMismatch && f.location.block_seq == Some(2)));
}

#[test]
fn header_geometry_tamper_is_detected() {
    let mut img = base();
    let r = wire::field::region::POLICY;
    img[r.start] = 1;
    let (_, c) = check(&img, Some(KEY));
    assert!(c.has_error(|f| f.kind == FindingKind::HeaderMacMismatch));
}

#[test]
fn every_single_byte_flip_in_authenticated_bytes_is_detected() {
    let img = sealed_image(2 * PER_BLOCK + 18, BOOT);
    let view = RegionView::new_checked(&img).unwrap();
    let mut covered: Vec<usize> = (0..112).collect();
    for slot in 0..3u64 {
        let b = view.block(slot);
        let end = slot_off(slot) + wire::BLOCK_HEADER_BYTES + b.used() as usize;
        covered.extend((slot_off(slot)..end).step_by(7));
    }
    for &i in &covered {
        let mut t = img.clone();
        t[i] ^= 0x10;
        let mut c = Collect::default();
        let opts = audit::VerifyOptions {
            key: Some(KEY),
            checkpoint: None,
        };
        match audit::verify(&t, &opts, &mut c) {
            Err(_) => {}
            Ok(s) => assert!(s.errors > 0, "flip at {i} not detected"),
        }
    }
}

#[test]
fn a_forged_lost_records_hint_is_reported_as_unauthenticated() {
    let mut img = base();
    let range = wire::field::region::LOST_RECORDS;
    img[range].copy_from_slice(&1_000_000u64.to_le_bytes());
    let (s, c) = check(&img, Some(KEY));
    // Nothing authenticated was lost: the whole count is the hint's.
    assert_eq!(s.lost_records, 1_000_000);
    assert_eq!(s.lost_records_hinted, 1_000_000);
    assert!(c.errors().is_empty(), "{:?}", c.findings);
    assert!(
        c.findings
            .iter()
            .any(|f| f.kind == FindingKind::PendingDrops { count: 1_000_000 }),
        "{:?}",
        c.findings
    );
    let (clean, _) = check(&base(), Some(KEY));
    assert_eq!((clean.lost_records, clean.lost_records_hinted), (0, 0));
}
