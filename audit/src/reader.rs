//! Read-only views of a region image: [`RegionView`] validates the region
//! header and geometry once (`new_checked`), [`BlockView`] reads one block
//! slot, and [`Records`] walks a block's records. Every size and offset read
//! from the image is checked; a hostile image yields errors, never a panic.

use core::fmt;

use crate::event::{DecodeError, Event};
use crate::mac::HEAD_BYTES;
use crate::wire::{
    BLOCK_HEADER_BYTES, BLOCK_MAGIC, FORMAT_VERSION, MAC_BYTES, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES,
    RECORD_ALIGN, RECORD_FIXED_BYTES, RECORD_HEADER_MIN_BYTES, RECORD_MAGIC, REGION_HEADER_BYTES,
    REGION_MAGIC, SEAL_MARKER, align_record, field, get_mac, get_sized, get_u16, get_u32, get_u64,
    unzigzag,
};
use crate::writer::OverflowPolicy;

/// Why a region header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Image shorter than the region header.
    TooShort(usize),
    /// Wrong magic: not an audit region.
    BadMagic,
    /// Unsupported format version.
    BadVersion(u16),
    /// Geometry fields inconsistent.
    BadGeometry(&'static str),
    /// The image is shorter than the ring the header describes.
    Truncated {
        /// Bytes the ring needs.
        need: u64,
        /// Bytes in the image.
        have: u64,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort(n) => write!(
                f,
                "image of {n} bytes is shorter than a region header (4096)"
            ),
            HeaderError::BadMagic => f.write_str("no audit region magic (CLSTAUDT) at offset 0"),
            HeaderError::BadVersion(v) => write!(
                f,
                "unsupported region format version {v} (this reader reads version {FORMAT_VERSION}; \
                 versions 1 and 2 were written by Cloister before 2026-12-06 and up to commit \
                 62b6a22, version 3 up to commit dabfd52; read them with that build)"
            ),
            HeaderError::BadGeometry(why) => write!(f, "bad region geometry: {why}"),
            HeaderError::Truncated { need, have } => {
                write!(
                    f,
                    "image truncated: the ring needs {need} bytes, the image has {have}"
                )
            }
        }
    }
}

/// Decoded region header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionHeader {
    /// Bytes per block.
    pub block_bytes: usize,
    /// Number of block slots.
    pub block_count: u64,
    /// Region length recorded at format time.
    pub region_bytes: u64,
    /// Boot identifier.
    pub boot_id: [u8; 16],
    /// Overflow policy.
    pub policy: OverflowPolicy,
    /// Key identifier.
    pub key_id: [u8; 16],
    /// MAC over the static part.
    pub header_mac: [u8; MAC_BYTES],
    /// Writer's hints (unauthenticated; cross-checked by the verifier).
    pub hints: Hints,
}

/// Counters the writer mirrors into the region header on each block
/// open/seal and each drop. Unauthenticated: a reader uses them to detect
/// tail truncation, never trusts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// Next block to open.
    pub next_block_seq: u64,
    /// Next record sequence number (as of the last update).
    pub next_record_seq: u64,
    /// Records lost.
    pub lost_records: u64,
    /// Blocks evicted.
    pub evicted_blocks: u64,
    /// Blocks sealed.
    pub sealed_blocks: u64,
    /// MAC of the last sealed block.
    pub last_seal_mac: [u8; MAC_BYTES],
    /// Blocks released for reuse.
    pub released_blocks: u64,
}

/// A validated region image.
#[derive(Debug, Clone, Copy)]
pub struct RegionView<'a> {
    bytes: &'a [u8],
    header: RegionHeader,
}

