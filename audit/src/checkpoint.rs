//! Exported checkpoints: a MACed statement "block `block_seq` of boot
//! `boot_id` was sealed with MAC `block_mac`, after `next_record_seq`
//! records of which `lost_records` were lost". The kernel sends it out of
//! the guest (serial console, attested channel); `cloister audit verify
//! --checkpoint` then detects a region file that was truncated or rolled
//! back to before it. The tag uses a key derived from the ratchet key of
//! `block_seq`, so it is as forward-secure as the block MACs.

use core::fmt;

use crate::crypto::{self, DOMAIN_CHECKPOINT, Ratchet, Tag};
use crate::wire::{MAC_BYTES, get_mac, get_u64};

/// Encoded size of a checkpoint.
pub const CHECKPOINT_BYTES: usize = 112;
const MAGIC: [u8; 8] = *b"CLSTCKP1";

/// An exported checkpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Boot the log belongs to.
    pub boot_id: [u8; 16],
    /// Block sealed by the checkpoint.
    pub block_seq: u64,
    /// Records written so far (next sequence number).
    pub next_record_seq: u64,
    /// Records lost so far.
    pub lost_records: u64,
    /// MAC of block `block_seq`.
    pub block_mac: [u8; MAC_BYTES],
    /// Tag over all of the above.
    pub tag: [u8; MAC_BYTES],
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("block_seq", &self.block_seq)
            .field("next_record_seq", &self.next_record_seq)
            .field("lost_records", &self.lost_records)
            .finish_non_exhaustive()
    }
}

fn tag_of(key: &Tag, boot_id: &[u8; 16], block_seq: u64, next: u64, lost: u64, mac: &Tag) -> Tag {
    crypto::mac_parts(
        key,
        &[
            DOMAIN_CHECKPOINT,
            boot_id,
            &block_seq.to_le_bytes(),
            &next.to_le_bytes(),
            &lost.to_le_bytes(),
            mac,
        ],
    )
}

impl Checkpoint {
    pub(crate) fn new_signed(
        key: &Tag,
        boot_id: [u8; 16],
        block_seq: u64,
        next_record_seq: u64,
        lost_records: u64,
        block_mac: Tag,
    ) -> Self {
        let tag = tag_of(
            key,
            &boot_id,
            block_seq,
            next_record_seq,
            lost_records,
            &block_mac,
        );
        Checkpoint {
            boot_id,
            block_seq,
            next_record_seq,
            lost_records,
            block_mac,
            tag,
        }
    }

    /// Whether the tag is genuine under master key `key`.
    pub fn verify_tag(&self, key: &[u8; 32]) -> bool {
        let root = crypto::ratchet_root(key, &self.boot_id);
        let leaf = Ratchet::at(&root, self.block_seq);
        let k = crypto::checkpoint_key(leaf.leaf());
        let want = tag_of(
            &k,
            &self.boot_id,
            self.block_seq,
            self.next_record_seq,
            self.lost_records,
            &self.block_mac,
        );
        crypto::tags_equal(&want, &self.tag)
    }

    /// The 112-byte encoding: magic, boot id, block seq, next record seq,
    /// lost records, block MAC, tag (integers little-endian).
    pub fn to_bytes(&self) -> [u8; CHECKPOINT_BYTES] {
        let mut b = [0u8; CHECKPOINT_BYTES];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..24].copy_from_slice(&self.boot_id);
        b[24..32].copy_from_slice(&self.block_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.next_record_seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.lost_records.to_le_bytes());
        b[48..80].copy_from_slice(&self.block_mac);
        b[80..112].copy_from_slice(&self.tag);
        b
    }

    /// Parses the encoding of [`Checkpoint::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != CHECKPOINT_BYTES || b.get(0..8)? != MAGIC {
            return None;
        }
        Some(Checkpoint {
            boot_id: b.get(8..24)?.try_into().ok()?,
            block_seq: get_u64(b, 24..32)?,
            next_record_seq: get_u64(b, 32..40)?,
            lost_records: get_u64(b, 40..48)?,
            block_mac: get_mac(b, 48..80)?,
            tag: get_mac(b, 80..112)?,
        })
    }
}
