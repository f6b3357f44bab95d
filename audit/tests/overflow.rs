//! Driving the ring faster than it drains, under each overflow policy: the
//! gap records and the `lost` counter match exactly what was dropped.
mod common;

use std::collections::BTreeSet;

use audit::{AppendError, AuditLog, FindingKind, GapReason, OverflowPolicy, RegionView};
use common::*;

/// A 4 KiB header and 4 blocks of 1 KiB.
const SMALL: usize = 4096 + 4 * 1024;

#[test]
fn overwrite_oldest_accounts_for_every_evicted_record() {
    let mut img = vec![0u8; SMALL];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
    let n = 500u64;
    for i in 0..n {
        log.append(&syscall(i), i, 0).unwrap();
    }
    log.seal();
    let lost = log.lost_records();
    let total = log.next_seq();
    drop(log);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    let present: BTreeSet<u64> = c.records.iter().map(|r| r.seq).collect();
    // The newest gap record names what the oldest surviving block follows.
    let newest_gap = c
        .records
        .iter()
        .filter_map(|r| r.gap)
        .filter(|g| g.reason == GapReason::Overwritten)
        .max_by_key(|g| g.block_seq)
        .unwrap();
    let first_present = *present.first().unwrap();
    assert_eq!(newest_gap.first_seq + newest_gap.count, first_present);
    assert_eq!(newest_gap.lost_total, lost);
    // Every sequence number is either present or lost, and `lost` counts
    // exactly the missing ones.
    assert_eq!(present.len() as u64 + lost, total);
    assert!(present.iter().copied().eq(first_present..total));
    assert_eq!(s.lost_records, lost);
    assert_eq!(
        RegionView::new_checked(&img)
            .unwrap()
            .header()
            .hints
            .lost_records,
        lost
    );
    // Each gap's count matches the sealed record count of the block it
    // evicted: the sum of gaps written equals `lost`.
    assert!(lost > 0);
}

#[test]
fn overwrite_oldest_gap_sum_equals_lost() {
    // Track every gap record as it is written by reading the ring after
    // each append and collecting gaps (they themselves get evicted later).
    let mut img = vec![0u8; SMALL];
    let mut gaps = std::collections::BTreeMap::new();
    let mut appended = 0u64;
    let lost;
    {
        let mut log =
            AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
        for i in 0..300u64 {
            log.append(&syscall(i), i, 0).unwrap();
            appended += 1;
            let (_, c) = check(log.region(), None);
            for r in c.records.iter().filter(|r| r.gap.is_some()) {
                gaps.insert(r.seq, r.gap.unwrap());
            }
        }
        lost = log.lost_records();
    }
    let sum: u64 = gaps.values().map(|g| g.count).sum();
    assert_eq!(sum, lost);
    let (_, c) = check(&img, Some(KEY));
    let user_present = c.records.iter().filter(|r| r.gap.is_none()).count() as u64;
    let user_lost = appended - user_present;
    let gaps_lost = gaps.len() as u64 - c.records.iter().filter(|r| r.gap.is_some()).count() as u64;
    assert_eq!(user_lost + gaps_lost, lost);
}

