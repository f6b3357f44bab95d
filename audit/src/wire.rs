//! Byte layouts of the region header, the block header and the record
//! header, in smoltcp's wire style: a `field` module of byte ranges per
//! structure, little-endian integers (the compact parts of records in as
//! many bytes as their value needs, the count kept in a size field), and
//! checked accessors that never panic on a short or hostile slice.
//! `docs/AUDIT.md` documents the same layout byte by byte; keep the two in
//! step.

use core::ops::Range;

/// Bytes reserved for the region header at the start of a region; the ring
/// of blocks starts right after it.
pub const REGION_HEADER_BYTES: usize = 4096;
/// Magic at offset 0 of a formatted region.
pub const REGION_MAGIC: [u8; 8] = *b"CLSTAUDT";
/// Version of the region, block and record formats described here.
/// Version 2 made records compact (sequence number implied by the block,
/// CPU and time as varints, size-tagged syscall payloads); version 3 keeps
/// the CPU, the time and every syscall value in the fewest whole bytes
/// that hold it, the counts in a size byte or the syscall tag, instead of
/// varints and power-of-two sizes (fewer bytes, and a store instead of a
/// loop per value); version 4 MACs blocks with POLYVAL under a one-time key
/// per block instead of keyed BLAKE3, over exactly the header and records.
/// Older regions are refused by number.
pub const FORMAT_VERSION: u16 = 4;
/// Magic at offset 0 of a block header; written last when a block is opened,
/// so a block whose opening was torn reads as empty.
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"BLK1");
/// Marker at offset 4 of a block header; written last when a block is
/// sealed, after its length, record count and MAC.
pub const SEAL_MARKER: u32 = u32::from_le_bytes(*b"SEAL");
/// Magic at offset 0 of a record header; written last, so it doubles as the
/// record's commit mark: a record without it was torn mid-append.
pub const RECORD_MAGIC: u16 = 0xA0D1;
/// Bytes of a block header; records start right after it.
pub const BLOCK_HEADER_BYTES: usize = 104;
/// Bytes of the fixed part of a record header (magic, kind, payload
/// length, sizes); the time difference and the CPU follow in the bytes the
/// sizes give, then the payload.
pub const RECORD_FIXED_BYTES: usize = 6;
/// Fewest bytes of a record header (a zero time difference on CPU 0).
pub const RECORD_HEADER_MIN_BYTES: usize = RECORD_FIXED_BYTES;
/// Most bytes of a record header: an 8-byte time difference and a 2-byte
/// CPU. Room is reserved for this much, so a record's size is known before
/// its place in a block is.
pub const RECORD_HEADER_MAX_BYTES: usize = RECORD_FIXED_BYTES + 8 + 2;
/// Records start and end on this alignment (padding is zero): the 2-byte
/// commit mark never straddles a cache line.
pub const RECORD_ALIGN: usize = 2;
/// Smallest block size a region may use.
pub const MIN_BLOCK_BYTES: usize = 1024;
/// Largest block size a region may use.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;
/// Length of a key, and of the MAC fields (a block's tag takes the first
/// 16 bytes of its field, `mac.rs`).
pub const MAC_BYTES: usize = 32;

/// Field byte ranges.
pub mod field {
    use core::ops::Range;