impl<'a> RegionView<'a> {
    /// Validates the header and geometry of `bytes`.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let h = bytes
            .get(..REGION_HEADER_BYTES)
            .ok_or(HeaderError::TooShort(bytes.len()))?;
        if h.get(field::region::MAGIC) != Some(&REGION_MAGIC[..]) {
            return Err(HeaderError::BadMagic);
        }
        let version = get_u16(h, field::region::VERSION).ok_or(HeaderError::BadMagic)?;
        if version != FORMAT_VERSION {
            return Err(HeaderError::BadVersion(version));
        }
        let geo = HeaderError::BadGeometry;
        let u64_of = |r| get_u64(h, r).ok_or(geo("short header"));
        if get_u16(h, field::region::HEADER_BYTES) != Some(REGION_HEADER_BYTES as u16) {
            return Err(geo("header size is not 4096"));
        }
        let block_bytes =
            get_u32(h, field::region::BLOCK_BYTES).ok_or(geo("short header"))? as usize;
        if !block_bytes.is_power_of_two()
            || !(MIN_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&block_bytes)
        {
            return Err(geo("block size is not a power of two in 1 KiB..=1 MiB"));
        }
        if u64_of(field::region::RING_OFFSET)? != REGION_HEADER_BYTES as u64 {
            return Err(geo("ring offset is not 4096"));
        }
        let block_count = u64_of(field::region::BLOCK_COUNT)?;
        if block_count < 2 {
            return Err(geo("fewer than two blocks"));
        }
        let need = block_count
            .checked_mul(block_bytes as u64)
            .and_then(|r| r.checked_add(REGION_HEADER_BYTES as u64))
            .ok_or(geo("ring size overflows"))?;
        let have = bytes.len() as u64;
        if need > have {
            return Err(HeaderError::Truncated { need, have });
        }
        let policy = h
            .get(field::region::POLICY)
            .and_then(|p| OverflowPolicy::from_u8(p[0]))
            .ok_or(geo("unknown overflow policy"))?;
        let arr16 = |r| -> Result<[u8; 16], HeaderError> {
            h.get(r)
                .and_then(|s: &[u8]| s.try_into().ok())
                .ok_or(geo("short header"))
        };
        let header = RegionHeader {
            block_bytes,
            block_count,
            region_bytes: u64_of(field::region::REGION_BYTES)?,
            boot_id: arr16(field::region::BOOT_ID)?,
            policy,
            key_id: arr16(field::region::KEY_ID)?,
            header_mac: get_mac(h, field::region::HEADER_MAC).ok_or(geo("short header"))?,
            hints: Hints {
                next_block_seq: u64_of(field::region::NEXT_BLOCK_SEQ)?,
                next_record_seq: u64_of(field::region::NEXT_RECORD_SEQ)?,
                lost_records: u64_of(field::region::LOST_RECORDS)?,
                evicted_blocks: u64_of(field::region::EVICTED_BLOCKS)?,
                sealed_blocks: u64_of(field::region::SEALED_BLOCKS)?,
                last_seal_mac: get_mac(h, field::region::LAST_SEAL_MAC)
                    .ok_or(geo("short header"))?,
                released_blocks: u64_of(field::region::RELEASED_BLOCKS)?,
            },
        };
        Ok(RegionView { bytes, header })
    }

    /// The decoded header.
    pub fn header(&self) -> &RegionHeader {
        &self.header
    }

    /// The static header bytes covered by the header MAC.
    pub(crate) fn static_header_bytes(&self) -> &'a [u8] {
        self.bytes.get(field::region::STATIC_PART).unwrap_or(&[])
    }

    /// Image offset of block slot `slot`.
    pub fn slot_offset(&self, slot: u64) -> u64 {
        REGION_HEADER_BYTES as u64
            + (slot % self.header.block_count) * self.header.block_bytes as u64
    }

    /// The block in slot `slot` (taken modulo the slot count).
    pub fn block(&self, slot: u64) -> BlockView<'a> {
        let slot = slot % self.header.block_count;
        let start = self.slot_offset(slot) as usize;
        // new_checked proved the whole ring lies inside the image.
        let bytes = self
            .bytes
            .get(start..start + self.header.block_bytes)
            .unwrap_or(&[]);
        BlockView {
            slot,
            offset: start as u64,
            bytes,
        }
    }
}

/// State of a block slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// No block magic: never written this boot, or its opening was torn.
    Empty,
    /// Opened, not sealed: its records are committed but not authenticated.
    Open,
    /// Sealed with a MAC.
    Sealed,
    /// Magic present but the seal marker is neither 0 nor `SEAL`.
    BadSealMarker,
}

/// One block slot.
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    /// Slot index.
    pub slot: u64,
    /// Offset of the slot in the image.
    pub offset: u64,
    bytes: &'a [u8],
}

