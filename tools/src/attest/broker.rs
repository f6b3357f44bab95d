//! A key broker for tests and plain VMs: answers the guest's key-release
//! request (`audit.key_release`; `kernel/src/audit/attest.rs`).
//!
//! The guest writes `CLOISTER_KEY_RELEASE? <boot id hex> <public key hex>
//! <report hex>` on COM1. [`answer`] parses the report, checks that its
//! `REPORT_DATA` binds that boot id and public key (with no checkpoint: the
//! log is not formatted yet), and answers with the hex of an envelope
//! holding the audit key encrypted to the guest's key
//! ([`audit::attest::seal_key`]), or `-` to refuse. A production broker
//! would also check the report's signature, the measurement, the policy and
//! the TCB, and release a key once per boot id; this one only checks the
//! binding, which is all an unsigned native report allows.

use std::io::Read;

use audit::attest::{PUBLIC_KEY_BYTES, report_data, seal_key};

use super::report;
use crate::audit_cli::key::{hex, hex_decode};

/// The request's line prefix.
pub const REQUEST_PREFIX: &str = "CLOISTER_KEY_RELEASE? ";

/// A parsed key-release request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The boot the key is for.
    pub boot_id: [u8; 16],
    /// The guest's ephemeral X25519 key.
    pub public_key: [u8; PUBLIC_KEY_BYTES],
    /// The report.
    pub report: Vec<u8>,
}

/// Parses a COM1 line; `None` if it is not a well-formed request.
pub fn parse_request(line: &str) -> Option<Request> {
    let mut fields = line.strip_prefix(REQUEST_PREFIX)?.split(' ');
    let boot_id = hex_decode(fields.next()?)?.try_into().ok()?;
    let public_key = hex_decode(fields.next()?)?.try_into().ok()?;
    let report = hex_decode(fields.next()?)?;
    fields.next().is_none().then_some(Request {
        boot_id,
        public_key,
        report,
    })
}

/// Why the broker refused.
pub fn check(request: &Request) -> Result<(), String> {
    let parsed = report::parse(&request.report)?;
    if parsed.report_data != report_data(&request.boot_id, None, &request.public_key) {
        return Err("the report does not bind the boot id and public key".into());
    }
    Ok(())
}

/// The answer line (with its `\n`) to a COM1 line that is a request, or
/// `None` for any other line. `broker_random` is the broker's fresh
/// ephemeral secret.
pub fn answer(line: &str, audit_key: &[u8; 32], broker_random: [u8; 32]) -> Option<String> {
    if !line.starts_with(REQUEST_PREFIX) {
        return None;
    }
    let Some(request) = parse_request(line) else {
        return Some("-\n".into());
    };
    if check(&request).is_err() {
        return Some("-\n".into());
    }
    let data = report_data(&request.boot_id, None, &request.public_key);
    match seal_key(&request.public_key, &data, audit_key, broker_random) {
        Ok(envelope) => Some(format!("{}\n", hex(&envelope))),
        Err(_) => Some("-\n".into()),
    }
}

/// 32 random bytes from the operating system.
pub fn random_secret() -> std::io::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit::attest::{GuestKey, NativeReport};

    fn request_line(boot_id: [u8; 16], guest: &GuestKey, bound_key: [u8; 32]) -> String {
        let report = NativeReport {
            measurement: None,
            report_data: report_data(&boot_id, None, &bound_key),
        }
        .to_bytes();
        format!(
            "{REQUEST_PREFIX}{} {} {}",
            hex(&boot_id),
            hex(&guest.public()),
            hex(&report)
        )
    }

    #[test]
    fn the_guest_gets_the_key_for_a_report_that_binds_its_key() {
        let guest = GuestKey::from_random([7; 32]);
        let line = request_line([1; 16], &guest, guest.public());
        let answer = answer(&line, &[0x33; 32], [9; 32]).unwrap();
        let envelope = hex_decode(answer.trim_end()).unwrap();
        let data = report_data(&[1; 16], None, &guest.public());
        assert_eq!(*guest.open(&data, &envelope).unwrap(), [0x33; 32]);
    }

    #[test]
    fn a_report_binding_another_key_or_garbage_is_refused() {
        let guest = GuestKey::from_random([7; 32]);
        let line = request_line([1; 16], &guest, [5; 32]);
        assert_eq!(answer(&line, &[0x33; 32], [9; 32]).as_deref(), Some("-\n"));
        assert_eq!(
            answer("CLOISTER_KEY_RELEASE? zz", &[0x33; 32], [9; 32]).as_deref(),
            Some("-\n")
        );
        assert_eq!(answer("audit: on", &[0x33; 32], [9; 32]), None);
    }
}