    /// Region header (offset 0 of the region).
    pub mod region {
        use super::Range;
        /// `CLSTAUDT`.
        pub const MAGIC: Range<usize> = 0..8;
        /// Format version (u16).
        pub const VERSION: Range<usize> = 8..10;
        /// Bytes of this header (u16, 4096).
        pub const HEADER_BYTES: Range<usize> = 10..12;
        /// Bytes per block (u32, power of two).
        pub const BLOCK_BYTES: Range<usize> = 12..16;
        /// Region length at format time (u64).
        pub const REGION_BYTES: Range<usize> = 16..24;
        /// Offset of block slot 0 from the region start (u64).
        pub const RING_OFFSET: Range<usize> = 24..32;
        /// Number of block slots (u64).
        pub const BLOCK_COUNT: Range<usize> = 32..40;
        /// Random boot identifier (16 bytes).
        pub const BOOT_ID: Range<usize> = 40..56;
        /// Overflow policy (u8).
        pub const POLICY: Range<usize> = 56..57;
        /// Reserved, zero.
        pub const RESERVED: Range<usize> = 57..64;
        /// First 16 bytes of MAC(master key, "key-id").
        pub const KEY_ID: Range<usize> = 64..80;
        /// Keyed BLAKE3 MAC over bytes 0..80 under the header key.
        pub const HEADER_MAC: Range<usize> = 80..112;
        /// Bytes covered by `HEADER_MAC`.
        pub const STATIC_PART: Range<usize> = 0..80;
        /// Hint: sequence number of the next block to open (u64).
        pub const NEXT_BLOCK_SEQ: Range<usize> = 128..136;
        /// Hint: next record sequence number as of the last update (u64).
        pub const NEXT_RECORD_SEQ: Range<usize> = 136..144;
        /// Hint: records lost so far (u64).
        pub const LOST_RECORDS: Range<usize> = 144..152;
        /// Hint: blocks evicted so far (u64).
        pub const EVICTED_BLOCKS: Range<usize> = 152..160;
        /// Hint: number of blocks sealed so far (last sealed seq + 1; u64).
        pub const SEALED_BLOCKS: Range<usize> = 160..168;
        /// Hint: MAC of the last sealed block.
        pub const LAST_SEAL_MAC: Range<usize> = 168..200;
        /// Hint: blocks released (exported) by the host side (u64).
        pub const RELEASED_BLOCKS: Range<usize> = 200..208;
    }

    /// Block header (offset 0 of each block slot).
    pub mod block {
        use super::Range;
        /// `BLK1` (u32), written last on open.
        pub const MAGIC: Range<usize> = 0..4;
        /// `SEAL` (u32) once sealed, else 0; written last on seal.
        pub const SEAL: Range<usize> = 4..8;
        /// MAC of this block, set on seal: a 16-byte POLYVAL tag under a
        /// one-time key derived from the block's ratchet key (`mac.rs`)
        /// over block bytes `0 .. maced_len(used)`, with this field and
        /// `SEAL` read as zero (they are zero when it is computed), then 16
        /// zero bytes.
        pub const MAC: Range<usize> = 8..40;
        /// Block sequence number (u64).
        pub const SEQ: Range<usize> = 40..48;
        /// Sequence number of the block's first record (u64).
        pub const FIRST_RECORD_SEQ: Range<usize> = 48..56;
        /// First 8 bytes of BLAKE3(boot id).
        pub const BOOT_TAG: Range<usize> = 56..64;
        /// Bytes of records after the header, set on seal (u32).
        pub const USED: Range<usize> = 64..68;
        /// Number of records, set on seal (u32).
        pub const RECORD_COUNT: Range<usize> = 68..72;
        /// MAC of the previous block (zero for block 0).
        pub const PREV_MAC: Range<usize> = 72..104;
    }

    /// Record header (offset 0 of each record): these fixed fields, then
    /// the timestamp's difference to the previous record's in the block
    /// (to 0 for the block's first record), zigzag-mapped, in `SIZES` bits
    /// 0–3 little-endian bytes (0..=8), then the CPU in bits 4–5 bytes
    /// (0..=2), then the payload. The sequence number is the block's
    /// `FIRST_RECORD_SEQ` plus the record's index in the block.
    pub mod record {
        use super::Range;
        /// Record magic / commit mark (u16), written last.
        pub const MAGIC: Range<usize> = 0..2;
        /// Event kind (u8).
        pub const KIND: Range<usize> = 2..3;
        /// Payload bytes, excluding padding (u16).
        pub const PAYLOAD_LEN: Range<usize> = 3..5;
        /// Sizes (u8): bits 0–3 the time difference's bytes, bits 4–5 the
        /// CPU's; bits 6–7 zero.
        pub const SIZES: Range<usize> = 5..6;
    }
}

/// Bytes of a block covered by its MAC when `used` bytes of records follow
/// the header: the header and the records, exactly. `None` if `used` does
/// not fit in the block.
pub fn maced_len(used: usize, block_bytes: usize) -> Option<usize> {
    let end = BLOCK_HEADER_BYTES.checked_add(used)?;
    (end <= block_bytes).then_some(end)
}

/// Bytes `v` needs little-endian: 0 for 0, else 1..=8.
#[inline(always)]
pub const fn byte_len(v: u64) -> usize {
    (71 - v.leading_zeros() as usize) / 8
}

