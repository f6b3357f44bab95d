//! Property tests: random append/seal/checkpoint/release sequences always
//! verify and read back exactly; random corruption never panics the reader.
mod common;

use std::collections::{BTreeMap, BTreeSet};

use audit::{AppendError, AuditLog, Event, GapReason, OverflowPolicy, SyscallEvent};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Text(usize),
    Syscall(SyscallEvent),
    Seal,
    Checkpoint,
    Release,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..700).prop_map(Op::Text),
        6 => syscall_event().prop_map(Op::Syscall),
        1 => Just(Op::Seal),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Release),
    ]
}

/// Any syscall event: values of every size, 0..=6 arguments (the others
/// zero, as the reader returns them).
fn syscall_event() -> impl Strategy<Value = SyscallEvent> {
    let value = prop_oneof![0u64..0x100, 0u64..0x1_0000, 0u64..1 << 32, any::<u64>()];
    (
        any::<u32>(),
        any::<u32>(),
        any::<i64>(),
        any::<u32>(),
        0u8..=6,
        prop::array::uniform6(value),
    )
        .prop_map(|(nr, tid, result, duration, argc, mut args)| {
            for a in args.iter_mut().skip(usize::from(argc)) {
                *a = 0;
            }
            let mut s = SyscallEvent::new(nr, args, result, tid, duration);
            s.arg_count = argc;
            s
        })
}

