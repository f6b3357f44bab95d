//! The verifier: walks a region image in chain order, checks every block's
//! MAC under the ratchet key of its sequence number, the MAC chain, record
//! sequence continuity, gap accounting at the front of the ring, the
//! header's hints at the tail, and optionally an exported checkpoint. Each
//! problem is a [`Finding`] located by slot, block, record and image offset.
//! Records and findings are reported to a [`Visitor`] as they are found, so
//! nothing is allocated.

use core::fmt;

use crate::checkpoint::Checkpoint;
use crate::crypto::{self, Ratchet, Tag};
use crate::event::{DecodeError, Event, GapReason};
use crate::finding::{Finding, FindingKind, Location, Severity};
use crate::reader::{
    BlockState, BlockView, HeaderError, Record, RecordItem, RegionHeader, RegionView,
};
use crate::wire::MAC_BYTES;

/// What to verify with.
#[derive(Clone, Default)]
pub struct VerifyOptions {
    /// Master key; without it only structure is checked.
    pub key: Option<[u8; 32]>,
    /// An exported checkpoint the region must not be older than.
    pub checkpoint: Option<Checkpoint>,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("key", &self.key.map(|_| "<key>"))
            .field("checkpoint", &self.checkpoint)
            .finish()
    }
}

/// How much a record or block can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// In a sealed block whose MAC verified.
    Verified,
    /// In a sealed block whose MAC did not verify (or could not be checked
    /// because the block is malformed).
    Failed,
    /// In the open block: committed but not yet sealed.
    Unsealed,
    /// No (valid) key given.
    Unchecked,
}

impl Auth {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Auth::Verified => "verified",
            Auth::Failed => "FAILED",
            Auth::Unsealed => "unsealed",
            Auth::Unchecked => "unchecked",
        }
    }
}

/// Receives blocks, records and findings in chain order.
pub trait Visitor {
    /// A block of the chain, before its records.
    fn block(&mut self, _block: &BlockView<'_>, _auth: Auth) {}
    /// A committed record.
    fn record(
        &mut self,
        _record: &Record<'_>,
        _event: Result<Event<'_>, DecodeError>,
        _auth: Auth,
    ) {
    }
    /// A finding.
    fn finding(&mut self, _finding: &Finding) {}
}

/// A visitor that ignores everything (use the summary).
#[derive(Debug, Default)]
pub struct NoVisitor;
impl Visitor for NoVisitor {}

/// Totals of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The region header.
    pub header: RegionHeader,
    /// Whether a key was given and matched the region.
    pub key_matched: Option<bool>,
    /// Oldest block of the chain.
    pub oldest_block: Option<u64>,
    /// Newest block of the chain.
    pub newest_block: Option<u64>,
    /// Blocks in the chain.
    pub blocks: u64,
    /// Sealed blocks in the chain.
    pub sealed_blocks: u64,
    /// Sealed blocks whose MAC verified.
    pub verified_blocks: u64,
    /// Committed records read.
    pub records: u64,
    /// Of which in the open block.
    pub unsealed_records: u64,
    /// Torn records skipped.
    pub torn_records: u64,
    /// Gap records.
    pub gap_records: u64,
    /// Records lost: the larger of what the authenticated records say (gap
    /// records, sequence gaps) and the header's hint, which alone knows
    /// of drops after the last gap record while the ring stays full.
    pub lost_records: u64,
    /// Of [`Summary::lost_records`], how many only the header's hint claims.
    /// Hints are not authenticated: this part may be inflated (or, with a
    /// checkpoint absent, understated) by whoever can write the region.
    pub lost_records_hinted: u64,
    /// First record sequence number.
    pub first_record_seq: Option<u64>,
    /// Last record sequence number.
    pub last_record_seq: Option<u64>,
    /// Errors.
    pub errors: u64,
    /// Warnings.
    pub warnings: u64,
}

impl Summary {
    /// Whether verification passed: a matching key and no errors.
    pub fn passed(&self) -> bool {
        self.key_matched == Some(true) && self.errors == 0
    }
}