/// Stores all eight bytes of `v` little-endian at `out[at..]`, where a
/// writer keeps only the low ones (the next value overwrites the rest, or
/// they are zero): one store instead of a loop. A slice too short for the
/// eight takes none of them (the caller reserved the room).
#[inline(always)]
pub fn put_word(out: &mut [u8], at: usize, v: u64) {
    if let Some(w) = out.get_mut(at..at.wrapping_add(8)) {
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Reads `size` (0..=8) little-endian bytes at `b[at..]`; the value and
/// the offset after it.
pub(crate) fn get_sized(b: &[u8], at: usize, size: usize) -> Option<(u64, usize)> {
    let end = at.checked_add(size)?;
    let mut w = [0u8; 8];
    w.get_mut(..size)?.copy_from_slice(b.get(at..end)?);
    Some((u64::from_le_bytes(w), end))
}

/// Zigzag-maps a signed value so small magnitudes take few bytes.
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bytes a record with a `payload`-byte payload takes at most, header and
/// padding included; `None` on overflow.
pub fn record_bytes_max(payload: usize) -> Option<usize> {
    align_record(RECORD_HEADER_MAX_BYTES.checked_add(payload)?)
}

/// Rounds `n` up to the record alignment; `None` on overflow.
pub(crate) fn align_record(n: usize) -> Option<usize> {
    n.checked_add(RECORD_ALIGN - 1)
        .map(|v| v & !(RECORD_ALIGN - 1))
}

fn bytes<const N: usize>(b: &[u8], r: Range<usize>) -> Option<[u8; N]> {
    b.get(r)?.try_into().ok()
}

/// Reads a little-endian u16; `None` if out of range.
pub(crate) fn get_u16(b: &[u8], r: Range<usize>) -> Option<u16> {
    bytes::<2>(b, r).map(u16::from_le_bytes)
}
/// Reads a little-endian u32; `None` if out of range.
pub(crate) fn get_u32(b: &[u8], r: Range<usize>) -> Option<u32> {
    bytes::<4>(b, r).map(u32::from_le_bytes)
}
/// Reads a little-endian u64; `None` if out of range.
pub(crate) fn get_u64(b: &[u8], r: Range<usize>) -> Option<u64> {
    bytes::<8>(b, r).map(u64::from_le_bytes)
}
/// Reads a 32-byte MAC; `None` if out of range.
pub(crate) fn get_mac(b: &[u8], r: Range<usize>) -> Option<[u8; MAC_BYTES]> {
    bytes::<MAC_BYTES>(b, r)
}

/// Writes `v` at `r` of `b`. The writer only calls it on ranges it has
/// already bounds-checked, so a short slice is a bug; it is ignored rather
/// than panicking.
pub(crate) fn put(b: &mut [u8], r: Range<usize>, v: &[u8]) {
    if let Some(dst) = b.get_mut(r)
        && dst.len() == v.len()
    {
        dst.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maced_len_is_header_and_records() {
        assert_eq!(maced_len(0, 4096), Some(104));
        assert_eq!(maced_len(920, 4096), Some(1024));
        assert_eq!(maced_len(921, 4096), Some(1025));
        assert_eq!(maced_len(3992, 4096), Some(4096));
        assert_eq!(maced_len(3993, 4096), None);
        assert_eq!(maced_len(usize::MAX, 4096), None);
        assert_eq!(align_record(25), Some(26));
        assert_eq!(align_record(usize::MAX), None);
    }

    #[test]
    fn byte_counts_and_words_roundtrip_at_every_length() {
        let mut buf = [0xaau8; 12];
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
                let n = byte_len(v);
                assert_eq!(n, (64 - v.leading_zeros() as usize).div_ceil(8), "{v:#x}");
                put_word(&mut buf, 1, v);
                assert_eq!(get_sized(&buf, 1, n), Some((v, 1 + n)), "{v:#x}");
            }
        }
        assert_eq!((byte_len(0), byte_len(255), byte_len(256)), (0, 1, 2));
        assert_eq!(byte_len(u64::MAX), 8);
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!((zigzag(-1), zigzag(1), zigzag(-64)), (1, 2, 127));
    }

    #[test]
    fn short_slices_are_refused_not_overrun() {
        let mut buf = [0u8; 7];
        put_word(&mut buf, 0, u64::MAX);
        assert_eq!(buf, [0; 7]);
        put_word(&mut buf, usize::MAX, 1);
        assert_eq!(get_sized(&buf, 6, 2), None);
        assert_eq!(get_sized(&buf, usize::MAX, 1), None);
        assert_eq!(get_sized(&buf, 0, 9), None);
        assert_eq!(get_sized(&buf, 7, 0), Some((0, 7)));
    }
}