impl<'a> BlockView<'a> {
    /// Whether the slot holds an open or sealed block.
    pub fn state(&self) -> BlockState {
        if get_u32(self.bytes, field::block::MAGIC) != Some(BLOCK_MAGIC) {
            return BlockState::Empty;
        }
        match get_u32(self.bytes, field::block::SEAL) {
            Some(0) => BlockState::Open,
            Some(SEAL_MARKER) => BlockState::Sealed,
            _ => BlockState::BadSealMarker,
        }
    }

    /// Block sequence number.
    pub fn seq(&self) -> u64 {
        get_u64(self.bytes, field::block::SEQ).unwrap_or(0)
    }
    /// Sequence number of the first record.
    pub fn first_record_seq(&self) -> u64 {
        get_u64(self.bytes, field::block::FIRST_RECORD_SEQ).unwrap_or(0)
    }
    /// First 8 bytes of SHA-256(boot id).
    pub fn boot_tag(&self) -> [u8; 8] {
        self.bytes
            .get(field::block::BOOT_TAG)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 8])
    }
    /// Bytes of records (meaningful once sealed).
    pub fn used(&self) -> u32 {
        get_u32(self.bytes, field::block::USED).unwrap_or(0)
    }
    /// Record count (meaningful once sealed).
    pub fn record_count(&self) -> u32 {
        get_u32(self.bytes, field::block::RECORD_COUNT).unwrap_or(0)
    }
    /// MAC of the previous block.
    pub fn prev_mac(&self) -> [u8; MAC_BYTES] {
        get_mac(self.bytes, field::block::PREV_MAC).unwrap_or([0; MAC_BYTES])
    }
    /// This block's MAC (meaningful once sealed).
    pub fn mac(&self) -> [u8; MAC_BYTES] {
        get_mac(self.bytes, field::block::MAC).unwrap_or([0; MAC_BYTES])
    }
    /// The MAC input of a sealed block (the block bytes up to `maced_len`)
    /// as `mac::block_mac` takes it: a copy of the first bytes with the
    /// seal marker and MAC fields zero, and the rest.
    pub(crate) fn mac_input(&self) -> Option<([u8; HEAD_BYTES], &'a [u8])> {
        let data = self.sealed_data()?;
        let len = crate::wire::maced_len(data.len(), self.bytes.len())?;
        let mut head = *self.bytes.first_chunk::<HEAD_BYTES>()?;
        head[field::block::SEAL.start..field::block::MAC.end].fill(0);
        Some((head, self.bytes.get(HEAD_BYTES..len)?))
    }

    /// Record bytes covered by the MAC of a sealed block, if `used` is sane.
    pub fn sealed_data(&self) -> Option<&'a [u8]> {
        let used = usize::try_from(self.used()).ok()?;
        if used % RECORD_ALIGN != 0 {
            return None;
        }
        self.bytes
            .get(BLOCK_HEADER_BYTES..BLOCK_HEADER_BYTES.checked_add(used)?)
    }

    /// Walks the records: of the sealed data for a sealed block (`None` if
    /// its length is bad), or of the whole slot for an open one.
    pub fn records(&self) -> Option<Records<'a>> {
        let (data, sealed) = match self.state() {
            BlockState::Sealed => (self.sealed_data()?, true),
            BlockState::Open => (self.bytes.get(BLOCK_HEADER_BYTES..)?, false),
            _ => return None,
        };
        Some(Records {
            data,
            pos: 0,
            sealed,
            done: false,
            base: self.offset + BLOCK_HEADER_BYTES as u64,
            seq: self.first_record_seq(),
            last_ts: 0,
        })
    }
}

/// One decoded record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Offset of the record in the image.
    pub offset: u64,
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, ns.
    pub timestamp_ns: u64,
    /// CPU.
    pub cpu: u16,
    /// Kind byte.
    pub kind: u8,
    /// Payload (without padding).
    pub payload: &'a [u8],
    /// Bytes of the record in the block: header, payload and padding.
    pub bytes: usize,
}

