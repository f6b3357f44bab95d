//! The CSPRNG's seed from the CPU's entropy source.

use crate::arch::cpu::hw_random;

/// 32 bytes of seed: RDSEED where the CPU has it, else RDRAND. Without
/// either (or if both keep failing) the seed falls back to TSC jitter,
/// which is NOT cryptographically sound: a warning says so.
pub fn seed() -> [u8; 32] {
    let f = crate::arch::cpu::features();
    let mut out = [0u8; 32];
    let mut hardware = true;
    for chunk in out.chunks_mut(8) {
        let v = (f.rdseed.then(|| hw_random(true)).flatten())
            .or_else(|| f.rdrand.then(|| hw_random(false)).flatten());
        let v = v.unwrap_or_else(|| {
            hardware = false;
            let a = crate::time::rdtsc();
            crate::time::spin_ns(1000);
            a.rotate_left(17) ^ crate::time::rdtsc()
        });
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    if !hardware {
        log::warn!(
            "no RDSEED/RDRAND: random numbers are seeded from TSC jitter and are NOT secure"
        );
    }
    out
}
