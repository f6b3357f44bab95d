//! The LibOS's cryptographically secure random number generator.
//!
//! [`Csprng`] is what `/dev/urandom`, `getrandom(2)` and `AT_RANDOM` draw
//! from. [`ChaChaCsprng`] implements it with ChaCha20 (`rand_chacha`),
//! seeded once by the kernel from RDSEED/RDRAND; the LibOS never sees the
//! hardware source itself.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use spin::Mutex;

/// A source of cryptographically secure random bytes, shareable between
/// threads.
pub trait Csprng: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill_bytes(&self, buf: &mut [u8]);
}

/// ChaCha20 keyed by a 32-byte seed from the platform's entropy source.
pub struct ChaChaCsprng {
    rng: Mutex<ChaCha20Rng>,
}

impl ChaChaCsprng {
    /// A generator keyed by `seed` (which must come from a true entropy
    /// source such as RDSEED in production).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
        }
    }
}

impl core::fmt::Debug for ChaChaCsprng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChaChaCsprng { .. }")
    }
}

impl Csprng for ChaChaCsprng {
    fn fill_bytes(&self, buf: &mut [u8]) {
        self.rng.lock().fill_bytes(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed_and_not_constant() {
        let a = ChaChaCsprng::from_seed([1; 32]);
        let b = ChaChaCsprng::from_seed([1; 32]);
        let c = ChaChaCsprng::from_seed([2; 32]);
        let (mut x, mut y, mut z) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        c.fill_bytes(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut next = [0u8; 64];
        a.fill_bytes(&mut next);
        assert_ne!(x, next, "the stream advances");
        assert!(x.iter().any(|&b| b != x[0]));
    }
}