impl<'a> Record<'a> {
    /// Decodes the payload.
    pub fn event(&self) -> Result<Event<'a>, DecodeError> {
        Event::decode(self.kind, self.payload)
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Wrong magic inside sealed data, or garbage in an open block.
    BadMagic(u16),
    /// The header's sizes byte is out of range (a time over 8 bytes, a
    /// CPU over 2, reserved bits set) or its values run off the data.
    BadHeader,
    /// Record runs past the end of its block's data.
    Overruns,
    /// Sealed data ends in the middle of a record header.
    TrailingBytes,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BadMagic(m) => write!(f, "bad record magic {m:#06x}"),
            RecordError::BadHeader => f.write_str("record header sizes malformed"),
            RecordError::Overruns => f.write_str("record length runs past the end of the block"),
            RecordError::TrailingBytes => f.write_str("sealed data ends inside a record header"),
        }
    }
}

/// Item of [`Records`].
#[derive(Debug, Clone, Copy)]
pub enum RecordItem<'a> {
    /// A committed record.
    Record(Record<'a>),
    /// A malformed record at `offset`; the walk ends.
    Error {
        /// Image offset.
        offset: u64,
        /// What is wrong.
        error: RecordError,
    },
    /// Open block: an uncommitted (torn) record at `offset` — bytes were
    /// written but the commit mark was not; the walk ends.
    Torn {
        /// Image offset.
        offset: u64,
    },
}

/// Iterator over a block's records.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    sealed: bool,
    done: bool,
    base: u64,
    /// Sequence number of the next record.
    seq: u64,
    /// Timestamp of the record before (0 before the first).
    last_ts: u64,
}

impl<'a> Iterator for Records<'a> {
    type Item = RecordItem<'a>;

    fn next(&mut self) -> Option<RecordItem<'a>> {
        if self.done {
            return None;
        }
        let offset = self.base + self.pos as u64;
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let err = |error| Some(RecordItem::Error { offset, error });
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        self.done = true;
        let Some(magic) = get_u16(rest, field::record::MAGIC) else {
            return if self.sealed {
                err(RecordError::TrailingBytes)
            } else {
                None
            };
        };
        if rest.len() < RECORD_HEADER_MIN_BYTES {
            return if self.sealed {
                err(RecordError::TrailingBytes)
            } else if rest.iter().any(|&b| b != 0) {
                Some(RecordItem::Torn { offset })
            } else {
                None
            };
        }
        if magic != RECORD_MAGIC {
            if !self.sealed && magic == 0 {
                // End of committed data; anything non-zero after it is a
                // record torn mid-append.
                return rest
                    .iter()
                    .any(|&b| b != 0)
                    .then_some(RecordItem::Torn { offset });
            }
            return err(RecordError::BadMagic(magic));
        }
        let len = usize::from(get_u16(rest, field::record::PAYLOAD_LEN).unwrap_or(0));
        let sizes = rest[field::record::SIZES.start];
        let (time_bytes, cpu_bytes) = (usize::from(sizes & 0xf), usize::from(sizes >> 4));
        if time_bytes > 8 || cpu_bytes > 2 {
            return err(RecordError::BadHeader);
        }
        let Some((delta, at)) = get_sized(rest, RECORD_FIXED_BYTES, time_bytes) else {
            return err(RecordError::BadHeader);
        };
        let Some((cpu, start)) = get_sized(rest, at, cpu_bytes) else {
            return err(RecordError::BadHeader);
        };
        let cpu = cpu as u16;
        let total = align_record(start + len).unwrap_or(usize::MAX);
        if total > rest.len() {
            return err(RecordError::Overruns);
        }
        let rec = Record {
            offset,
            seq: self.seq,
            timestamp_ns: self.last_ts.wrapping_add(unzigzag(delta) as u64),
            cpu,
            kind: rest[field::record::KIND][0],
            payload: &rest[start..start + len],
            bytes: total,
        };
        self.pos += total;
        self.seq = self.seq.wrapping_add(1);
        self.last_ts = rec.timestamp_ns;
        self.done = false;
        Some(RecordItem::Record(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{AuditLog, Config};

    fn image() -> Vec<u8> {
        let mut r = vec![0u8; 16 << 10];
        let mut c = Config::new([1; 32], [2; 16]);
        c.block_bytes = 1024;
        let mut log = AuditLog::format(&mut r, &c).unwrap();
        log.append(&crate::Event::Text { text: "hello" }, 5, 1)
            .unwrap();
        r
    }

    #[test]
    fn header_errors() {
        let img = image();
        assert!(RegionView::new_checked(&img).is_ok());
        assert_eq!(
            RegionView::new_checked(&img[..100]).unwrap_err(),
            HeaderError::TooShort(100)
        );
        let mut bad = img.clone();
        bad[0] ^= 1;
        assert_eq!(
            RegionView::new_checked(&bad).unwrap_err(),
            HeaderError::BadMagic
        );
        let mut bad = img.clone();
        bad[8] = 9;
        assert_eq!(
            RegionView::new_checked(&bad).unwrap_err(),
            HeaderError::BadVersion(9)
        );
        assert!(matches!(
            RegionView::new_checked(&img[..8000]),
            Err(HeaderError::Truncated { .. })
        ));
        let mut bad = img.clone();
        bad[field::region::BLOCK_COUNT].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            RegionView::new_checked(&bad),
            Err(HeaderError::BadGeometry(_))
        ));
    }

