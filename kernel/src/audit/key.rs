//! The audit master key and the boot id: `audit_key=<64 hex digits>` from
//! the command line, or a random per-boot key; random bytes from RDRAND.
//!
//! The command line is visible to the host, so a key given there protects
//! nothing against the host: it is for tests and plain VMs. In a
//! confidential VM the key is released by the owner's key broker after
//! attestation (`audit.key_release`, [`super::attest::release_key`]; see
//! `docs/AUDIT.md`, "Where the key lives").

/// Where the key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `audit_key=` on the command line.
    CommandLine,
    /// Released by the owner's broker after attestation
    /// (`audit.key_release`).
    Released,
    /// Random, generated at boot and never exported: the records can be
    /// read but nobody can verify their MACs.
    RandomPerBoot,
}

/// Why `audit_key=` was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadKey;

/// Parses 64 hex digits into a key.
pub fn parse_hex_key(hex: &str) -> Result<[u8; 32], BadKey> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(BadKey);
    }
    let mut key = [0u8; 32];
    for (out, pair) in key.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16).ok_or(BadKey);
        *out = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
    }
    Ok(key)
}

/// Whether the random bytes came from RDRAND (else from the TSC: guessable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entropy {
    /// RDRAND.
    RdRand,
    /// No RDRAND: TSC readings, predictable.
    TscOnly,
}

/// Fills `out` with random bytes.
pub fn random_bytes(out: &mut [u8]) -> Entropy {
    let mut source = Entropy::RdRand;
    for chunk in out.chunks_mut(8) {
        // RDRAND (if the CPU has it), retried as Intel advises.
        let word = crate::arch::cpu::hw_random(false).unwrap_or_else(|| {
            source = Entropy::TscOnly;
            crate::time::rdtsc().wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    source
}

/// Overwrites `key` with zeros in a way the compiler keeps.
pub fn wipe(key: &mut [u8; 32]) {
    zeroize::Zeroize::zeroize(key);
}