struct Walk<'v, V: Visitor> {
    visitor: &'v mut V,
    summary: Summary,
}

impl<V: Visitor> Walk<'_, V> {
    fn emit(&mut self, severity: Severity, location: Location, kind: FindingKind) {
        match severity {
            Severity::Error => self.summary.errors += 1,
            Severity::Warning => self.summary.warnings += 1,
        }
        self.visitor.finding(&Finding {
            severity,
            location,
            kind,
        });
    }
}

fn at_block(b: &BlockView<'_>, seq: u64) -> Location {
    Location {
        slot: Some(b.slot),
        block_seq: Some(seq),
        record_seq: None,
        offset: Some(b.offset),
    }
}

/// Evicted-through information from the newest gap record of the chain.
#[derive(Clone, Copy)]
struct Front {
    block_seq: u64,
    digest: Tag,
    next_seq: u64,
}

/// Verifies `image`. Returns the summary, or why the region header is
/// unreadable (nothing else can be done then).
pub fn verify(
    image: &[u8],
    opts: &VerifyOptions,
    visitor: &mut impl Visitor,
) -> Result<Summary, HeaderError> {
    use FindingKind as K;
    use Severity::{Error, Warning};

    let view = RegionView::new_checked(image)?;
    let h = *view.header();
    let n_slots = h.block_count;
    let boot_tag = crypto::boot_tag(&h.boot_id);
    let mut w = Walk {
        visitor,
        summary: Summary {
            header: h,
            key_matched: None,
            oldest_block: None,
            newest_block: None,
            blocks: 0,
            sealed_blocks: 0,
            verified_blocks: 0,
            records: 0,
            unsealed_records: 0,
            torn_records: 0,
            gap_records: 0,
            lost_records: 0,
            lost_records_hinted: 0,
            first_record_seq: None,
            last_record_seq: None,
            errors: 0,
            warnings: 0,
        },
    };

    let mut root = None;
    if let Some(key) = &opts.key {
        if crypto::key_id(key) != h.key_id {
            w.summary.key_matched = Some(false);
            w.emit(Error, Location::default(), K::WrongKey);
        } else {
            w.summary.key_matched = Some(true);
            let hk = crypto::header_key(key, &h.boot_id);
            let mac = crypto::mac_parts(&hk, &[view.static_header_bytes()]);
            if !crypto::tags_equal(&mac, &h.header_mac) {
                w.emit(
                    Error,
                    Location {
                        offset: Some(0),
                        ..Location::default()
                    },
                    K::HeaderMacMismatch,
                );
            }
            root = Some(crypto::ratchet_root(key, &h.boot_id));
        }
    }

    // Pass 1: structural check of every slot; find the newest block.
    let belongs = |b: &BlockView<'_>| {
        matches!(b.state(), BlockState::Open | BlockState::Sealed)
            && b.boot_tag() == boot_tag
            && b.seq() % n_slots == b.slot
    };
    let mut newest_sealed: Option<u64> = None;
    let mut newest_open: Option<u64> = None;
    for slot in 0..n_slots {
        let b = view.block(slot);
        let loc = Location {
            slot: Some(slot),
            block_seq: None,
            record_seq: None,
            offset: Some(b.offset),
        };
        match b.state() {
            BlockState::Empty => continue,
            BlockState::BadSealMarker => {
                w.emit(Error, loc, K::BadSealMarker);
                continue;
            }
            BlockState::Open | BlockState::Sealed => {}
        }
        let loc = Location {
            block_seq: Some(b.seq()),
            ..loc
        };
        if b.boot_tag() != boot_tag {
            w.emit(Error, loc, K::BlockFromOtherBoot);
        } else if b.seq() % n_slots != slot {
            w.emit(Error, loc, K::MisplacedBlock { found_seq: b.seq() });
        } else if b.state() == BlockState::Sealed {
            newest_sealed = newest_sealed.max(Some(b.seq()));
        } else {
            newest_open = newest_open.max(Some(b.seq()));
        }
    }
    let newest = match newest_sealed {
        Some(s) => {
            let next = s.checked_add(1).map(|n| view.block(n % n_slots));
            match next {
                Some(b) if belongs(&b) && b.state() == BlockState::Open && b.seq() == s + 1 => {
                    s + 1
                }
                _ => s,
            }
        }
        None => match newest_open {
            Some(o) => o,
            None => {
                tail_checks(&mut w, &h, None, &opts.checkpoint, None);
                return Ok(w.summary);
            }
        },
    };
    w.summary.newest_block = Some(newest);

    // Pass 2: the chain, oldest to newest.
    let start = newest.saturating_sub(n_slots - 1);
    let ring_full = newest.checked_add(1).is_some_and(|n| n >= n_slots);
    let mut ratchet: Option<Ratchet> = None;
    let mut prev: Option<(u64, BlockState, Tag)> = None;
    let mut expected_seq: Option<u64> = None;
    let mut oldest: Option<(u64, Tag, u64)> = None;
    let mut missing_oldest = false;
    // The newest block is open and holds no committed eviction gap record.
    let mut newest_open_empty = false;
    let mut newest_has_eviction_gap = false;
    // Records evicted by an eviction whose gap record was never committed.
    let mut unrecorded_lost = 0u64;
    // First missing sequence number named by a dropped-records gap at the
    // very start of the oldest block.
    let mut oldest_drop_first: Option<u64> = None;
    let mut front: Option<Front> = None;
    let mut gap_lost = 0u64;
    let mut last_sealed: Option<(u64, Tag)> = None;
    let mut checkpoint_block_mac: Option<Tag> = None;
    for e in start..=newest {
        let b = view.block(e % n_slots);
        let loc = at_block(&b, e);
        if !belongs(&b) || b.seq() != e {
            if b.state() == BlockState::Empty {
                if e == start
                    && ring_full
                    && oldest.is_none()
                    && h.hints.next_block_seq > newest.saturating_add(1)
                {
                    missing_oldest = true;
                    w.emit(Warning, loc, K::MissingOldestBlock);
                } else {
                    w.emit(Error, loc, K::MissingBlock);
                }
            } else if belongs(&b) {
                w.emit(Error, loc, K::StaleBlock { found_seq: b.seq() });
            } else {
                w.emit(Error, loc, K::MissingBlock);
            }
            prev = None;
            expected_seq = None;
            continue;
        }
        let state = b.state();
        w.summary.blocks += 1;
        match prev {
            None if oldest.is_none() => oldest = Some((e, b.prev_mac(), b.first_record_seq())),
            None => {}
            Some((pseq, pstate, pmac)) => {
                if pstate == BlockState::Open {
                    w.emit(
                        Error,
                        Location {
                            block_seq: Some(pseq),
                            ..Location::default()
                        },
                        K::OpenBlockNotNewest,
                    );
                } else if !crypto::tags_equal(&pmac, &b.prev_mac()) {
                    w.emit(Error, loc, K::ChainBroken);
                }
            }
        }
        if oldest.is_some_and(|(o, _, _)| o == 0) && e == 0 && b.prev_mac() != [0; MAC_BYTES] {
            w.emit(Error, loc, K::ChainBroken);
        }
        let auth = if state == BlockState::Open {
            Auth::Unsealed
        } else {
            w.summary.sealed_blocks += 1;
            last_sealed = Some((e, b.mac()));
            match (b.mac_input(), &root) {
                (None, _) => {
                    w.emit(Error, loc, K::BadSealedLength);
                    Auth::Failed
                }
                (Some(_), None) => Auth::Unchecked,
                (Some((head, rest)), Some(root)) => {
                    let r = match ratchet.as_mut() {
                        Some(r) if r.index() < e && e - r.index() <= 16 => {
                            while r.index() < e {
                                r.advance();
                            }
                            r
                        }
                        Some(r) if r.index() == e => r,
                        _ => ratchet.insert(Ratchet::at(root, e)),
                    };
                    let mac = crate::mac::block_mac(r.leaf(), &head, rest);
                    if crypto::tags_equal(&mac, &b.mac()) {
                        w.summary.verified_blocks += 1;
                        Auth::Verified
                    } else {
                        w.emit(Error, loc, K::MacMismatch);
                        Auth::Failed
                    }
                }
            }
        };
        if let Some(cp) = &opts.checkpoint
            && cp.block_seq == e
            && state == BlockState::Sealed
        {
            checkpoint_block_mac = Some(b.mac());
        }
        w.visitor.block(&b, auth);
        let mut count = 0u32;
        let mut unsealed = 0u64;
        if let Some(records) = b.records() {
            for item in records {
                let rec = match item {
                    RecordItem::Record(r) => r,
                    RecordItem::Torn { offset } => {
                        w.summary.torn_records += 1;
                        w.emit(
                            Warning,
                            Location {
                                offset: Some(offset),
                                ..loc
                            },
                            K::TornRecord,
                        );
                        break;
                    }
                    RecordItem::Error { offset, error } => {
                        w.emit(
                            Error,
                            Location {
                                offset: Some(offset),
                                ..loc
                            },
                            K::BadRecord(error),
                        );
                        break;
                    }
                };
                let rloc = Location {
                    record_seq: Some(rec.seq),
                    offset: Some(rec.offset),
                    ..loc
                };
                let event = rec.event();
                let mut explained = false;
                match &event {
                    Ok(Event::Gap(g)) => {
                        w.summary.gap_records += 1;
                        if g.reason.is_loss() {
                            gap_lost = gap_lost.max(g.lost_total);
                        }
                        if g.reason == GapReason::Dropped
                            && count == 0
                            && oldest.is_some_and(|(o, _, _)| o == e)
                        {
                            oldest_drop_first = Some(g.first_seq);
                        }
                        if g.reason == GapReason::Dropped {
                            explained = expected_seq == Some(g.first_seq)
                                && g.first_seq.checked_add(g.count) == Some(rec.seq);
                        } else if front.is_none_or(|f| g.block_seq >= f.block_seq) {
                            if e == newest {
                                newest_has_eviction_gap = true;
                            }
                            front = Some(Front {
                                block_seq: g.block_seq,
                                digest: g.digest,
                                next_seq: g.first_seq.saturating_add(g.count),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(err) => w.emit(Error, rloc, K::BadEvent(*err)),
                }
                if let Some(x) = expected_seq
                    && rec.seq != x
                    && !explained
                {
                    w.emit(Error, rloc, K::SeqDiscontinuity { expected: x });
                }
                expected_seq = rec.seq.checked_add(1);
                w.summary.first_record_seq.get_or_insert(rec.seq);
                w.summary.last_record_seq = Some(rec.seq);
                w.summary.records += 1;
                if auth == Auth::Unsealed {
                    unsealed += 1;
                }
                count = count.saturating_add(1);
                w.visitor.record(&rec, event, auth);
            }
        }
        if state == BlockState::Sealed && b.sealed_data().is_some() && count != b.record_count() {
            w.emit(
                Error,
                loc,
                K::RecordCountMismatch {
                    header: b.record_count(),
                    found: count,
                },
            );
        }
        if unsealed > 0 {
            w.summary.unsealed_records += unsealed;
            w.emit(Warning, loc, K::UnsealedRecords { count: unsealed });
        }
        if e == newest && state == BlockState::Open && !newest_has_eviction_gap {
            newest_open_empty = true;
        }
        prev = Some((e, state, b.mac()));
    }
    w.summary.oldest_block = oldest.map(|(o, _, _)| o);

    // The front: blocks before the oldest must be accounted by a gap record.
    if let Some((o, prev_mac, first_seq)) = oldest
        && o > 0
    {
        let loc = Location {
            block_seq: Some(o),
            ..Location::default()
        };
        match front {
            Some(f) if f.block_seq.checked_add(1) == Some(o) => {
                if !crypto::tags_equal(&f.digest, &prev_mac) {
                    w.emit(Error, loc, K::FrontDigestMismatch);
                } else if f.next_seq != first_seq && Some(f.next_seq) != oldest_drop_first {
                    w.emit(
                        Error,
                        loc,
                        K::FrontUnaccounted {
                            accounted_through: Some(f.block_seq),
                        },
                    );
                }
            }
            Some(f) if missing_oldest && f.block_seq.checked_add(2) == Some(o) => {}
            // The guest died after opening the newest block (evicting the
            // block before the oldest) but before its gap record committed.
            f if newest_open_empty
                && f.map_or(Some(1), |f| f.block_seq.checked_add(2)) == Some(o)
                && newest.checked_sub(o) == Some(n_slots - 1) =>
            {
                w.emit(Warning, loc, K::EvictionUnrecorded);
                if o > h.hints.released_blocks {
                    unrecorded_lost = first_seq.saturating_sub(f.map_or(0, |f| f.next_seq));
                }
            }
            f => w.emit(
                Error,
                loc,
                K::FrontUnaccounted {
                    accounted_through: f.map(|f| f.block_seq),
                },
            ),
        }
    }
    w.summary.lost_records = gap_lost.saturating_add(unrecorded_lost);
    tail_checks(
        &mut w,
        &h,
        last_sealed,
        &opts.checkpoint,
        checkpoint_block_mac,
    );
    if let (Some(cp), Some(key)) = (&opts.checkpoint, &opts.key)
        && cp.boot_id == h.boot_id
        && !cp.verify_tag(key)
    {
        w.emit(Error, Location::default(), K::CheckpointTagInvalid);
    }
    Ok(w.summary)
}

fn tail_checks<V: Visitor>(
    w: &mut Walk<'_, V>,
    h: &RegionHeader,
    last_sealed: Option<(u64, Tag)>,
    checkpoint: &Option<Checkpoint>,
    checkpoint_block_mac: Option<Tag>,
) {
    use FindingKind as K;
    use Severity::{Error, Warning};
    let found_sealed = last_sealed.map_or(0, |(s, _)| s.saturating_add(1));
    let hint = h.hints.sealed_blocks;
    if hint > found_sealed {
        w.emit(
            Error,
            Location::default(),
            K::TailTruncated {
                header_sealed: hint,
                found_sealed,
            },
        );
    } else if hint < found_sealed {
        w.emit(Warning, Location::default(), K::HintsBehind);
    } else if let Some((s, mac)) = last_sealed
        && !crypto::tags_equal(&mac, &h.hints.last_seal_mac)
    {
        w.emit(
            Error,
            Location {
                block_seq: Some(s),
                ..Location::default()
            },
            K::LastSealMismatch,
        );
    }
    if h.hints.lost_records > w.summary.lost_records {
        let count = h.hints.lost_records - w.summary.lost_records;
        w.emit(Warning, Location::default(), K::PendingDrops { count });
        w.summary.lost_records = h.hints.lost_records;
        w.summary.lost_records_hinted = count;
    }
    if let Some(cp) = checkpoint {
        let loc = Location {
            block_seq: Some(cp.block_seq),
            ..Location::default()
        };
        if cp.boot_id != h.boot_id {
            w.emit(Error, loc, K::CheckpointBootMismatch);
            return;
        }
        if w.summary.key_matched != Some(true) {
            w.emit(Warning, loc, K::CheckpointUnverified);
        }
        if found_sealed <= cp.block_seq {
            w.emit(
                Error,
                loc,
                K::RolledBack {
                    checkpoint_block: cp.block_seq,
                    found_sealed,
                },
            );
        } else if let Some(mac) = checkpoint_block_mac
            && !crypto::tags_equal(&mac, &cp.block_mac)
        {
            w.emit(Error, loc, K::CheckpointMacMismatch);
        }
    }
}
