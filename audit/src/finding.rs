//! Findings of the verifier: what is wrong ([`FindingKind`], with a
//! message and a stable code), how bad ([`Severity`]) and where
//! ([`Location`]: slot, block, record, image offset).

use core::fmt;

use crate::event::DecodeError;
use crate::reader::RecordError;

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Tampering or corruption: verification fails.
    Error,
    /// Expected after a crash or with a full ring; verification passes.
    Warning,
}

/// Where a finding is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    /// Block slot.
    pub slot: Option<u64>,
    /// Block sequence number.
    pub block_seq: Option<u64>,
    /// Record sequence number.
    pub record_seq: Option<u64>,
    /// Byte offset in the image.
    pub offset: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(b) = self.block_seq {
            write!(f, "block {b}")?;
            sep = ", ";
        }
        if let Some(s) = self.slot {
            write!(f, "{sep}slot {s}")?;
            sep = ", ";
        }
        if let Some(r) = self.record_seq {
            write!(f, "{sep}record {r}")?;
            sep = ", ";
        }
        if let Some(o) = self.offset {
            write!(f, "{sep}offset {o:#x}")?;
            sep = ", ";
        }
        if sep.is_empty() {
            f.write_str("region")?;
        }
        Ok(())
    }
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The key's id differs from the region's: wrong key.
    WrongKey,
    /// The static region header does not match its MAC.
    HeaderMacMismatch,
    /// A block of another boot (spliced in, or stale).
    BlockFromOtherBoot,
    /// A block whose sequence number does not belong in its slot.
    MisplacedBlock {
        /// Its sequence number.
        found_seq: u64,
    },
    /// A block from another lap of the ring where the chain expects another
    /// (replayed or reordered).
    StaleBlock {
        /// Sequence number found.
        found_seq: u64,
    },
    /// Block magic present but the seal marker is garbage.
    BadSealMarker,
    /// A block inside the chain is missing (deleted).
    MissingBlock,
    /// The oldest block of a full ring is missing, as when the guest died
    /// while opening the next block (it had just been evicted).
    MissingOldestBlock,
    /// The newest block was opened (evicting the block before the oldest)
    /// but the guest died before its gap record was committed.
    EvictionUnrecorded,
    /// An unsealed block is followed by later blocks.
    OpenBlockNotNewest,
    /// The block's previous-MAC field does not match the previous block.
    ChainBroken,
    /// The block's MAC does not verify: altered, or from another region.
    MacMismatch,
    /// A sealed block's data length is invalid.
    BadSealedLength,
    /// The sealed record count differs from the records found.
    RecordCountMismatch {
        /// Count in the block header.
        header: u32,
        /// Records found.
        found: u32,
    },
    /// A malformed record.
    BadRecord(RecordError),
    /// A record whose payload does not decode.
    BadEvent(DecodeError),
    /// A record sequence number out of order with no gap record to explain.
    SeqDiscontinuity {
        /// Sequence number expected.
        expected: u64,
    },
    /// A record torn mid-append (skipped).
    TornRecord,
    /// Records in the open block are committed but not authenticated.
    UnsealedRecords {
        /// How many.
        count: u64,
    },
    /// Blocks before the oldest one are gone with no gap record for them.
    FrontUnaccounted {
        /// Last block a gap record accounts for, if any.
        accounted_through: Option<u64>,
    },
    /// The gap record's digest differs from the oldest block's previous MAC.
    FrontDigestMismatch,
    /// The region header says more blocks were sealed than are present.
    TailTruncated {
        /// Sealed blocks according to the header.
        header_sealed: u64,
        /// Sealed blocks found.
        found_sealed: u64,
    },
    /// The header's last-seal MAC differs from the last sealed block's.
    LastSealMismatch,
    /// The header's hints lag the chain (crash between seal and update).
    HintsBehind,
    /// The header's (unauthenticated) hint counts records dropped after
    /// the last gap record (ring still full).
    PendingDrops {
        /// How many.
        count: u64,
    },
    /// The checkpoint is for another boot.
    CheckpointBootMismatch,
    /// The checkpoint's tag does not verify.
    CheckpointTagInvalid,
    /// No key: the checkpoint's tag was not checked.
    CheckpointUnverified,
    /// The region ends before the checkpoint's block: rolled back or
    /// truncated.
    RolledBack {
        /// Block the checkpoint proves was sealed.
        checkpoint_block: u64,
        /// Sealed blocks found.
        found_sealed: u64,
    },
    /// The checkpoint's block has a different MAC in the region.
    CheckpointMacMismatch,
}