/// What the test expects to read back for one sequence number.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Text(String),
    Syscall(SyscallEvent),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_verify_and_read_back(
        ops in prop::collection::vec(op(), 1..300),
        block_shift in 0u32..3,
        blocks in 2usize..7,
        drop_newest in any::<bool>(),
    ) {
        let block_bytes = 1024usize << block_shift;
        let mut img = vec![0u8; 4096 + blocks * block_bytes];
        let policy = if drop_newest { OverflowPolicy::DropNewest } else { OverflowPolicy::OverwriteOldest };
        let mut log = AuditLog::format(&mut img, &config(policy, block_bytes)).unwrap();
        let mut want = BTreeMap::new();
        let mut dropped = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                Op::Text(n) => {
                    let t: String = (0..*n).map(|k| char::from(b'a' + (k % 26) as u8)).collect();
                    let r = log.append(&Event::Text { text: &t }, i as u64, 0);
                    let mut t = t;
                    t.truncate(log.max_payload_bytes());
                    r.map(|s| (s, Want::Text(t)))
                }
                Op::Syscall(s) => {
                    log.append(&Event::Syscall(*s), i as u64, 1).map(|q| (q, Want::Syscall(*s)))
                }
                Op::Seal => { log.seal(); continue; }
                Op::Checkpoint => {
                    match log.checkpoint(i as u64, 0) {
                        Ok(cp) => prop_assert!(cp.verify_tag(&KEY)),
                        Err(AppendError::Dropped { seq }) => { dropped.insert(seq); }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                    continue;
                }
                Op::Release => { log.release_through(log.sealed_blocks().saturating_sub(1)); continue; }
            };
            match r {
                Ok((seq, w)) => { want.insert(seq, w); }
                Err(AppendError::Dropped { seq }) => { dropped.insert(seq); }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
        let next = log.next_seq();
        let lost = log.lost_records();
        drop(log);
        let (s, c) = check(&img, Some(KEY));
        prop_assert!(s.passed(), "{:?}", c.findings);
        prop_assert_eq!(s.lost_records, lost);
        prop_assert_eq!(dropped.len() as u64 <= lost, true);
        // Sequence numbers increase; records read back exactly.
        let seqs: Vec<u64> = c.records.iter().map(|r| r.seq).collect();
        prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        for r in &c.records {
            match want.get(&r.seq) {
                Some(Want::Text(t)) => prop_assert_eq!(r.text.as_ref(), Some(t)),
                Some(Want::Syscall(sc)) => prop_assert_eq!(r.syscall.as_ref(), Some(sc)),
                None => {}
            }
        }
        // From the oldest record on, every sequence number is present or
        // named by a dropped gap record, or dropped after the last one.
        if let Some(&first) = seqs.first() {
            let mut covered: BTreeSet<u64> = seqs.iter().copied().collect();
            for g in c.records.iter().filter_map(|r| r.gap) {
                if g.reason == GapReason::Dropped {
                    covered.extend(g.first_seq..g.first_seq + g.count);
                }
            }
            for q in first..next {
                prop_assert!(covered.contains(&q) || dropped.contains(&q), "seq {q} unaccounted");
            }
            // Appended records after the oldest present one are all there.
            for (&q, _) in want.range(first..) {
                prop_assert!(covered.contains(&q), "record {q} missing");
            }
        }
    }

    #[test]
    fn times_cpus_and_syscalls_read_back_exactly(
        records in prop::collection::vec(
            (syscall_event(), any::<u16>(), prop_oneof![0i64..100_000, any::<i64>()]),
            1..400,
        ),
        block_shift in 0u32..3,
    ) {
        let block_bytes = 1024usize << block_shift;
        let mut img = vec![0u8; 4096 + 64 * block_bytes];
        let mut log =
            AuditLog::format(&mut img, &config(OverflowPolicy::OverwriteOldest, block_bytes)).unwrap();
        let mut t = 0u64;
        let mut want = Vec::new();
        for (s, cpu, step) in &records {
            t = t.wrapping_add(*step as u64);
            let seq = log.append(&Event::Syscall(*s), t, *cpu).unwrap();
            want.push((seq, t, *cpu, *s));
        }
        drop(log);
        let view = audit::RegionView::new_checked(&img).unwrap();
        let mut got = Vec::new();
        for slot in 0..view.header().block_count {
            for item in view.block(slot).records().into_iter().flatten() {
                let audit::RecordItem::Record(r) = item else {
                    prop_assert!(false, "{item:?}");
                    continue;
                };
                let Ok(Event::Syscall(s)) = r.event() else {
                    prop_assert!(false, "{:?}", r.event());
                    continue;
                };
                got.push((r.seq, r.timestamp_ns, r.cpu, s));
            }
        }
        got.sort_by_key(|g| g.0);
        // 64 blocks hold 400 of the largest records: none is evicted.
        prop_assert_eq!(got, want);
        let (s, c) = check(&img, Some(KEY));
        prop_assert!(s.passed(), "{:?}", c.findings);
    }

    #[test]
    fn corrupt_images_never_panic(
        n in 0u64..300,
        flips in prop::collection::vec((0usize..64 * 1024, any::<u8>()), 1..40),
    ) {
        let mut img = sealed_image(n, BOOT);
        for (at, v) in flips {
            img[at] = v;
        }
        for key in [Some(KEY), None] {
            let _ = audit::verify(&img, &audit::VerifyOptions { key, checkpoint: None }, &mut Collect::default());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..12_000), fix in any::<bool>()) {
        if fix && bytes.len() >= 4096 {
            // Give it a plausible header so the walk runs.
            let mut good = vec![0u8; 4096 + 2 * 1024];
            AuditLog::format(&mut good, &config(OverflowPolicy::OverwriteOldest, 1024)).unwrap();
            bytes[..112].copy_from_slice(&good[..112]);
        }
        let _ = audit::verify(&bytes, &audit::VerifyOptions { key: Some(KEY), checkpoint: None }, &mut Collect::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A guest that dies mid-append leaves the open block cut after some
    /// committed record, with the next one torn: it always verifies, and
    /// keeps every record committed before the cut.
    #[test]
    fn crash_at_any_record_of_the_open_block_verifies(
        ops in prop::collection::vec(op(), 1..200),
        blocks in 2usize..6,
        drop_newest in any::<bool>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut img = vec![0u8; 4096 + blocks * 1024];
        let policy = if drop_newest { OverflowPolicy::DropNewest } else { OverflowPolicy::OverwriteOldest };
        let mut log = AuditLog::format(&mut img, &config(policy, 1024)).unwrap();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Text(n) => { let _ = log.append(&Event::Text { text: &"x".repeat(*n) }, i as u64, 0); }
                Op::Syscall(_) => { let _ = log.append(&syscall(i as u64), i as u64, 0); }
                Op::Seal => { log.seal(); }
                Op::Checkpoint => { let _ = log.checkpoint(i as u64, 0); }
                Op::Release => log.release_through(log.sealed_blocks().saturating_sub(1)),
            }
        }
        drop(log);
        let (s, c0) = check(&img, Some(KEY));
        let Some(newest) = s.newest_block else { return Ok(()) };
        let view = audit::RegionView::new_checked(&img).unwrap();
        let b = view.block(newest);
        if b.state() != audit::BlockState::Open { return Ok(()) }
        let recs: Vec<_> = b.records().unwrap().filter_map(|r| match r {
            audit::RecordItem::Record(r) => Some((r.offset as usize, r.seq)),
            _ => None,
        }).collect();
        if recs.is_empty() { return Ok(()) }
        let (off, seq) = recs[cut.index(recs.len())];
        let end = (b.offset as usize) + 1024;
        let body_end = off + audit::wire::RECORD_FIXED_BYTES;
        img[off] = 0;
        img[off + 1] = 0;
        img[body_end..end].fill(0);
        let (s2, c) = check(&img, Some(KEY));
        prop_assert!(s2.passed(), "{:?}", c.findings);
        let before: Vec<u64> = c0.records.iter().map(|r| r.seq).filter(|&q| q < seq).collect();
        let after: Vec<u64> = c.records.iter().map(|r| r.seq).collect();
        prop_assert_eq!(after, before);
    }
}
