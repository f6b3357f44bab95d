//! The block MAC of format 4: POLYVAL (RFC 8452) under a one-time key.
//!
//! Each block has its own ratchet key (`crypto::Ratchet`), used for no
//! other block. From it one keyed BLAKE3 derives 32 bytes: the POLYVAL key
//! `H` (the first 16) and a mask `S` (the last 16). The tag is
//!
//! ```text
//! POLYVAL_H(block bytes 0 .. 104 + used, zero-padded to 16 bytes,
//!           then a block of the length in bits, u64 little-endian, and 8 zero bytes) ⊕ S
//! ```
//!
//! with the block header's `SEAL` and `MAC` fields read as zero, stored in
//! the first 16 bytes of the 32-byte `MAC` field (the other 16 are zero).
//! That is a Wegman–Carter MAC: POLYVAL is an almost-XOR-universal hash
//! and `S` a one-time pad, so someone who sees every block and its tag
//! but not the keys forges a block of `L` 16-byte blocks with probability
//! at most about `L / 2^128` (2^-119 for the kernel's 8 KiB blocks,
//! 2^-112 for the largest, 1 MiB) — as long as no key MACs two different
//! contents, which the ratchet guarantees (a block is sealed once, and its
//! key is forgotten when it is).
//!
//! Why not keyed BLAKE3 over the block, as formats 1–3 did: with the
//! carry-less multiply (`crate::clmul`) POLYVAL takes under a third of
//! BLAKE3's instructions per byte even against its AVX2 code, and the seal
//! is what the log spends most on per record (docs/PERFORMANCE.md, "Audit
//! log"). BLAKE3 still derives every key.

use crate::clmul::{self, Powers};
use crate::crypto::{self, Tag};
use crate::simd;
use crate::wire::{MAC_BYTES, field};
use zeroize::Zeroize;

/// Bytes of the block's start given to [`block_mac`] as a copy (three
/// POLYVAL blocks): they hold the `SEAL` and `MAC` fields, which are read
/// as zero.
pub(crate) const HEAD_BYTES: usize = 48;
const _: () = assert!(field::block::MAC.end <= HEAD_BYTES && HEAD_BYTES.is_multiple_of(16));

/// The MAC of a block whose ratchet key is `leaf`, over `head` (the
/// block's first [`HEAD_BYTES`], with `SEAL` and `MAC` zero) followed by
/// `rest` (the block's bytes from [`HEAD_BYTES`] to the end of its
/// records).
pub(crate) fn block_mac(leaf: &Tag, head: &[u8; HEAD_BYTES], rest: &[u8]) -> Tag {
    let mut keys = crypto::block_mac_keys(leaf);
    let tag = simd::scope(|| {
        let (h, s) = keys.split_at(16);
        let mut powers = Powers([[0; 16]; 8]);
        powers.0[0].copy_from_slice(h);
        let split = rest.len() - rest.len() % 16;
        let (whole, tail) = rest.split_at(split);
        // The zero-padded tail (if any), then the length block.
        let mut last = [0u8; 32];
        let bits = ((HEAD_BYTES + rest.len()) as u64).wrapping_mul(8);
        let last_len = if tail.is_empty() {
            last[..8].copy_from_slice(&bits.to_le_bytes());
            16
        } else {
            last[..tail.len()].copy_from_slice(tail);
            last[16..24].copy_from_slice(&bits.to_le_bytes());
            32
        };
        let mut acc = [0u8; 16];
        let fast = clmul::fill_powers(&mut powers)
            && clmul::accumulate(&powers, &mut acc, head)
            && clmul::accumulate(&powers, &mut acc, whole)
            && clmul::accumulate(&powers, &mut acc, &last[..last_len]);
        if !fast {
            acc = portable(&powers.0[0], head, rest, &last[last_len - 16..last_len]);
        }
        let mut tag = [0u8; MAC_BYTES];
        for (t, (a, m)) in tag.iter_mut().zip(acc.iter().zip(s)) {
            *t = a ^ m;
        }
        // With the tag public, the accumulator gives away `S` and then
        // POLYVAL's value, whose roots are candidates for `H`: neither may
        // outlive the seal (forward security; the powers zero themselves).
        acc.zeroize();
        tag
    });
    keys.zeroize();
    tag
}

/// POLYVAL by the `polyval` crate (portable code in the kernel; on a
/// host, its own CLMUL code): for CPUs without PCLMULQDQ.
fn portable(h: &[u8; 16], head: &[u8], rest: &[u8], length_block: &[u8]) -> [u8; 16] {
    use polyval::universal_hash::{KeyInit, UniversalHash};
    let mut p = polyval::Polyval::new(h.into());
    p.update_padded(head);
    p.update_padded(rest);
    p.update_padded(length_block);
    p.finalize().into()
}