    #[test]
    fn times_are_differences_and_sequence_numbers_follow_the_block() {
        let mut r = vec![0u8; 16 << 10];
        let mut c = Config::new([1; 32], [2; 16]);
        c.block_bytes = 1024;
        let mut log = AuditLog::format(&mut r, &c).unwrap();
        // Forward, backward (another CPU's clock) and a huge jump.
        let times = [1_000_000_000u64, 1_000_010_000, 999_999_000, u64::MAX, 7];
        for (i, &t) in times.iter().enumerate() {
            let cpu = [0, 300, u16::MAX, 1, 2][i];
            log.append(&crate::Event::Text { text: "x" }, t, cpu)
                .unwrap();
        }
        let view = RegionView::new_checked(&r).unwrap();
        let got: Vec<_> = view
            .block(0)
            .records()
            .unwrap()
            .map(|item| match item {
                RecordItem::Record(r) => (r.seq, r.timestamp_ns, r.cpu),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, times[0], 0),
                (1, times[1], 300),
                (2, times[2], u16::MAX),
                (3, times[3], 1),
                (4, times[4], 2)
            ]
        );
    }

    #[test]
    fn malformed_header_sizes_are_errors() {
        let at = 4096 + BLOCK_HEADER_BYTES + field::record::SIZES.start;
        // A time of nine bytes, a CPU of three, the reserved bits set.
        for bad in [0x09u8, 0x31, 0xc1] {
            let mut img = image();
            img[at] = bad;
            let view = RegionView::new_checked(&img).unwrap();
            let items: Vec<_> = view.block(0).records().unwrap().collect();
            assert!(
                matches!(
                    items[..],
                    [RecordItem::Error {
                        error: RecordError::BadHeader,
                        ..
                    }]
                ),
                "{bad:#x}: {items:?}"
            );
        }
    }

    #[test]
    fn open_block_records_and_torn_tail() {
        let mut img = image();
        let view = RegionView::new_checked(&img).unwrap();
        let b = view.block(0);
        assert_eq!(b.state(), BlockState::Open);
        let items: Vec<_> = b.records().unwrap().collect();
        assert_eq!(items.len(), 1);
        let RecordItem::Record(r) = items[0] else {
            panic!("{items:?}")
        };
        assert_eq!((r.seq, r.timestamp_ns, r.cpu), (0, 5, 1));
        assert_eq!(r.event(), Ok(crate::Event::Text { text: "hello" }));
        // Header: 6 fixed bytes, time 5 (zigzag 10) and CPU 1 one byte
        // each; 5 of text; one of padding.
        assert_eq!(r.bytes, 14);
        // Bytes after the last record without a commit mark: torn.
        let at = 4096 + BLOCK_HEADER_BYTES + 14 + 5;
        img[at] = 7;
        let view = RegionView::new_checked(&img).unwrap();
        let items: Vec<_> = view.block(0).records().unwrap().collect();
        assert!(matches!(items[1], RecordItem::Torn { offset } if offset == (at - 5) as u64));
    }
}
