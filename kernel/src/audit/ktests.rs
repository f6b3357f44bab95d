//! In-guest tests of the audit integration. Those that need a region are
//! `#[ignore]`d (they run only when named) and booted by the host test
//! `tests/tests/audit_crash.rs` with `audit=1M audit_key=<TEST_KEY_HEX>`;
//! the others run in the ordinary suite, where auditing is off.

use alloc::vec::Vec;

use ::audit::{Auth, DecodeError, Event, Record, VerifyOptions, Visitor};

use super::key::parse_hex_key;
use super::{Source, log};
use crate::ktest;
use crate::mm::{PAGE_BYTES, frames, paging, phys_to_virt};

/// The key the host passes as `audit_key=` for these tests.
const TEST_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Collects what the verifier reports.
#[derive(Default)]
struct Seen {
    syscalls: Vec<(u32, [u64; 6], i64, u32)>,
    texts: Vec<alloc::string::String>,
    boots: u32,
    verified_records: u64,
}

impl Visitor for Seen {
    fn record(&mut self, _: &Record<'_>, event: Result<Event<'_>, DecodeError>, auth: Auth) {
        if auth == Auth::Verified {
            self.verified_records += 1;
        }
        match event {
            Ok(Event::Syscall(s)) => {
                self.syscalls.push((s.nr, s.args, s.result, s.tid));
            }
            Ok(Event::Text { text }) => self.texts.push(text.into()),
            Ok(Event::Boot { .. }) => self.boots += 1,
            _ => {}
        }
    }
}

/// Seals, then verifies the live region with the test key.
fn verify_live() -> (::audit::Summary, Seen) {
    super::seal();
    let key = parse_hex_key(TEST_KEY_HEX).expect("test key");
    let opts = VerifyOptions {
        key: Some(key),
        checkpoint: None,
    };
    let mut seen = Seen::default();
    let summary = log::with_locked(|log, _| ::audit::verify(log.region(), &opts, &mut seen))
        .expect("auditing must be on: boot with audit=1M audit_key=TEST_KEY_HEX")
        .expect("the live region has a readable header");
    (summary, seen)
}

fn ram_region() -> super::Region {
    let r = *super::active_region().expect("auditing must be on (audit=1M)");
    assert_eq!(
        r.source,
        Source::Ram,
        "these tests expect audit=SIZE in RAM"
    );
    r
}

ktest!(
    #[ignore]
    fn region_frames_are_never_handed_out() {
        let region = ram_region();
        assert!(region.region_bytes >= 1 << 20);
        // Take every free frame (in halving contiguous runs; `held` sized
        // first so it does not grow from the same frames), check none is in
        // the region, give them back.
        let mut held: Vec<(u64, usize)> = Vec::with_capacity(256);
        let before = frames::free_frames();
        let mut run = before.next_power_of_two();
        while run > 0 {
            match frames::alloc_contiguous(run, 1) {
                Some(p) if held.len() < held.capacity() => held.push((p, run)),
                Some(p) => {
                    frames::free(p, run).expect("free");
                    break;
                }
                None => run /= 2,
            }
        }
        assert_eq!(frames::alloc(), None, "all frames taken");
        let mut overlap = None;
        for &(p, n) in &held {
            let end = p + n as u64 * PAGE_BYTES;
            if p < region.paddr + region.region_bytes && end > region.paddr {
                overlap = Some(p);
            }
        }
        for &(p, n) in &held {
            frames::free(p, n).expect("free");
        }
        assert_eq!(frames::free_frames(), before);
        assert_eq!(overlap, None, "the frame allocator handed out audit frames");
    }
);

ktest!(
    #[ignore]
    fn region_is_mapped_for_the_kernel_only_and_never_executable() {
        let region = ram_region();
        for paddr in [
            region.paddr,
            region.paddr + region.region_bytes / 2,
            region.paddr + region.region_bytes - PAGE_BYTES,
        ] {
            let access = paging::access_of(phys_to_virt(paddr)).expect("mapped");
            assert!(access.writable && !access.executable, "{access:?}");
            assert!(!access.user, "{access:?}");
            // Nothing maps it in the lower (user) half at the same address.
            assert_eq!(paging::access_of(paddr), None);
        }
    }
);

ktest!(
    #[ignore]
    fn boot_and_syscall_records_verify_in_the_guest() {
        super::record_syscall(1, &[3, 0x1000, 12, 0, 0, 0], 12, 42, 1500);
        super::record_syscall(u64::MAX, &[0; 6], -38, 42, u64::MAX);
        let (summary, seen) = verify_live();
        assert!(summary.passed(), "{summary:?}");
        assert_eq!(summary.errors, 0);
        assert_eq!(seen.boots, 1, "one boot record");
        assert!(
            seen.texts.iter().any(|t| t.starts_with("Cloister ")),
            "{:?}",
            seen.texts
        );
        let n = seen.syscalls.len();
        assert!(n >= 2);
        assert_eq!(seen.syscalls[n - 2], (1, [3, 0x1000, 12, 0, 0, 0], 12, 42));
        assert_eq!(seen.syscalls[n - 1], (u32::MAX, [0; 6], -38, 42));
        assert_eq!(seen.verified_records, summary.records, "all sealed");
    }
);

