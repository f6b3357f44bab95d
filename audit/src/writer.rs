//! The writer: [`AuditLog`] formats a raw region and appends records to it.
//!
//! Append is allocation-free: it checks room in the open block, encodes the
//! payload in place, writes the header and publishes the record by writing
//! its magic last, after a release fence (the commit protocol). When a
//! record does not fit, the open block is sealed (MAC chained to the
//! previous block under the current ratchet key, which is then forgotten)
//! and the next slot is opened, evicting the oldest block or dropping the
//! record according to the [`OverflowPolicy`].

use core::fmt;
use core::sync::atomic::{Ordering, fence};

use crate::checkpoint::Checkpoint;
use crate::crypto::{self, Ratchet, Tag};
use crate::event::{
    CheckpointEvent, Event, GAP_LEN, GapEvent, GapReason, Kind, SYSCALL_WRITE_ROOM, SyscallEvent,
};
use crate::mac::{self, HEAD_BYTES};
use crate::wire::{
    BLOCK_HEADER_BYTES, BLOCK_MAGIC, FORMAT_VERSION, MAC_BYTES, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES,
    RECORD_ALIGN, RECORD_FIXED_BYTES, RECORD_HEADER_MAX_BYTES, RECORD_MAGIC, REGION_HEADER_BYTES,
    REGION_MAGIC, SEAL_MARKER, align_record, byte_len, field, get_mac, get_u32, get_u64, maced_len,
    put, put_word, record_bytes_max, zigzag,
};

/// What happens when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OverflowPolicy {
    /// Evict the oldest block; a gap record names what was evicted, with
    /// its count and the evicted block's MAC as digest.
    OverwriteOldest = 0,
    /// Keep old records; drop new ones until blocks are released, then
    /// write a gap record naming the dropped sequence numbers.
    DropNewest = 1,
}

impl OverflowPolicy {
    /// The policy stored as `byte`.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(OverflowPolicy::OverwriteOldest),
            1 => Some(OverflowPolicy::DropNewest),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OverflowPolicy::OverwriteOldest => "overwrite-oldest",
            OverflowPolicy::DropNewest => "drop-newest",
        }
    }
}

/// How to format a region.
#[derive(Clone)]
pub struct Config {
    /// Master key (see `docs/AUDIT.md`, "Where the key lives"). Only
    /// derived keys are kept after formatting.
    pub key: [u8; 32],
    /// Random per-boot identifier; binds every block to this boot.
    pub boot_id: [u8; 16],
    /// Overflow policy.
    pub policy: OverflowPolicy,
    /// Bytes per sealed block: a power of two in 1 KiB ..= 1 MiB.
    pub block_bytes: usize,
}

impl Config {
    /// Overwrite-oldest with 4 KiB blocks.
    pub fn new(key: [u8; 32], boot_id: [u8; 16]) -> Self {
        Config {
            key,
            boot_id,
            policy: OverflowPolicy::OverwriteOldest,
            block_bytes: 4096,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("boot_id", &self.boot_id)
            .field("policy", &self.policy)
            .field("block_bytes", &self.block_bytes)
            .finish_non_exhaustive()
    }
}

/// Why a region could not be formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// Block size not a power of two in range.
    BadBlockSize(usize),
    /// Region smaller than the header plus two blocks.
    RegionTooSmall {
        /// Bytes given.
        region_bytes: usize,
        /// Bytes needed.
        min_bytes: usize,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::BadBlockSize(b) => {
                write!(f, "block size {b} is not a power of two in 1 KiB..=1 MiB")
            }
            FormatError::RegionTooSmall {
                region_bytes,
                min_bytes,
            } => {
                write!(
                    f,
                    "region of {region_bytes} bytes is smaller than the {min_bytes} bytes needed"
                )
            }
        }
    }
}

