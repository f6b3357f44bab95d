//! Helpers shared by the audit integration tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use audit::{
    AuditLog, Auth, BlockView, Config, DecodeError, Event, Finding, FindingKind, GapEvent,
    OverflowPolicy, Record, Severity, Summary, SyscallEvent, VerifyOptions, Visitor, verify,
};

pub const KEY: [u8; 32] = [0x42; 32];
pub const BOOT: [u8; 16] = *b"boot-0000000001\0";
pub const OTHER_BOOT: [u8; 16] = *b"boot-0000000002\0";

/// One record as seen by the verifier.
#[derive(Debug, Clone)]
pub struct Seen {
    pub seq: u64,
    pub kind: u8,
    pub auth: Auth,
    pub gap: Option<GapEvent>,
    pub text: Option<String>,
    pub syscall: Option<SyscallEvent>,
}

#[derive(Debug, Default)]
pub struct Collect {
    pub records: Vec<Seen>,
    pub findings: Vec<Finding>,
    pub blocks: Vec<(u64, Auth)>,
}

impl Visitor for Collect {
    fn block(&mut self, block: &BlockView<'_>, auth: Auth) {
        self.blocks.push((block.seq(), auth));
    }
    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, auth: Auth) {
        let (gap, text, syscall) = match event {
            Ok(Event::Gap(g)) => (Some(g), None, None),
            Ok(Event::Text { text }) => (None, Some(text.to_string()), None),
            Ok(Event::Panic { message }) => (None, Some(message.to_string()), None),
            Ok(Event::Syscall(s)) => (None, None, Some(s)),
            _ => (None, None, None),
        };
        self.records.push(Seen {
            seq: r.seq,
            kind: r.kind,
            auth,
            gap,
            text,
            syscall,
        });
    }
    fn finding(&mut self, f: &Finding) {
        self.findings.push(*f);
    }
}

impl Collect {
    pub fn errors(&self) -> Vec<Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .copied()
            .collect()
    }
    pub fn has_error(&self, pred: impl Fn(&Finding) -> bool) -> bool {
        self.errors().iter().any(pred)
    }
}

pub fn check(image: &[u8], key: Option<[u8; 32]>) -> (Summary, Collect) {
    let mut c = Collect::default();
    let opts = VerifyOptions {
        key,
        checkpoint: None,
    };
    let s = verify(image, &opts, &mut c).expect("region header readable");
    (s, c)
}

pub fn config(policy: OverflowPolicy, block_bytes: usize) -> Config {
    let mut c = Config::new(KEY, BOOT);
    c.policy = policy;
    c.block_bytes = block_bytes;
    c
}

/// Bit 63 of every argument: each takes the longest size (8 bytes).
pub const HIGH: u64 = 1 << 63;

/// Syscall record `i`, built so that every record has the same size
/// whatever `i` (< 2^16) is: a 72-byte payload (tag 4, number 4, tid 4,
/// result 8, duration 4, six 8-byte arguments) and an 8-byte header (a
/// one-byte time one step after the previous record's, CPU 0 or 1; CPU 0
/// takes no byte, which the padding to an even length hides): 80 bytes. A
/// block's first record, whose time is stored whole (2 bytes), takes 2
/// more on CPU 1 (82 bytes) and none on CPU 0.
pub fn syscall(i: u64) -> Event<'static> {
    Event::Syscall(SyscallEvent::new(
        0x100_0000 | (i as u32 % 400),
        [i | HIGH, 1 | HIGH, 2 | HIGH, 3 | HIGH, 4 | HIGH, 5 | HIGH],
        (i as i64) | (1 << 62),
        0x100_0007,
        0xf000_0000 | 100,
    ))
}

/// Records of [`syscall`] a 4 KiB block holds.
pub const PER_BLOCK: u64 = 49;

/// A 64 KiB region (15 blocks of 4 KiB) with `n` syscall records, all
/// sealed (the last block sealed explicitly).
pub fn sealed_image(n: u64, boot: [u8; 16]) -> Vec<u8> {
    let mut img = vec![0u8; 64 * 1024];
    let mut cfg = config(OverflowPolicy::OverwriteOldest, 4096);
    cfg.boot_id = boot;
    let mut log = AuditLog::format(&mut img, &cfg).unwrap();
    for i in 0..n {
        log.append(&syscall(i), 1000 + i, (i % 2) as u16).unwrap();
    }
    log.seal();
    img
}

pub fn only_kind(c: &Collect, pred: impl Fn(&FindingKind) -> bool) -> bool {
    c.errors().iter().all(|f| pred(&f.kind))
}