ktest!(
    #[ignore]
    fn a_busy_log_makes_the_exception_path_count_a_miss_not_deadlock() {
        let missed = super::missed_events();
        let r = log::while_locked(|| super::record_exception(14, 2, 0x1234, 0x5678));
        assert_eq!(r, None);
        assert_eq!(super::missed_events(), missed + 1);
        // The next record that gets the lock puts the miss on record.
        assert!(super::record_text(format_args!("after a miss")).is_some());
        let (summary, seen) = verify_live();
        assert!(summary.passed(), "{summary:?}");
        assert!(
            seen.texts
                .iter()
                .any(|t| t.contains("events not recorded: the log was busy")),
            "{:?}",
            seen.texts
        );
    }
);

ktest!(
    fn recording_is_a_no_op_when_auditing_is_off() {
        if super::is_enabled() {
            return; // booted with a region: the ignored tests cover that
        }
        super::record_syscall(1, &[0; 6], 0, 1, 1);
        assert_eq!(super::record_text(format_args!("x")), None);
        assert_eq!(super::record_exception(6, 0, 0, 0), None);
        assert_eq!(super::seal(), None);
        assert_eq!(super::missed_events(), 0);
    }
);

ktest!(
    fn audit_keys_parse_from_64_hex_digits_only() {
        let k = parse_hex_key(TEST_KEY_HEX).expect("valid");
        assert_eq!(k[0], 0);
        assert_eq!(k[31], 0x1f);
        assert_eq!(parse_hex_key(&TEST_KEY_HEX.to_uppercase()), Ok(k));
        assert!(parse_hex_key(&TEST_KEY_HEX[..62]).is_err());
        assert!(parse_hex_key("zz").is_err());
        let bad = alloc::format!("{}g", &TEST_KEY_HEX[..63]);
        assert!(parse_hex_key(&bad).is_err());
    }
);

ktest!(
    fn the_key_is_redacted_from_the_recorded_command_line() {
        assert_eq!(
            super::redact_key("log=warn audit_key=abcd audit=1M"),
            "log=warn audit_key=<redacted> audit=1M"
        );
        assert_eq!(super::redact_key("audit=1M"), "audit=1M");
    }
);

/// Every record's sequence number and CPU, and the texts of the SMP test's
/// records as (CPU, text).
#[derive(Default)]
struct Sequence {
    boot_cpu_count: Option<u32>,
    seqs: Vec<u64>,
    texts: Vec<(u16, alloc::string::String)>,
}

impl Visitor for Sequence {
    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, _: Auth) {
        self.seqs.push(r.seq);
        match event {
            Ok(Event::Text { text }) if text.starts_with("smp append ") => {
                self.texts.push((r.cpu, text.into()));
            }
            Ok(Event::Boot { cpu_count, .. }) => self.boot_cpu_count = Some(cpu_count),
            _ => {}
        }
    }
}

ktest!(
    #[ignore]
    fn sequence_numbers_stay_gap_free_with_every_cpu_appending() {
        use crate::arch::smp;
        const PER_CPU: usize = 300;
        let cpus = smp::cpu_count();
        let append = |cpu: usize| {
            for i in 0..PER_CPU {
                super::record_text(format_args!("smp append {cpu} {i}")).expect("appended");
            }
        };
        // The APs start appending, the boot CPU appends at the same time.
        let tickets: Vec<(usize, u64)> = (1..cpus)
            .map(|cpu| (cpu, smp::run_on(cpu, move || append(cpu)).expect("queued")))
            .collect();
        append(0);
        for (cpu, ticket) in tickets {
            smp::wait_for(cpu, ticket);
        }
        super::seal();
        let key = parse_hex_key(TEST_KEY_HEX).expect("test key");
        let opts = VerifyOptions {
            key: Some(key),
            checkpoint: None,
        };
        let mut seen = Sequence::default();
        let summary = log::with_locked(|log, _| ::audit::verify(log.region(), &opts, &mut seen))
            .expect("auditing must be on: boot with audit=1M audit_key=TEST_KEY_HEX")
            .expect("the live region has a readable header");
        assert!(summary.passed(), "{summary:?}");
        assert_eq!(summary.errors, 0);
        for pair in seen.seqs.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "a gap or repeat in the sequence");
        }
        assert_eq!(
            seen.texts.len(),
            cpus * PER_CPU,
            "every append is on record"
        );
        for cpu in 0..cpus {
            // Each CPU's records carry its index and come in its order.
            let mine: Vec<&alloc::string::String> = seen
                .texts
                .iter()
                .filter(|(c, _)| usize::from(*c) == cpu)
                .map(|(_, t)| t)
                .collect();
            assert_eq!(mine.len(), PER_CPU, "CPU {cpu}");
            for (i, t) in mine.iter().enumerate() {
                assert_eq!(**t, alloc::format!("smp append {cpu} {i}"));
            }
        }
        crate::kprintln!(
            "audit: {} records from {cpus} CPUs, sequence {}..={} without a gap",
            cpus * PER_CPU,
            seen.seqs.first().copied().unwrap_or(0),
            seen.seqs.last().copied().unwrap_or(0)
        );
    }
);
