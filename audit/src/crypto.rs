//! Keys and MACs: keyed BLAKE3 (the `blake3` crate) for the key
//! derivations from the 32-byte master key, the header MAC, and the
//! forward-secure, seekable key ratchet that gives every block its own key
//! (from which `mac.rs` derives the block's one-time MAC key).
//!
//! The ratchet is a hash tree of 16 levels with fan-out 16 (one nibble of
//! the block sequence number per level). From a node key `X`, `D(X)` is the
//! key of its first child and `N(X)` the key of its next sibling; the leaf
//! key of block `n` is reached from the root by, for each nibble `d` of `n`
//! from the most significant, one `D` and `d` times `N`. The writer keeps
//! only the current leaf and, per level, the *next sibling* of the current
//! path, from which every later leaf — and no earlier one — can be derived.
//! A verifier seeks to any block in at most 16 × 16 hashes.

use crate::simd;
use crate::wire::MAC_BYTES;

/// A 32-byte key or MAC.
pub type Tag = [u8; MAC_BYTES];

/// Nibble levels of the ratchet tree.
const LEVELS: usize = 16;
/// Largest digit at one level.
const MAX_DIGIT: u64 = 15;

const DOMAIN_KEY_ID: &[u8] = b"cloister-audit/v1/key-id";
const DOMAIN_HEADER: &[u8] = b"cloister-audit/v1/header";
const DOMAIN_RATCHET: &[u8] = b"cloister-audit/v1/ratchet";
pub(crate) const DOMAIN_CHECKPOINT: &[u8] = b"cloister-audit/v1/checkpoint";

/// Keyed BLAKE3 of the concatenation of `parts` under `key`. Domains are
/// kept apart: master-key uses start with a distinct domain string; ratchet
/// keys only MAC one-byte inputs (`N`, `D`, `C`, and `M` for the block MAC's
/// key in `mac.rs`).
pub(crate) fn mac_parts(key: &Tag, parts: &[&[u8]]) -> Tag {
    simd::scope(|| {
        let mut h = blake3::Hasher::new_keyed(key);
        for part in parts {
            h.update(part);
        }
        h.finalize().into()
    })
}

/// Keyed BLAKE3 of one contiguous input (one-shot: hashes all whole
/// chunks in parallel, unlike the incremental hasher). The known-answer
/// check of the SIMD code uses it.
pub(crate) fn mac_oneshot(key: &Tag, input: &[u8]) -> Tag {
    simd::scope(|| blake3::keyed_hash(key, input).into())
}

/// Constant-time equality of two tags.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// First 16 bytes of MAC(master, "key-id"): lets a reader tell a wrong key
/// from tampering without revealing anything about the key.
pub(crate) fn key_id(master: &Tag) -> [u8; 16] {
    let t = mac_parts(master, &[DOMAIN_KEY_ID]);
    let mut id = [0; 16];
    id.copy_from_slice(&t[..16]);
    id
}

/// Tag stamped in every block header: first 8 bytes of BLAKE3 of the
/// boot id (no key needed to compute it).
pub(crate) fn boot_tag(boot_id: &[u8; 16]) -> [u8; 8] {
    let d = simd::scope(|| blake3::hash(boot_id).into());
    let mut t = [0; 8];
    t.copy_from_slice(&d[..8]);
    t
}

/// Key that MACs the static part of the region header.
pub(crate) fn header_key(master: &Tag, boot_id: &[u8; 16]) -> Tag {
    mac_parts(master, &[DOMAIN_HEADER, boot_id])
}

/// Root of this boot's ratchet tree.
pub(crate) fn ratchet_root(master: &Tag, boot_id: &[u8; 16]) -> Tag {
    mac_parts(master, &[DOMAIN_RATCHET, boot_id])
}

fn step(tag: u8, x: &Tag) -> Tag {
    simd::scope(|| blake3::keyed_hash(x, &[tag]).into())
}

/// One ratchet step, for the scope's test.
#[cfg(test)]
pub(crate) fn step_for_tests(x: &Tag, tag: u8) -> Tag {
    step(tag, x)
}

/// First child.
fn down(x: &Tag) -> Tag {
    step(b'D', x)
}

/// Next sibling.
fn next(x: &Tag) -> Tag {
    step(b'N', x)
}

