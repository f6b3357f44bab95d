//! Attestation that binds the audit log, and the guest side of the
//! attested key release (`docs/AUDIT.md`, "Attestation and key release").
//!
//! - [`guest_key`]: this boot's ephemeral X25519 key pair (RDRAND), made
//!   once and kept in kernel memory only;
//! - [`attest`]: checkpoints the log (which seals the open block), asks the
//!   platform for a report whose `REPORT_DATA` binds the boot id, that
//!   checkpoint and the public key ([`audit::attest::report_data`]), and
//!   appends it as an `attestation` record, so the report travels with the
//!   audit image, and prints it on COM1 (`attest: report <hex>`). Called
//!   at boot (end of [`super::init`]) and before the final seal (program
//!   exit, power-off);
//! - [`release_key`]: with `audit.key_release` on the command line, before
//!   the region is formatted: a report binding the boot id and the public
//!   key (no checkpoint yet) goes to the host on COM1 as
//!   `CLOISTER_KEY_RELEASE? <boot id hex> <public key hex> <report hex>`;
//!   the owner's broker answers on COM1's input with the hex of an
//!   envelope ([`audit::attest::seal_key`]) or `-` to refuse; the guest
//!   opens it with its secret key and formats the log with the key inside.

use core::fmt::Write;

use audit::attest::{ENVELOPE_BYTES, GuestKey, ReportKind, report_data};
use zeroize::Zeroizing;

use super::key;
use crate::platform::{self, port};

/// COM1's data and line-status registers; LSR bit 0: a byte is waiting.
const COM1_DATA: u16 = 0x3f8;
const COM1_LSR: u16 = 0x3fd;
const LSR_DATA_READY: u8 = 1;
/// How long the guest waits for the broker's answer. Past it the boot goes
/// on without the released key (never a test verdict: a broker that
/// answers at all answers long before).
const RELEASE_WAIT_NS: u64 = 120_000_000_000;

/// The line prefix of a recorded report, in hex, on COM1.
pub const REPORT_LINE_PREFIX: &str = "attest: report ";

/// The line prefix of a key-release request on COM1.
pub const REQUEST_PREFIX: &str = "CLOISTER_KEY_RELEASE? ";

static GUEST_KEY: spin::Once<GuestKey> = spin::Once::new();

/// This boot's ephemeral key pair, made on first use from RDRAND.
pub fn guest_key() -> &'static GuestKey {
    GUEST_KEY.call_once(|| {
        let mut random = Zeroizing::new([0u8; 32]);
        if key::random_bytes(random.as_mut()) == key::Entropy::TscOnly {
            ::log::warn!("attest: no RDRAND: the ephemeral key is guessable");
        }
        GuestKey::from_random(*random)
    })
}

/// Checkpoints the log and records a report bound to that checkpoint.
/// Returns the attestation record's sequence number; `None` (with a
/// console line saying why) when auditing is off or the platform gave no
/// report.
pub fn attest(when: &str) -> Option<u64> {
    if !super::is_enabled() {
        return None;
    }
    let public = guest_key().public();
    let mut recorded = alloc::vec::Vec::new();
    let outcome = super::log::with_log_now(|log, now, cpu| {
        audit::attest::append(log, now, cpu, &public, |data| {
            let report = platform::platform().attestation_report(data)?;
            recorded.clone_from(&report);
            Ok::<_, platform::PlatformError>(report)
        })
    })?;
    match outcome {
        Ok(a) => {
            let kind = ReportKind::detect(&recorded).map_or("unknown", ReportKind::name);
            crate::kprintln!(
                "attest: {when}: {kind} report bound to the checkpoint of block {} (record {})",
                a.checkpoint.block_seq,
                a.record_seq
            );
            // The report on the console too, for an owner who keeps the
            // newest one out of band (`cloister attest verify --report`).
            let mut line =
                alloc::string::String::with_capacity(REPORT_LINE_PREFIX.len() + 2 * recorded.len());
            line.push_str(REPORT_LINE_PREFIX);
            push_hex(&mut line, &recorded);
            crate::kprintln!("{line}");
            Some(a.record_seq)
        }
        Err(why) => {
            ::log::warn!("attest: {when}: no attestation record: {why:?}");
            None
        }
    }
}

/// The guest side of the key release: sends a report binding `boot_id` and
/// the ephemeral key to the host's broker and opens the envelope it
/// answers with. Returns the released audit key.
pub fn release_key(boot_id: &[u8; 16]) -> Result<Zeroizing<[u8; 32]>, &'static str> {
    let guest = guest_key();
    let data = report_data(boot_id, None, &guest.public());
    let report = platform::platform()
        .attestation_report(&data)
        .map_err(|_| "the platform gave no report")?;
    // Stale input must not be taken for the answer.
    while port::read_u8(COM1_LSR) & LSR_DATA_READY != 0 {
        let _ = port::read_u8(COM1_DATA);
    }
    let mut line = alloc::string::String::with_capacity(
        REQUEST_PREFIX.len() + 2 * (16 + 32 + report.len()) + 2,
    );
    line.push_str(REQUEST_PREFIX);
    push_hex(&mut line, boot_id);
    line.push(' ');
    push_hex(&mut line, &guest.public());
    line.push(' ');
    push_hex(&mut line, &report);
    crate::kprintln!("{line}");

    let mut answer = [0u8; 2 * ENVELOPE_BYTES];
    let len = read_line(&mut answer)?;
    if &answer[..len] == b"-" {
        return Err("the broker refused");
    }
    let mut envelope = [0u8; ENVELOPE_BYTES];
    if len != answer.len() || !decode_hex(&answer, &mut envelope) {
        return Err("the broker's answer is not an envelope in hex");
    }
    guest
        .open(&data, &envelope)
        .map_err(|_| "the envelope does not open for this report")
}

/// Reads one line (without its `\n`, a `\r` dropped) from COM1 into `buf`.
fn read_line(buf: &mut [u8]) -> Result<usize, &'static str> {
    let deadline = crate::time::now_ns().saturating_add(RELEASE_WAIT_NS);
    let mut len = 0;
    loop {
        if port::read_u8(COM1_LSR) & LSR_DATA_READY == 0 {
            if crate::time::now_ns() > deadline {
                return Err("no answer from the broker");
            }
            core::hint::spin_loop();
            continue;
        }
        match port::read_u8(COM1_DATA) {
            b'\n' => return Ok(len),
            b'\r' => {}
            b => {
                *buf.get_mut(len).ok_or("the broker's answer is too long")? = b;
                len += 1;
            }
        }
    }
}

fn push_hex(out: &mut alloc::string::String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != 2 * out.len() {
        return false;
    }
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => *o = (h << 4 | l) as u8,
            _ => return false,
        }
    }
    true
}