/// Why an append did not land in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// Drop-newest and the ring is full: the record was dropped, counted in
    /// `lost`, and will be named by a gap record. Its sequence number is
    /// used up.
    Dropped {
        /// Sequence number the record would have had.
        seq: u64,
    },
    /// Gap and checkpoint records are written by the log itself.
    ReservedKind(Kind),
    /// Sequence numbers or block numbers ran out (after 2^64).
    Exhausted,
    /// A binary payload (an attestation record) larger than a block can
    /// carry ([`AuditLog::max_payload_bytes`]).
    TooLarge,
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Dropped { seq } => write!(f, "ring full: record {seq} dropped"),
            AppendError::ReservedKind(k) => {
                write!(f, "{} records are written by the log itself", k.name())
            }
            AppendError::Exhausted => f.write_str("sequence numbers exhausted"),
            AppendError::TooLarge => f.write_str("payload larger than a block can carry"),
        }
    }
}

/// Most bytes of a gap record, header and padding included.
const GAP_RECORD_BYTES: usize = (RECORD_HEADER_MAX_BYTES + GAP_LEN).next_multiple_of(RECORD_ALIGN);
/// Room the syscall fast path needs: the longest header and payload, and
/// the word its last 8-byte store may run past them.
const SYSCALL_ROOM: usize = RECORD_HEADER_MAX_BYTES + SYSCALL_WRITE_ROOM;
/// Room reserved for a formatted (`append_fmt`) record's payload.
const FMT_RESERVE: usize = 1024;

struct OpenBlock {
    seq: u64,
    /// Offset of the block in the region.
    start: usize,
    /// Offset of the next record within the block.
    cursor: usize,
    count: u32,
    /// Timestamp of the block's last record (0 before the first): the
    /// next record stores its time as the difference to it.
    last_ts: u64,
}

impl OpenBlock {
    /// Publishes the record at the cursor (`rec` bytes with its padding,
    /// every byte in place but for its commit mark `mark`): writes the mark
    /// after everything else, then moves the cursor past the record. The
    /// padding is already zero: blocks are zeroed on open, and past its
    /// record a writer only ever stores zeros.
    #[inline(always)]
    fn publish(&mut self, mark: &mut [u8; 2], rec: usize, timestamp_ns: u64) {
        fence(Ordering::Release);
        *mark = RECORD_MAGIC.to_le_bytes();
        self.cursor += rec;
        self.count += 1;
        self.last_ts = timestamp_ns;
    }
}

/// The audit log writer over a region of memory.
pub struct AuditLog<'r> {
    region: &'r mut [u8],
    block_bytes: usize,
    block_count: u64,
    policy: OverflowPolicy,
    boot_id: [u8; 16],
    boot_tag: [u8; 8],
    ratchet: Ratchet,
    prev_mac: Tag,
    open: Option<OpenBlock>,
    next_block_seq: u64,
    next_record_seq: u64,
    lost_records: u64,
    evicted_blocks: u64,
    sealed_blocks: u64,
    released_blocks: u64,
    /// Drop-newest: (first seq, count) dropped since the last gap record.
    pending_drop: Option<(u64, u64)>,
}

impl fmt::Debug for AuditLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("region_bytes", &self.region.len())
            .field("block_bytes", &self.block_bytes)
            .field("block_count", &self.block_count)
            .field("policy", &self.policy)
            .field("next_record_seq", &self.next_record_seq)
            .field("lost_records", &self.lost_records)
            .finish_non_exhaustive()
    }
}