/// Key that MACs a checkpoint taken at the block whose key is `leaf`.
pub(crate) fn checkpoint_key(leaf: &Tag) -> Tag {
    step(b'C', leaf)
}

/// The one-time key of the MAC of the block whose key is `leaf`: POLYVAL's
/// `H` in the first 16 bytes, the mask `S` in the last (`mac.rs`).
pub(crate) fn block_mac_keys(leaf: &Tag) -> Tag {
    step(b'M', leaf)
}

fn digit(n: u64, level: usize) -> u64 {
    (n >> (4 * (LEVELS - 1 - level))) & MAX_DIGIT
}

/// Forward-secure key ratchet positioned at block `index`.
pub(crate) struct Ratchet {
    index: u64,
    leaf: Tag,
    /// Per level, the key of the next sibling of the current path's node
    /// (meaningless where the current digit is 15).
    next_sibling: [Tag; LEVELS],
}

impl core::fmt::Debug for Ratchet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ratchet")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Ratchet {
    /// Seeks from the root to block `index` (at most 256 hashes).
    pub(crate) fn at(root: &Tag, index: u64) -> Self {
        let mut next_sibling = [[0; MAC_BYTES]; LEVELS];
        let mut node = *root;
        for (level, sib) in next_sibling.iter_mut().enumerate() {
            node = down(&node);
            for _ in 0..digit(index, level) {
                node = next(&node);
            }
            if digit(index, level) < MAX_DIGIT {
                *sib = next(&node);
            }
        }
        Ratchet {
            index,
            leaf: node,
            next_sibling,
        }
    }

    /// Index of the block whose key is current.
    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    /// MAC key of the current block.
    pub(crate) fn leaf(&self) -> &Tag {
        &self.leaf
    }

    /// Moves to the next block and forgets the current key. Returns false
    /// (and stays put) only at index `u64::MAX`.
    pub(crate) fn advance(&mut self) -> bool {
        let n = self.index;
        let Some(level) = (0..LEVELS).rev().find(|&l| digit(n, l) < MAX_DIGIT) else {
            return false;
        };
        let mut node = self.next_sibling[level];
        self.next_sibling[level] = if digit(n, level) + 1 < MAX_DIGIT {
            next(&node)
        } else {
            [0; MAC_BYTES]
        };
        for sib in self.next_sibling.iter_mut().skip(level + 1) {
            node = down(&node);
            *sib = next(&node);
        }
        self.leaf = node;
        self.index = n + 1;
        true
    }
}

impl Drop for Ratchet {
    fn drop(&mut self) {
        self.leaf = [0; MAC_BYTES];
        self.next_sibling = [[0; MAC_BYTES]; LEVELS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_matches_seek_across_carries() {
        let root = [7u8; 32];
        for start in [
            0u64,
            1,
            14,
            15,
            16,
            254,
            255,
            256,
            4095,
            0xFFFF,
            0x1_0000_0000 - 3,
        ] {
            let mut r = Ratchet::at(&root, start);
            for i in 1..=20u64 {
                assert!(r.advance());
                let s = Ratchet::at(&root, start + i);
                assert_eq!(r.leaf(), s.leaf(), "start {start} +{i}");
                assert_eq!(r.index(), start + i);
            }
        }
    }

    #[test]
    fn leaves_differ_and_depend_on_root() {
        let a = Ratchet::at(&[1; 32], 5);
        let b = Ratchet::at(&[1; 32], 6);
        let c = Ratchet::at(&[2; 32], 5);
        assert_ne!(a.leaf(), b.leaf());
        assert_ne!(a.leaf(), c.leaf());
    }

    #[test]
    fn last_index_does_not_advance() {
        let mut r = Ratchet::at(&[3; 32], u64::MAX);
        assert!(!r.advance());
        assert_eq!(r.index(), u64::MAX);
    }

    #[test]
    fn keyed_blake3_known_answer() {
        // BLAKE3 test vectors: keyed_hash of the empty input.
        let t = mac_parts(b"whats the Elvish word for friend", &[]);
        assert_eq!(t[..4], [0x92, 0xb2, 0xb7, 0x56]);
        // Split input equals joined input.
        assert_eq!(
            mac_parts(&[1; 32], &[b"ab", b"c"]),
            mac_parts(&[1; 32], &[b"abc"])
        );
        assert!(tags_equal(&t, &t));
        assert!(!tags_equal(&t, &[0; 32]));
    }
}