#[test]
fn drop_newest_counts_drops_and_names_them_in_a_gap() {
    let mut img = vec![0u8; SMALL];
    let mut log = AuditLog::format(&mut img, &config(OverflowPolicy::DropNewest, 1024)).unwrap();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..200u64 {
        match log.append(&syscall(i), i, 0) {
            Ok(seq) => kept.push(seq),
            Err(AppendError::Dropped { seq }) => dropped.push(seq),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!dropped.is_empty());
    assert_eq!(log.lost_records(), dropped.len() as u64);
    // While full, the loss is visible in the header and as a warning.
    let (s, c) = check(log.region(), Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    assert!(c.findings.iter().any(|f| f.kind
        == FindingKind::PendingDrops {
            count: dropped.len() as u64
        }));
    assert_eq!(s.lost_records, dropped.len() as u64);
    // The exporter drains two blocks: the next append writes a gap record.
    log.release_through(1);
    let next = log.append(&syscall(999), 999, 0).unwrap();
    drop(log);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    let dropped_gap = c
        .records
        .iter()
        .find_map(|r| r.gap.filter(|g| g.reason == GapReason::Dropped))
        .unwrap();
    assert_eq!(dropped_gap.first_seq, dropped[0]);
    assert_eq!(dropped_gap.count, dropped.len() as u64);
    assert_eq!(dropped_gap.lost_total, dropped.len() as u64);
    assert!(dropped.windows(2).all(|w| w[1] == w[0] + 1));
    // Block 4 starts with the dropped gap, then the exported gap, then the
    // new record.
    assert_eq!(next, dropped_gap.first_seq + dropped_gap.count + 2);
    // The released blocks were reused without loss.
    let exported: Vec<_> = c
        .records
        .iter()
        .filter_map(|r| r.gap.filter(|g| g.reason == GapReason::Exported))
        .collect();
    assert_eq!(exported.len(), 1);
    assert_eq!(s.lost_records, dropped.len() as u64);
    // Records kept before the drops are all still there.
    let present: BTreeSet<u64> = c.records.iter().map(|r| r.seq).collect();
    assert!(
        kept.iter()
            .filter(|&&k| k >= exported[0].first_seq + exported[0].count)
            .all(|k| present.contains(k))
    );
}

#[test]
fn drop_newest_repeated_bursts() {
    let mut img = vec![0u8; SMALL];
    let mut log = AuditLog::format(&mut img, &config(OverflowPolicy::DropNewest, 1024)).unwrap();
    let mut drops = 0u64;
    let mut i = 0u64;
    for round in 0..5u64 {
        for _ in 0..60 {
            if let Err(AppendError::Dropped { .. }) = log.append(&syscall(i), i, 0) {
                drops += 1;
            }
            i += 1;
        }
        log.seal();
        log.release_through(log.sealed_blocks().saturating_sub(1));
        let (s, c) = check(log.region(), Some(KEY));
        assert!(s.passed(), "round {round}: {:?}", c.findings);
        assert_eq!(log.lost_records(), drops);
        assert_eq!(s.lost_records, drops);
    }
    assert!(drops > 0);
}

#[test]
fn unaccounted_front_loss_is_an_error() {
    let mut img = vec![0u8; SMALL];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
    for i in 0..200u64 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    log.seal();
    drop(log);
    // Delete the oldest surviving block.
    let (s, _) = check(&img, Some(KEY));
    let oldest = s.oldest_block.unwrap();
    let slot = (oldest % 4) as usize;
    img[4096 + slot * 1024..4096 + (slot + 1) * 1024].fill(0);
    let (s, c) = check(&img, Some(KEY));
    assert!(!s.passed());
    assert!(c.has_error(|f| f.kind == FindingKind::MissingBlock && f.location.block_seq == Some(oldest)));
}

#[test]
fn crash_while_opening_a_block_is_only_a_warning() {
    let mut img = vec![0u8; SMALL];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
    for i in 0..200u64 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    log.seal();
    drop(log);
    let (s, _) = check(&img, Some(KEY));
    let (oldest, newest) = (s.oldest_block.unwrap(), s.newest_block.unwrap());
    // The writer announced block newest+1 and zeroed its slot (evicting
    // the oldest block), then the guest died.
    let r = audit::wire::field::region::NEXT_BLOCK_SEQ;
    img[r].copy_from_slice(&(newest + 2).to_le_bytes());
    let slot = (oldest % 4) as usize;
    img[4096 + slot * 1024..4096 + (slot + 1) * 1024].fill(0);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    assert!(
        c.findings
            .iter()
            .any(|f| f.kind == FindingKind::MissingOldestBlock)
    );
}

#[test]
fn crash_between_opening_a_block_and_its_gap_record_is_only_a_warning() {
    let mut img = vec![0u8; SMALL];
    let mut log =
        AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
    for i in 0..200u64 {
        log.append(&syscall(i), i, 0).unwrap();
    }
    let lost_before_open = log.lost_records();
    drop(log);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    let newest = s.newest_block.unwrap();
    // Un-commit everything in the newest (open) block, its gap record
    // first among them: the state right after `BLK1` was written.
    let slot = (newest % 4) as usize;
    let start = 4096 + slot * 1024 + audit::wire::BLOCK_HEADER_BYTES;
    img[start..4096 + (slot + 1) * 1024].fill(0);
    let (s, c) = check(&img, Some(KEY));
    assert!(s.passed(), "{:?}", c.findings);
    assert!(
        c.findings
            .iter()
            .any(|f| f.kind == FindingKind::EvictionUnrecorded)
    );
    // The evicted block's records are still counted as lost.
    assert!(
        s.lost_records >= lost_before_open.saturating_sub(7),
        "{} vs {lost_before_open}",
        s.lost_records
    );
    assert_eq!(s.lost_records, lost_before_open);
}