impl<'r> AuditLog<'r> {
    /// Formats `region` as an empty log and returns its writer. Writes the
    /// region header and clears every block slot's magic (one store per
    /// slot), so nothing from an earlier boot is read as part of this one.
    pub fn format(region: &'r mut [u8], config: &Config) -> Result<Self, FormatError> {
        let bb = config.block_bytes;
        if !bb.is_power_of_two() || !(MIN_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&bb) {
            return Err(FormatError::BadBlockSize(bb));
        }
        let min_bytes = REGION_HEADER_BYTES + 2 * bb;
        if region.len() < min_bytes {
            return Err(FormatError::RegionTooSmall {
                region_bytes: region.len(),
                min_bytes,
            });
        }
        let block_count = ((region.len() - REGION_HEADER_BYTES) / bb) as u64;
        let region_bytes = region.len() as u64;
        let h = &mut region[..REGION_HEADER_BYTES];
        h.fill(0);
        put(h, field::region::MAGIC, &REGION_MAGIC);
        put(h, field::region::VERSION, &FORMAT_VERSION.to_le_bytes());
        put(
            h,
            field::region::HEADER_BYTES,
            &(REGION_HEADER_BYTES as u16).to_le_bytes(),
        );
        put(h, field::region::BLOCK_BYTES, &(bb as u32).to_le_bytes());
        put(h, field::region::REGION_BYTES, &region_bytes.to_le_bytes());
        put(
            h,
            field::region::RING_OFFSET,
            &(REGION_HEADER_BYTES as u64).to_le_bytes(),
        );
        put(h, field::region::BLOCK_COUNT, &block_count.to_le_bytes());
        put(h, field::region::BOOT_ID, &config.boot_id);
        put(h, field::region::POLICY, &[config.policy as u8]);
        put(h, field::region::KEY_ID, &crypto::key_id(&config.key));
        let hk = crypto::header_key(&config.key, &config.boot_id);
        let mac = crypto::mac_parts(&hk, &[&h[field::region::STATIC_PART]]);
        put(h, field::region::HEADER_MAC, &mac);
        for slot in 0..block_count as usize {
            let start = REGION_HEADER_BYTES + slot * bb;
            region[start..start + 8].fill(0);
        }
        let root = crypto::ratchet_root(&config.key, &config.boot_id);
        let mut log = AuditLog {
            region,
            block_bytes: bb,
            block_count,
            policy: config.policy,
            boot_id: config.boot_id,
            boot_tag: crypto::boot_tag(&config.boot_id),
            ratchet: Ratchet::at(&root, 0),
            prev_mac: [0; MAC_BYTES],
            open: None,
            next_block_seq: 0,
            next_record_seq: 0,
            lost_records: 0,
            evicted_blocks: 0,
            sealed_blocks: 0,
            released_blocks: 0,
            pending_drop: None,
        };
        log.write_hints();
        Ok(log)
    }

    /// Largest payload one record can carry (text beyond it is truncated):
    /// what a fresh block holds after the two gap records it may start
    /// with (records dropped, and a block evicted) and a record header.
    pub fn max_payload_bytes(&self) -> usize {
        (self.block_bytes
            - BLOCK_HEADER_BYTES
            - 2 * GAP_RECORD_BYTES
            - RECORD_HEADER_MAX_BYTES
            - (RECORD_ALIGN - 1))
            .min(u16::MAX as usize)
    }

