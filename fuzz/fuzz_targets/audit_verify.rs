//! Fuzzes the audit region decoder and verifier (`audit::verify`). Half of
//! the inputs are raw images; the other half are edits applied to a valid
//! region, so the fuzzer gets past the header and the MAC checks and into
//! block walking, record decoding, gap accounting and checkpoints. Any
//! panic is a bug: a hostile region must only produce findings.
#![no_main]

use std::sync::OnceLock;

use audit::{
    Auth, AuditLog, BlockView, Checkpoint, Config, DecodeError, Event, Finding, OverflowPolicy, Record,
    SyscallEvent, VerifyOptions, Visitor, verify,
};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x42; 32];

/// Touches everything the verifier reports, as the CLI does.
struct Touch(u64);

impl Visitor for Touch {
    fn block(&mut self, b: &BlockView<'_>, _auth: Auth) {
        self.0 ^= b.seq() ^ u64::from(b.used());
    }
    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, _auth: Auth) {
        self.0 ^= r.seq;
        match event {
            Ok(Event::Text { text }) => self.0 ^= text.len() as u64,
            // As `cloister attest verify` and `audit show` do.
            Ok(Event::Attestation { payload }) => {
                if let Ok(a) = audit::attest::AttestationRecord::decode(payload) {
                    self.0 ^= a.report.len() as u64;
                    if let Some(audit::attest::ReportKind::NativeUnsigned) =
                        audit::attest::ReportKind::detect(a.report)
                    {
                        self.0 ^= audit::attest::NativeReport::parse(a.report).is_ok() as u64;
                    }
                }
            }
            _ => {}
        }
    }
    fn finding(&mut self, f: &Finding) {
        self.0 ^= f.kind.to_string().len() as u64 ^ f.location.to_string().len() as u64;
    }
}

/// A valid 20 KiB region (4 blocks of 4 KiB), wrapped, with an unsealed
/// tail, and a checkpoint.
fn valid() -> &'static (Vec<u8>, Checkpoint) {
    static V: OnceLock<(Vec<u8>, Checkpoint)> = OnceLock::new();
    V.get_or_init(|| {
        let mut img = vec![0u8; 4096 + 4 * 4096];
        let mut cfg = Config::new(KEY, [7; 16]);
        cfg.policy = OverflowPolicy::OverwriteOldest;
        let mut log = AuditLog::format(&mut img, &cfg).expect("format");
        for i in 0..200u64 {
            let _ = log.append(&Event::Syscall(SyscallEvent::new(i as u32, [i; 6], 0, 1, 2)), i, 0);
            if i % 50 == 0 {
                let _ = log.append(&Event::Text { text: "hello" }, i, 1);
            }
        }
        let cp = log.checkpoint(999, 0).expect("checkpoint");
        let _ = log.append(&Event::Text { text: "tail" }, 1000, 0);
        drop(log);
        (img, cp)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (valid_img, cp) = valid();
    let img = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        // Edits: (offset u16 scaled, byte) pairs applied to the valid image.
        let mut img = valid_img.clone();
        for e in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([e[0], e[1]])) * img.len() / 65536;
            img[at] = e[2];
        }
        if mode & 2 != 0 {
            let keep = usize::from(mode) * img.len() / 256;
            img.truncate(keep);
        }
        img
    };
    let key = if mode & 4 == 0 { Some(KEY) } else { None };
    let checkpoint = (mode & 8 != 0).then_some(*cp);
    let mut t = Touch(0);
    let _ = verify(&img, &VerifyOptions { key, checkpoint }, &mut t);
});