/// RFC 8452, appendix A: `POLYVAL(H, X_1 ‖ X_2)`.
const KAT_H: [u8; 16] = [
    0x25, 0x62, 0x93, 0x47, 0x58, 0x92, 0x42, 0x76, 0x1d, 0x31, 0xf8, 0x26, 0xba, 0x4b, 0x75, 0x7b,
];
const KAT_X: [u8; 32] = [
    0x4f, 0x4f, 0x95, 0x66, 0x8c, 0x83, 0xdf, 0xb6, 0x40, 0x17, 0x62, 0xbb, 0x2d, 0x01, 0xa2, 0x62,
    0xd1, 0xa2, 0x4d, 0xdd, 0x27, 0x21, 0xd0, 0x06, 0xbb, 0xe4, 0x5f, 0x20, 0xd3, 0xc9, 0xf3, 0x62,
];
const KAT_POLYVAL: [u8; 16] = [
    0xf7, 0xa3, 0xb4, 0x7b, 0x84, 0x61, 0x19, 0xfa, 0xe5, 0xb7, 0x86, 0x6c, 0xf5, 0xe5, 0xb7, 0x7e,
];

/// POLYVAL of `data` (whole blocks) under `h` the way [`block_mac`]
/// computes it (the carry-less multiply where the CPU has it), inside the
/// SIMD scope.
fn polyval_here(h: &[u8; 16], data: &[u8]) -> [u8; 16] {
    let t = simd::scope(|| {
        let mut powers = Powers([[0; 16]; 8]);
        powers.0[0] = *h;
        let mut acc = [0; 16];
        if !(clmul::fill_powers(&mut powers) && clmul::accumulate(&powers, &mut acc, data)) {
            acc = portable(h, data, &[], &[]);
        }
        let mut t = [0; MAC_BYTES];
        t[..16].copy_from_slice(&acc);
        t
    });
    let mut out = [0; 16];
    out.copy_from_slice(&t[..16]);
    out
}

/// Whether this machine's POLYVAL gives RFC 8452's answer, and the same
/// answer as the portable code for an 8 KiB block (the eight-block loop).
pub(crate) fn known_answer_ok() -> bool {
    let mut block = [0u8; 8192];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    polyval_here(&KAT_H, &KAT_X) == KAT_POLYVAL
        && polyval_here(&KAT_H, &block) == portable(&KAT_H, &block, &[], &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(block: &[u8]) -> ([u8; HEAD_BYTES], &[u8]) {
        let mut head = [0; HEAD_BYTES];
        head.copy_from_slice(&block[..HEAD_BYTES]);
        (head, &block[HEAD_BYTES..])
    }

    #[test]
    fn portable_and_clmul_agree_at_every_tail_length() {
        let leaf = [3u8; 32];
        let block: Vec<u8> = (0..1200u32).map(|i| (i * 7 % 251) as u8).collect();
        for len in (HEAD_BYTES..HEAD_BYTES + 40).chain([1024, 1199]) {
            let (head, rest) = split(&block[..len]);
            let tag = block_mac(&leaf, &head, rest);
            // The same by the crate alone.
            let keys = crypto::block_mac_keys(&leaf);
            let mut h = [0; 16];
            h.copy_from_slice(&keys[..16]);
            let mut lb = [0; 16];
            lb[..8].copy_from_slice(&(len as u64 * 8).to_le_bytes());
            let acc = portable(&h, &head, rest, &lb);
            for i in 0..16 {
                assert_eq!(tag[i], acc[i] ^ keys[16 + i], "length {len}");
            }
            assert_eq!(tag[16..], [0; 16]);
        }
    }

    #[test]
    fn every_byte_key_and_length_counts() {
        let leaf = [5u8; 32];
        let block = [0x11u8; 300];
        let (head, rest) = split(&block);
        let base = block_mac(&leaf, &head, rest);
        assert_ne!(base, block_mac(&[6; 32], &head, rest));
        // A trailing zero byte changes the length block.
        let mut longer = block.to_vec();
        longer.push(0);
        let (h2, r2) = split(&longer);
        assert_ne!(base, block_mac(&leaf, &h2, r2));
        for i in 0..block.len() {
            let mut b = block;
            b[i] ^= 0x80;
            let (h, r) = split(&b);
            assert_ne!(base, block_mac(&leaf, &h, r), "byte {i}");
        }
    }
}