    /// Sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_record_seq
    }

    /// Records lost so far (overwritten before export, or dropped).
    pub fn lost_records(&self) -> u64 {
        self.lost_records
    }

    /// Blocks sealed so far.
    pub fn sealed_blocks(&self) -> u64 {
        self.sealed_blocks
    }

    /// Number of block slots in the ring.
    pub fn block_count(&self) -> u64 {
        self.block_count
    }

    /// The overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.policy
    }

    /// The region's bytes, e.g. for an exporter copying sealed blocks out.
    pub fn region(&self) -> &[u8] {
        self.region
    }

    /// Appends `event`; security-critical events (panic, CPU exception)
    /// seal the block at once. Returns the record's sequence number.
    pub fn append(
        &mut self,
        event: &Event<'_>,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<u64, AppendError> {
        let seq = match event {
            Event::Gap(_) | Event::Checkpoint(_) => {
                return Err(AppendError::ReservedKind(event.kind()));
            }
            Event::Syscall(s) => return self.append_syscall_outlined(s, timestamp_ns, cpu),
            _ => self.append_event(event, timestamp_ns, cpu, true)?,
        };
        if event.is_security_critical() {
            self.seal();
        }
        Ok(seq)
    }

    /// Appends a `Text` or `Panic` record whose payload is formatted in
    /// place from `args` (no allocation). At least 1 KiB of room is made;
    /// text longer than the room left in the block is cut. A panic seals
    /// the block.
    pub fn append_fmt(
        &mut self,
        kind: TextKind,
        args: fmt::Arguments<'_>,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<u64, AppendError> {
        let want = RECORD_HEADER_MAX_BYTES + FMT_RESERVE.min(self.max_payload_bytes());
        self.reserve(want, timestamp_ns, cpu)?;
        let k = match kind {
            TextKind::Text => Kind::Text,
            TextKind::Panic => Kind::Panic,
        };
        let (at, head) = self.place_head(k, 0, timestamp_ns, cpu)?;
        let payload_start = at + head;
        let Some(open) = self.open.as_ref() else {
            return Err(AppendError::Exhausted);
        };
        let payload_end = (open.start + self.block_bytes)
            .min(payload_start + self.max_payload_bytes())
            .min(payload_start + u16::MAX as usize);
        let mut w = FmtWriter {
            out: &mut self.region[payload_start..payload_end],
            len: 0,
        };
        // A Display impl that fails only cuts the text short.
        let _ = fmt::write(&mut w, args);
        let len = w.len;
        let field = at + field::record::PAYLOAD_LEN.start..at + field::record::PAYLOAD_LEN.end;
        put(self.region, field, &(len as u16).to_le_bytes());
        let seq = self.commit(head + len, timestamp_ns)?;
        if kind == TextKind::Panic {
            self.seal();
        }
        Ok(seq)
    }

    /// Fault injection for crash tests: writes `event` in full except its
    /// commit mark — exactly what an append interrupted by the guest's death
    /// leaves — and returns the sequence number it would have had. The
    /// reader reports it as a torn record and keeps everything before it.
    /// Call it only right before the guest dies: the log must not be used
    /// afterwards.
    #[cfg(feature = "fault-injection")]
    pub fn append_torn(
        &mut self,
        event: &Event<'_>,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<u64, AppendError> {
        self.append_event(event, timestamp_ns, cpu, false)
    }

    /// Appends a syscall record: what `append(&Event::Syscall(s), ..)`
    /// does, on the hot path, in one pass: the header (its commit mark
    /// still zero), the payload straight after it (each value with one
    /// 8-byte store: the block is zero past the cursor), the payload's
    /// length, then the commit mark. Where a block has less than the
    /// longest record's room left, the general path seals it or fits the
    /// record. Inlined into its callers: one call and frame less on every
    /// system call of an audited program.
    #[inline(always)]
    pub fn append_syscall(
        &mut self,
        s: &SyscallEvent,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<u64, AppendError> {
        let bb = self.block_bytes;
        let seq = self.next_record_seq;
        let Some(open) = self.open.as_mut().filter(|o| o.cursor + SYSCALL_ROOM <= bb) else {
            return self.append_event(&Event::Syscall(*s), timestamp_ns, cpu, true);
        };
        let next = seq.checked_add(1).ok_or(AppendError::Exhausted)?;
        let at = open.start + open.cursor;
        let out: &mut [u8; SYSCALL_ROOM] = self
            .region
            .get_mut(at..at + SYSCALL_ROOM)
            .and_then(|r| r.try_into().ok())
            .ok_or(AppendError::Exhausted)?;
        let delta = zigzag(timestamp_ns.wrapping_sub(open.last_ts) as i64);
        // The payload's length is set once it is written.
        let head = write_head(out, Kind::Syscall, 0, cpu, delta).min(RECORD_HEADER_MAX_BYTES);
        let Some(payload) = out
            .get_mut(head..)
            .and_then(|p| p.first_chunk_mut::<SYSCALL_WRITE_ROOM>())
        else {
            return Err(AppendError::Exhausted);
        };
        let len = s.write(payload);
        out[field::record::PAYLOAD_LEN].copy_from_slice(&(len as u16).to_le_bytes());
        let rec = (head + len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1);
        let Some(mark) = out.first_chunk_mut::<2>() else {
            return Err(AppendError::Exhausted);
        };
        open.publish(mark, rec, timestamp_ns);
        self.next_record_seq = next;
        Ok(seq)
    }

    /// [`Self::append_syscall`] as a call: inlined into [`Self::append`]
    /// it made every other kind's append pay for its larger frame.
    #[inline(never)]
    fn append_syscall_outlined(
        &mut self,
        s: &SyscallEvent,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<u64, AppendError> {
        self.append_syscall(s, timestamp_ns, cpu)
    }

    /// Encodes `event` at the open block's cursor (making room first);
    /// with `publish`, commits it.
    fn append_event(
        &mut self,
        event: &Event<'_>,
        timestamp_ns: u64,
        cpu: u16,
        publish: bool,
    ) -> Result<u64, AppendError> {
        let len = event.payload_len(self.max_payload_bytes());
        if len > self.max_payload_bytes() {
            return Err(AppendError::TooLarge);
        }
        let rec = record_bytes_max(len).ok_or(AppendError::Exhausted)?;
        self.reserve(rec, timestamp_ns, cpu)?;
        let (at, head) = self.place_head(event.kind(), len, timestamp_ns, cpu)?;
        let payload = self
            .region
            .get_mut(at + head..at + head + len)
            .ok_or(AppendError::Exhausted)?;
        event.encode(payload);
        if !publish {
            return Ok(self.next_record_seq);
        }
        self.commit(head + len, timestamp_ns)
    }

    /// Makes sure the open block has `rec_bytes` of room, sealing and
    /// opening blocks as needed; on a full drop-newest ring, counts the
    /// record as dropped.
    fn reserve(
        &mut self,
        rec_bytes: usize,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<(), AppendError> {
        if let Some(open) = &self.open {
            if open.cursor + rec_bytes <= self.block_bytes {
                return Ok(());
            }
            self.seal();
        }
        if self.open_block(timestamp_ns, cpu) {
            return Ok(());
        }
        let seq = self.next_record_seq;
        self.next_record_seq = seq.checked_add(1).ok_or(AppendError::Exhausted)?;
        self.lost_records += 1;
        self.pending_drop = Some(match self.pending_drop {
            Some((first, count)) => (first, count + 1),
            None => (seq, 1),
        });
        self.write_hints();
        Err(AppendError::Dropped { seq })
    }

    /// Writes the header (but for its commit mark) of a record at the open
    /// block's cursor; where the record starts in the region and the
    /// header's length.
    fn place_head(
        &mut self,
        kind: Kind,
        len: usize,
        timestamp_ns: u64,
        cpu: u16,
    ) -> Result<(usize, usize), AppendError> {
        let open = self.open.as_ref().ok_or(AppendError::Exhausted)?;
        let at = open.start + open.cursor;
        let delta = zigzag(timestamp_ns.wrapping_sub(open.last_ts) as i64);
        let out = self
            .region
            .get_mut(at..open.start + self.block_bytes)
            .ok_or(AppendError::Exhausted)?;
        Ok((at, write_head(out, kind, len, cpu, delta)))
    }

    /// Publishes the record of `bytes` (header and payload, in place at
    /// the open block's cursor but for its commit mark): writes the mark,
    /// then advances the cursor and the sequence number.
    fn commit(&mut self, bytes: usize, timestamp_ns: u64) -> Result<u64, AppendError> {
        let seq = self.next_record_seq;
        let next = seq.checked_add(1).ok_or(AppendError::Exhausted)?;
        let rec = align_record(bytes).ok_or(AppendError::Exhausted)?;
        let open = self.open.as_mut().ok_or(AppendError::Exhausted)?;
        let at = open.start + open.cursor;
        let mark = self
            .region
            .get_mut(at..)
            .and_then(|r| r.first_chunk_mut::<2>())
            .ok_or(AppendError::Exhausted)?;
        open.publish(mark, rec, timestamp_ns);
        self.next_record_seq = next;
        Ok(seq)
    }

    fn slot_start(&self, block_seq: u64) -> usize {
        REGION_HEADER_BYTES + (block_seq % self.block_count) as usize * self.block_bytes
    }

    /// Opens the next block; false if drop-newest and the ring is full.
    fn open_block(&mut self, timestamp_ns: u64, cpu: u16) -> bool {
        let n = self.next_block_seq;
        let start = self.slot_start(n);
        let mut gap = None;
        if let Some(evicted) = n.checked_sub(self.block_count) {
            let exported = evicted < self.released_blocks;
            if !exported && self.policy == OverflowPolicy::DropNewest {
                return false;
            }
            let old = &self.region[start..start + BLOCK_HEADER_BYTES];
            let valid = get_u32(old, field::block::MAGIC) == Some(BLOCK_MAGIC)
                && get_u64(old, field::block::SEQ) == Some(evicted)
                && get_u32(old, field::block::SEAL) == Some(SEAL_MARKER);
            let (first_seq, count, digest) = if valid {
                (
                    get_u64(old, field::block::FIRST_RECORD_SEQ).unwrap_or(0),
                    u64::from(get_u32(old, field::block::RECORD_COUNT).unwrap_or(0)),
                    get_mac(old, field::block::MAC).unwrap_or([0; MAC_BYTES]),
                )
            } else {
                // Someone altered the evicted block under us; the verifier
                // reports the inconsistency this leaves.
                (0, 0, [0; MAC_BYTES])
            };
            let reason = if exported {
                GapReason::Exported
            } else {
                GapReason::Overwritten
            };
            if !exported {
                self.lost_records += count;
            }
            self.evicted_blocks += 1;
            gap = Some(GapEvent {
                reason,
                first_seq,
                count,
                lost_total: self.lost_records,
                block_seq: evicted,
                digest,
            });
        }
        // Announce the open before evicting, so a reader can tell a slot
        // emptied by a crash mid-open from a deleted block.
        put(
            &mut self.region[..REGION_HEADER_BYTES],
            field::region::NEXT_BLOCK_SEQ,
            &(n + 1).to_le_bytes(),
        );
        fence(Ordering::Release);
        let b = &mut self.region[start..start + self.block_bytes];
        b.fill(0);
        put(b, field::block::SEQ, &n.to_le_bytes());
        put(
            b,
            field::block::FIRST_RECORD_SEQ,
            &self.next_record_seq.to_le_bytes(),
        );
        put(b, field::block::BOOT_TAG, &self.boot_tag);
        put(b, field::block::PREV_MAC, &self.prev_mac);
        fence(Ordering::Release);
        put(b, field::block::MAGIC, &BLOCK_MAGIC.to_le_bytes());
        self.open = Some(OpenBlock {
            seq: n,
            start,
            cursor: BLOCK_HEADER_BYTES,
            count: 0,
            last_ts: 0,
        });
        self.next_block_seq = n + 1;
        // The dropped-records gap comes first: it explains the jump in
        // sequence numbers from the previous block. A fresh block always has
        // room for both gap records.
        if let Some((first_seq, count)) = self.pending_drop.take() {
            let g = GapEvent {
                reason: GapReason::Dropped,
                first_seq,
                count,
                lost_total: self.lost_records,
                block_seq: 0,
                digest: [0; MAC_BYTES],
            };
            let _ = self.append_event(&Event::Gap(g), timestamp_ns, cpu, true);
        }
        if let Some(g) = gap {
            let _ = self.append_event(&Event::Gap(g), timestamp_ns, cpu, true);
        }
        self.write_hints();
        true
    }

    /// Seals the open block now: MAC chained to the previous block under
    /// this block's ratchet key, which is then forgotten. Returns the sealed
    /// block's sequence number, or `None` if no block was open.
    pub fn seal(&mut self) -> Option<u64> {
        self.seal_inner(false).map(|(seq, _, _)| seq)
    }

    fn seal_inner(&mut self, checkpoint_key: bool) -> Option<(u64, Tag, Option<Tag>)> {
        let open = self.open.take()?;
        let used = open.cursor - BLOCK_HEADER_BYTES;
        let b = &mut self.region[open.start..open.start + self.block_bytes];
        put(b, field::block::USED, &(used as u32).to_le_bytes());
        put(b, field::block::RECORD_COUNT, &open.count.to_le_bytes());
        // MAC and seal fields are still zero (zeroed on open), as the format
        // requires.
        let maced = maced_len(used, self.block_bytes).unwrap_or(self.block_bytes);
        let mut head = [0; HEAD_BYTES];
        head.copy_from_slice(&b[..HEAD_BYTES]);
        let mac = mac::block_mac(self.ratchet.leaf(), &head, &b[HEAD_BYTES..maced]);
        put(b, field::block::MAC, &mac);
        fence(Ordering::Release);
        put(b, field::block::SEAL, &SEAL_MARKER.to_le_bytes());
        let ckpt_key = checkpoint_key.then(|| crypto::checkpoint_key(self.ratchet.leaf()));
        self.ratchet.advance();
        self.prev_mac = mac;
        self.sealed_blocks = open.seq + 1;
        self.write_hints();
        Some((open.seq, mac, ckpt_key))
    }

    /// Appends a checkpoint record, seals its block and returns the
    /// checkpoint to export over a channel the host cannot roll back (it
    /// proves how far the log had got; see `docs/AUDIT.md`).
    pub fn checkpoint(&mut self, timestamp_ns: u64, cpu: u16) -> Result<Checkpoint, AppendError> {
        let rec = record_bytes_max(crate::event::CHECKPOINT_LEN).ok_or(AppendError::Exhausted)?;
        self.reserve(rec, timestamp_ns, cpu)?;
        let ev = Event::Checkpoint(CheckpointEvent {
            next_record_seq: self.next_record_seq + 1,
            lost_total: self.lost_records,
            evicted_blocks: self.evicted_blocks,
            sealed_blocks: self.sealed_blocks,
        });
        self.append_event(&ev, timestamp_ns, cpu, true)?;
        let next_record_seq = self.next_record_seq;
        let lost = self.lost_records;
        let (block_seq, mac, key) = self.seal_inner(true).ok_or(AppendError::Exhausted)?;
        let key = key.ok_or(AppendError::Exhausted)?;
        Ok(Checkpoint::new_signed(
            &key,
            self.boot_id,
            block_seq,
            next_record_seq,
            lost,
            mac,
        ))
    }

    /// Marks blocks up to and including `block_seq` as exported: their
    /// slots may be reused without loss (a gap record of reason `exported`
    /// names them). Only sealed blocks can be released.
    pub fn release_through(&mut self, block_seq: u64) {
        let upto = block_seq.saturating_add(1).min(self.sealed_blocks);
        if upto > self.released_blocks {
            self.released_blocks = upto;
            self.write_hints();
        }
    }

    fn write_hints(&mut self) {
        let h = &mut self.region[..REGION_HEADER_BYTES];
        put(
            h,
            field::region::NEXT_BLOCK_SEQ,
            &self.next_block_seq.to_le_bytes(),
        );
        put(
            h,
            field::region::NEXT_RECORD_SEQ,
            &self.next_record_seq.to_le_bytes(),
        );
        put(
            h,
            field::region::LOST_RECORDS,
            &self.lost_records.to_le_bytes(),
        );
        put(
            h,
            field::region::EVICTED_BLOCKS,
            &self.evicted_blocks.to_le_bytes(),
        );
        put(
            h,
            field::region::SEALED_BLOCKS,
            &self.sealed_blocks.to_le_bytes(),
        );
        put(h, field::region::LAST_SEAL_MAC, &self.prev_mac);
        put(
            h,
            field::region::RELEASED_BLOCKS,
            &self.released_blocks.to_le_bytes(),
        );
    }
}

/// Writes a record header but for its commit mark at `out[0..]`, which
/// has room for the longest; returns its length. Inlined: the syscall
/// path calls it for every record.
#[inline(always)]
fn write_head(out: &mut [u8], kind: Kind, len: usize, cpu: u16, delta: u64) -> usize {
    let time_bytes = byte_len(delta);
    let cpu_bytes = usize::from(cpu != 0) + usize::from(cpu > 0xff);
    if let Some(fixed) = out.get_mut(..RECORD_FIXED_BYTES) {
        fixed[field::record::KIND.start] = kind as u8;
        fixed[field::record::PAYLOAD_LEN].copy_from_slice(&(len as u16).to_le_bytes());
        fixed[field::record::SIZES.start] = (time_bytes | cpu_bytes << 4) as u8;
    }
    // Whole words: the bytes past each value are zero or overwritten next.
    put_word(out, RECORD_FIXED_BYTES, delta);
    let at = RECORD_FIXED_BYTES + time_bytes;
    if let Some(c) = out.get_mut(at..at + 2) {
        c.copy_from_slice(&cpu.to_le_bytes());
    }
    at + cpu_bytes
}

/// Kind of a formatted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Free-form text.
    Text,
    /// Panic message (seals the block).
    Panic,
}

/// `fmt::Write` into a fixed slice, cutting at a char boundary.
struct FmtWriter<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl fmt::Write for FmtWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.out.len() - self.len;
        let mut n = s.len().min(room);
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        self.out[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{BlockState, RegionView};

    fn cfg(block_bytes: usize) -> Config {
        let mut c = Config::new([1; 32], [2; 16]);
        c.block_bytes = block_bytes;
        c
    }

    #[test]
    fn format_checks_geometry() {
        let mut small = vec![0u8; 4096 + 4096];
        assert_eq!(
            AuditLog::format(&mut small, &cfg(4096)).unwrap_err(),
            FormatError::RegionTooSmall {
                region_bytes: 8192,
                min_bytes: 12288
            }
        );
        let mut r = vec![0u8; 64 << 10];
        assert_eq!(
            AuditLog::format(&mut r, &cfg(3000)).unwrap_err(),
            FormatError::BadBlockSize(3000)
        );
        assert_eq!(
            AuditLog::format(&mut r, &cfg(512)).unwrap_err(),
            FormatError::BadBlockSize(512)
        );
        let log = AuditLog::format(&mut r, &cfg(4096)).unwrap();
        assert_eq!(log.block_count(), 15);
        assert_eq!(log.max_payload_bytes(), 4096 - 104 - 2 * 88 - 16 - 1);
    }

    #[test]
    fn format_forgets_an_earlier_boot() {
        let mut r = vec![0u8; 64 << 10];
        let mut log = AuditLog::format(&mut r, &cfg(4096)).unwrap();
        for i in 0..100 {
            log.append(
                &Event::Text {
                    text: "earlier boot",
                },
                i,
                0,
            )
            .unwrap();
        }
        drop(log);
        let mut c = cfg(4096);
        c.boot_id = [3; 16];
        AuditLog::format(&mut r, &c).unwrap();
        let view = RegionView::new_checked(&r).unwrap();
        assert!((0..15).all(|s| view.block(s).state() == BlockState::Empty));
    }

    #[test]
    fn sequence_numbers_and_seals() {
        let mut r = vec![0u8; 64 << 10];
        let mut log = AuditLog::format(&mut r, &cfg(4096)).unwrap();
        assert_eq!(log.seal(), None);
        assert_eq!(log.append(&Event::Text { text: "a" }, 0, 0), Ok(0));
        assert_eq!(log.append(&Event::Text { text: "b" }, 0, 0), Ok(1));
        assert_eq!(log.seal(), Some(0));
        assert_eq!(log.seal(), None);
        assert_eq!(log.append(&Event::Panic { message: "p" }, 0, 0), Ok(2));
        assert_eq!(log.sealed_blocks(), 2);
        log.release_through(99);
        assert_eq!(log.released_blocks, 2);
    }
}