impl FindingKind {
    /// Stable snake_case name, for JSON output and scripts.
    pub fn code(&self) -> &'static str {
        use FindingKind as K;
        match self {
            K::WrongKey => "wrong_key",
            K::HeaderMacMismatch => "header_mac_mismatch",
            K::BlockFromOtherBoot => "block_from_other_boot",
            K::MisplacedBlock { .. } => "misplaced_block",
            K::StaleBlock { .. } => "stale_block",
            K::BadSealMarker => "bad_seal_marker",
            K::MissingBlock => "missing_block",
            K::MissingOldestBlock => "missing_oldest_block",
            K::EvictionUnrecorded => "eviction_unrecorded",
            K::OpenBlockNotNewest => "open_block_not_newest",
            K::ChainBroken => "chain_broken",
            K::MacMismatch => "mac_mismatch",
            K::BadSealedLength => "bad_sealed_length",
            K::RecordCountMismatch { .. } => "record_count_mismatch",
            K::BadRecord(_) => "bad_record",
            K::BadEvent(_) => "bad_event",
            K::SeqDiscontinuity { .. } => "seq_discontinuity",
            K::TornRecord => "torn_record",
            K::UnsealedRecords { .. } => "unsealed_records",
            K::FrontUnaccounted { .. } => "front_unaccounted",
            K::FrontDigestMismatch => "front_digest_mismatch",
            K::TailTruncated { .. } => "tail_truncated",
            K::LastSealMismatch => "last_seal_mismatch",
            K::HintsBehind => "hints_behind",
            K::PendingDrops { .. } => "pending_drops",
            K::CheckpointBootMismatch => "checkpoint_boot_mismatch",
            K::CheckpointTagInvalid => "checkpoint_tag_invalid",
            K::CheckpointUnverified => "checkpoint_unverified",
            K::RolledBack { .. } => "rolled_back",
            K::CheckpointMacMismatch => "checkpoint_mac_mismatch",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FindingKind as K;
        match self {
            K::WrongKey => {
                f.write_str("the key does not match this region (key id differs): wrong key")
            }
            K::HeaderMacMismatch => {
                f.write_str("region header MAC mismatch: header (geometry or boot id) altered")
            }
            K::BlockFromOtherBoot => {
                f.write_str("block belongs to another boot (spliced in from another region)")
            }
            K::MisplacedBlock { found_seq } => {
                write!(f, "block {found_seq} does not belong in this slot (moved)")
            }
            K::StaleBlock { found_seq } => {
                write!(
                    f,
                    "slot holds block {found_seq} instead: replayed, reordered or stale block"
                )
            }
            K::BadSealMarker => f.write_str("seal marker is corrupt"),
            K::MissingBlock => f.write_str("block is missing from the chain (deleted)"),
            K::MissingOldestBlock => f.write_str(
                "oldest block is missing, as when the guest died while opening the next block",
            ),
            K::EvictionUnrecorded => f.write_str(
                "the block before the oldest was evicted but its gap record never committed (guest died while opening the newest block)",
            ),
            K::OpenBlockNotNewest => f.write_str("unsealed block is followed by later blocks"),
            K::ChainBroken => {
                f.write_str("previous-MAC does not match the previous block: chain broken")
            }
            K::MacMismatch => {
                f.write_str("MAC mismatch: block altered, or copied from another boot or region")
            }
            K::BadSealedLength => f.write_str("sealed data length is invalid"),
            K::RecordCountMismatch { header, found } => {
                write!(f, "block header says {header} records, found {found}")
            }
            K::BadRecord(e) => write!(f, "malformed record: {e}"),
            K::BadEvent(e) => write!(f, "undecodable payload: {e}"),
            K::SeqDiscontinuity { expected } => {
                write!(
                    f,
                    "record out of sequence (expected {expected}): record deleted, reordered or inserted"
                )
            }
            K::TornRecord => f.write_str("record torn mid-append (never committed): skipped"),
            K::UnsealedRecords { count } => write!(
                f,
                "{count} committed records not sealed yet (not authenticated)"
            ),
            K::FrontUnaccounted {
                accounted_through: Some(b),
            } => {
                write!(
                    f,
                    "oldest blocks missing: gap records account only through block {b}"
                )
            }
            K::FrontUnaccounted {
                accounted_through: None,
            } => f.write_str("oldest blocks missing and no gap record accounts for them"),
            K::FrontDigestMismatch => {
                f.write_str("gap record digest differs from the oldest block's previous MAC")
            }
            K::TailTruncated {
                header_sealed,
                found_sealed,
            } => write!(
                f,
                "region header says {header_sealed} blocks were sealed, the chain has {found_sealed}: tail truncated"
            ),
            K::LastSealMismatch => {
                f.write_str("region header's last seal differs from the last sealed block")
            }
            K::HintsBehind => {
                f.write_str("region header hints lag the chain (guest died mid-update)")
            }
            K::PendingDrops { count } => write!(
                f,
                "{count} records dropped (ring full) after the last gap record, by the header's unauthenticated hint"
            ),
            K::CheckpointBootMismatch => f.write_str("checkpoint is for another boot"),
            K::CheckpointTagInvalid => {
                f.write_str("checkpoint tag does not verify (forged, or wrong key)")
            }
            K::CheckpointUnverified => f.write_str("no key: checkpoint tag not checked"),
            K::RolledBack {
                checkpoint_block,
                found_sealed,
            } => write!(
                f,
                "checkpoint proves block {checkpoint_block} was sealed but the region has only {found_sealed} sealed blocks: rolled back or truncated"
            ),
            K::CheckpointMacMismatch => {
                f.write_str("checkpoint's block has a different MAC in the region")
            }
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Where.
    pub location: Location,
    /// What.
    pub kind: FindingKind,
}
