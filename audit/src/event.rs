//! Event kinds and their payload encodings (layouts in `docs/AUDIT.md`).
//!
//! [`Event`] is what the kernel appends and what the reader decodes; text
//! fields borrow, so neither side allocates. Fixed-size payloads must have
//! exactly their length; variable ones a minimum. Decoding validates every
//! length and UTF-8 string and never panics.

use core::fmt;

use crate::wire::{MAC_BYTES, get_mac, get_sized, get_u32, get_u64, unzigzag, zigzag};

/// Bytes of a syscall payload's tag.
const SYSCALL_TAG_BYTES: usize = 4;
/// Longest syscall payload: the tag, three 4-byte values (number, thread,
/// duration) and seven 8-byte ones (result, arguments).
pub const SYSCALL_MAX_BYTES: usize = SYSCALL_TAG_BYTES + 3 * 4 + 7 * 8;
/// Where each value's size field starts in a syscall tag (bits 0–2 are the
/// argument count): `nr`, `tid`, `result`, `duration_ns`, then the six
/// arguments. Each field counts the value's zero top bytes left out: 2
/// bits for the 32-bit values (0..=3 of 4), 3 for the 64-bit ones (0..=7
/// of 8), so at least one byte is kept; bits 30–31 are zero.
const SYSCALL_SIZE_SHIFT: [u32; 10] = [3, 5, 7, 10, 12, 15, 18, 21, 24, 27];
/// Bits of each value's size field, in the order of [`SYSCALL_SIZE_SHIFT`].
const SYSCALL_SIZE_BITS: [u32; 10] = [2, 2, 3, 2, 3, 3, 3, 3, 3, 3];
/// Room [`SyscallEvent::write`] writes into: the longest payload and the
/// rest of its last value's 8-byte store.
pub(crate) const SYSCALL_WRITE_ROOM: usize = SYSCALL_MAX_BYTES + 8;

/// A syscall payload being written: the room, the offset of the next
/// value and the tag so far.
struct Values<'o> {
    out: &'o mut [u8; SYSCALL_WRITE_ROOM],
    at: usize,
    tag: u32,
}

impl Values<'_> {
    /// Stores `v` (all eight bytes) at the offset, moves the offset past
    /// the bytes it keeps — all but its zero top bytes, at least one — and
    /// puts the count of those left out in its 3-bit field at `shift` of
    /// the tag. Each value moves the offset by at most 8, so no store
    /// passes the room's end — which the compiler proves in
    /// [`SyscallEvent::write`]'s unrolled calls: no bounds check is left (a
    /// clamp of the index cost three instructions a value more). Counting
    /// the zero top bytes (`leading_zeros`) rather than the kept ones
    /// saves instructions on x86 without `lzcnt`.
    #[inline(always)]
    fn put(&mut self, v: u64, shift: u32) {
        let left_out = (v | 1).leading_zeros() / 8;
        self.store(v);
        self.at += 8 - left_out as usize;
        self.tag |= left_out << shift;
    }

    /// [`Self::put`] for a 32-bit value: its 2-bit field counts the zero
    /// bytes left out of four.
    #[inline(always)]
    fn put32(&mut self, v: u32, shift: u32) {
        let left_out = (v | 1).leading_zeros() / 8;
        self.store(u64::from(v));
        self.at += 4 - left_out as usize;
        self.tag |= left_out << shift;
    }

    #[inline(always)]
    fn store(&mut self, v: u64) {
        let i = self.at;
        if let Some(w) = self.out.get_mut(i..i + 8) {
            w.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Event kind, stored in the record header's `kind` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The kernel booted.
    Boot = 1,
    /// The kernel panicked (forces a seal).
    Panic = 2,
    /// A CPU exception (forces a seal).
    CpuException = 3,
    /// A syscall made by the hosted application.
    Syscall = 4,
    /// A syscall the LibOS does not implement.
    UnsupportedSyscall = 5,
    /// Records were lost or evicted (written by the log itself).
    Gap = 6,
    /// A checkpoint (written by the log itself; forces a seal).
    Checkpoint = 7,
    /// Free-form text.
    Text = 8,
    /// An attestation report and the inputs of its `REPORT_DATA`
    /// ([`crate::attest::AttestationRecord`]).
    Attestation = 9,
}

impl Kind {
    /// The kind stored as `byte`, if known.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Boot,
            2 => Kind::Panic,
            3 => Kind::CpuException,
            4 => Kind::Syscall,
            5 => Kind::UnsupportedSyscall,
            6 => Kind::Gap,
            7 => Kind::Checkpoint,
            8 => Kind::Text,
            9 => Kind::Attestation,
            _ => return None,
        })
    }

    /// Lower-case name used in text and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Boot => "boot",
            Kind::Panic => "panic",
            Kind::CpuException => "cpu_exception",
            Kind::Syscall => "syscall",
            Kind::UnsupportedSyscall => "unsupported_syscall",
            Kind::Gap => "gap",
            Kind::Checkpoint => "checkpoint",
            Kind::Text => "text",
            Kind::Attestation => "attestation",
        }
    }
}

/// A syscall in compact form: the number, thread, result (zigzag), duration
/// and each argument kept, each in the fewest whole bytes that hold it
/// (at least one), after a 4-byte tag of how many top bytes each leaves
/// out — 8 to 30 bytes for most calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallEvent {
    /// Syscall number.
    pub nr: u32,
    /// Thread id of the caller.
    pub tid: u32,
    /// Return value (negative errno on failure).
    pub result: i64,
    /// Time spent in the syscall, in nanoseconds (saturated).
    pub duration_ns: u32,
    /// How many of `args` are stored (0..=6); the rest read as 0.
    pub arg_count: u8,
    /// Arguments.
    pub args: [u64; 6],
}

impl SyscallEvent {
    /// A syscall event keeping all six arguments.
    pub fn new(nr: u32, args: [u64; 6], result: i64, tid: u32, duration_ns: u32) -> Self {
        SyscallEvent {
            nr,
            tid,
            result,
            duration_ns,
            arg_count: 6,
            args,
        }
    }

    /// Writes the payload at `out[0..]` and returns its length: the 4-byte
    /// tag, then the values in their byte counts, in one pass, each value
    /// with one 8-byte store — so up to 7 zero bytes land past the
    /// payload, which `out` has room for. Inlined: the kernel's syscall
    /// path runs it for every call.
    #[inline(always)]
    pub(crate) fn write(&self, out: &mut [u8; SYSCALL_WRITE_ROOM]) -> usize {
        let argc = usize::from(self.arg_count.min(6));
        let mut w = Values {
            out,
            at: SYSCALL_TAG_BYTES,
            tag: argc as u32,
        };
        w.put32(self.nr, SYSCALL_SIZE_SHIFT[0]);
        w.put32(self.tid, SYSCALL_SIZE_SHIFT[1]);
        w.put(zigzag(self.result), SYSCALL_SIZE_SHIFT[2]);
        w.put32(self.duration_ns, SYSCALL_SIZE_SHIFT[3]);
        for (&a, &shift) in self.args.iter().zip(&SYSCALL_SIZE_SHIFT[4..]).take(argc) {
            w.put(a, shift);
        }
        let (at, tag) = (w.at, w.tag);
        if let Some(t) = out.first_chunk_mut::<SYSCALL_TAG_BYTES>() {
            *t = tag.to_le_bytes();
        }
        at
    }

    /// Payload bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        self.write(&mut [0; SYSCALL_WRITE_ROOM])
    }

    /// Writes the payload at `out[0..]`, whose length is
    /// [`Self::encoded_len`].
    pub(crate) fn encode_into(&self, out: &mut [u8]) {
        let mut buf = [0; SYSCALL_WRITE_ROOM];
        let len = self.write(&mut buf);
        if let (Some(dst), Some(src)) = (out.get_mut(..len), buf.get(..len)) {
            dst.copy_from_slice(src);
        }
    }

    /// Decodes a payload (the layout of [`Self::write`]: bits 0–2 of the
    /// tag the argument count, then for each value how many of its top
    /// bytes (of 4 or 8) are left out, in [`SYSCALL_SIZE_BITS`] bits at
    /// [`SYSCALL_SIZE_SHIFT`]), which must end
    /// exactly after its last value, with the size fields of absent
    /// arguments and bits 30–31 zero.
    fn decode(p: &[u8]) -> Result<Self, DecodeError> {
        let bad = DecodeError::BadLength {
            kind: Kind::Syscall,
            len: p.len(),
        };
        let tag = get_u32(p, 0..SYSCALL_TAG_BYTES).ok_or(bad)?;
        let argc = (tag & 7) as u8;
        if argc > 6 {
            return Err(DecodeError::BadArgCount(argc));
        }
        let values = 4 + usize::from(argc);
        let used_bits = SYSCALL_SIZE_SHIFT[values - 1] + SYSCALL_SIZE_BITS[values - 1];
        if tag >> used_bits != 0 {
            return Err(bad);
        }
        let mut v = [0u64; 10];
        let mut at = SYSCALL_TAG_BYTES;
        for (i, slot) in v.iter_mut().take(values).enumerate() {
            let bits = SYSCALL_SIZE_BITS[i];
            let left_out = (tag >> SYSCALL_SIZE_SHIFT[i]) & ((1 << bits) - 1);
            // A 2-bit field is of a 4-byte value, a 3-bit one of 8.
            let width = 1 << bits;
            (*slot, at) = get_sized(p, at, (width - left_out) as usize).ok_or(bad)?;
        }
        if at != p.len() {
            return Err(bad);
        }
        let mut args = [0u64; 6];
        args.copy_from_slice(&v[4..]);
        // The 2-bit fields hold at most 4 bytes: these fit.
        Ok(SyscallEvent {
            nr: v[0] as u32,
            tid: v[1] as u32,
            result: unzigzag(v[2]),
            duration_ns: v[3] as u32,
            arg_count: argc,
            args,
        })
    }
}

/// Why records are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum GapReason {
    /// Overwrite-oldest evicted a block that had not been exported: lost.
    Overwritten = 1,
    /// Drop-newest dropped records because the ring was full: lost.
    Dropped = 2,
    /// A block that had been exported (released) was reused: not lost.
    Exported = 3,
}

impl GapReason {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => GapReason::Overwritten,
            2 => GapReason::Dropped,
            3 => GapReason::Exported,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            GapReason::Overwritten => "overwritten",
            GapReason::Dropped => "dropped",
            GapReason::Exported => "exported",
        }
    }

    /// Whether the records it names are gone for good.
    pub fn is_loss(self) -> bool {
        !matches!(self, GapReason::Exported)
    }
}

/// A gap: records `first_seq .. first_seq + count` are not in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapEvent {
    /// Why.
    pub reason: GapReason,
    /// First missing record sequence number.
    pub first_seq: u64,
    /// Number of missing records.
    pub count: u64,
    /// The log's `lost` counter after this gap.
    pub lost_total: u64,
    /// Evicted block (overwritten/exported); 0 for dropped.
    pub block_seq: u64,
    /// MAC of the evicted block, which chains over everything before it;
    /// zero for dropped.
    pub digest: [u8; MAC_BYTES],
}

/// A checkpoint record: the log's counters when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointEvent {
    /// Sequence number of the next record after this one.
    pub next_record_seq: u64,
    /// The `lost` counter.
    pub lost_total: u64,
    /// Blocks evicted so far.
    pub evicted_blocks: u64,
    /// Blocks sealed before this checkpoint's block.
    pub sealed_blocks: u64,
}

/// One audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Boot.
    Boot {
        /// Guest memory in bytes.
        memory_bytes: u64,
        /// Number of CPUs.
        cpu_count: u32,
        /// Kernel command line (truncated to fit a block).
        cmdline: &'a str,
    },
    /// Panic with its message (truncated to fit a block).
    Panic {
        /// The message.
        message: &'a str,
    },
    /// CPU exception.
    CpuException {
        /// Vector number.
        vector: u8,
        /// Error code (0 if the vector has none).
        error_code: u64,
        /// Faulting instruction pointer.
        rip: u64,
        /// CR2 (page faults), else 0.
        cr2: u64,
    },
    /// A syscall.
    Syscall(SyscallEvent),
    /// A syscall the LibOS does not implement.
    UnsupportedSyscall {
        /// Syscall number.
        nr: u32,
        /// Its Linux name (truncated to fit a block).
        name: &'a str,
    },
    /// Missing records (written by the log).
    Gap(GapEvent),
    /// Checkpoint (written by the log).
    Checkpoint(CheckpointEvent),
    /// Free-form text (truncated to fit a block).
    Text {
        /// The text.
        text: &'a str,
    },
    /// An attestation record's payload (binary, never truncated: an
    /// append that does not fit a block fails with `TooLarge`); decode it
    /// with [`crate::attest::AttestationRecord::decode`].
    Attestation {
        /// The encoded [`crate::attest::AttestationRecord`].
        payload: &'a [u8],
    },
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Unknown kind byte.
    UnknownKind(u8),
    /// Payload length wrong for the kind.
    BadLength {
        /// Kind.
        kind: Kind,
        /// Length found.
        len: usize,
    },
    /// Text is not UTF-8.
    BadUtf8(Kind),
    /// Unknown gap reason.
    BadGapReason(u8),
    /// Syscall argument count above 6.
    BadArgCount(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownKind(k) => write!(f, "unknown event kind {k}"),
            DecodeError::BadLength { kind, len } => {
                write!(f, "{} payload has wrong length {len}", kind.name())
            }
            DecodeError::BadUtf8(kind) => write!(f, "{} text is not UTF-8", kind.name()),
            DecodeError::BadGapReason(r) => write!(f, "unknown gap reason {r}"),
            DecodeError::BadArgCount(n) => write!(f, "syscall argument count {n} > 6"),
        }
    }
}

const BOOT_FIXED: usize = 16;
const EXCEPTION_LEN: usize = 32;
const UNSUPPORTED_FIXED: usize = 8;
/// Payload bytes of a gap record.
pub(crate) const GAP_LEN: usize = 72;
/// Payload bytes of a checkpoint record.
pub(crate) const CHECKPOINT_LEN: usize = 32;

/// Longest prefix of `s` of at most `max` bytes ending on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

impl<'a> Event<'a> {
    /// The event's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Event::Boot { .. } => Kind::Boot,
            Event::Panic { .. } => Kind::Panic,
            Event::CpuException { .. } => Kind::CpuException,
            Event::Syscall(_) => Kind::Syscall,
            Event::UnsupportedSyscall { .. } => Kind::UnsupportedSyscall,
            Event::Gap(_) => Kind::Gap,
            Event::Checkpoint(_) => Kind::Checkpoint,
            Event::Text { .. } => Kind::Text,
            Event::Attestation { .. } => Kind::Attestation,
        }
    }

    /// Whether appending it seals the block at once.
    pub fn is_security_critical(&self) -> bool {
        matches!(
            self,
            Event::Panic { .. } | Event::CpuException { .. } | Event::Checkpoint(_)
        )
    }

    /// Payload bytes when encoded with text truncated to `max_payload`.
    pub(crate) fn payload_len(&self, max_payload: usize) -> usize {
        let text =
            |fixed: usize, s: &str| fixed + truncate(s, max_payload.saturating_sub(fixed)).len();
        match self {
            Event::Boot { cmdline, .. } => text(BOOT_FIXED, cmdline),
            Event::Panic { message } => text(0, message),
            Event::CpuException { .. } => EXCEPTION_LEN,
            Event::Syscall(s) => s.encoded_len(),
            Event::UnsupportedSyscall { name, .. } => text(UNSUPPORTED_FIXED, name),
            Event::Gap(_) => GAP_LEN,
            Event::Checkpoint(_) => CHECKPOINT_LEN,
            Event::Text { text: t } => text(0, t),
            Event::Attestation { payload } => payload.len(),
        }
    }

    /// Encodes into `out`, whose length is `payload_len(..)`; text is cut to
    /// what fits.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        let mut w = Cursor { out, pos: 0 };
        match self {
            Event::Boot {
                memory_bytes,
                cpu_count,
                cmdline,
            } => {
                w.put(&memory_bytes.to_le_bytes());
                w.put(&cpu_count.to_le_bytes());
                w.put(&[0; 4]);
                w.put_text(cmdline);
            }
            Event::Panic { message } => w.put_text(message),
            Event::CpuException {
                vector,
                error_code,
                rip,
                cr2,
            } => {
                w.put(&[*vector, 0, 0, 0, 0, 0, 0, 0]);
                w.put(&error_code.to_le_bytes());
                w.put(&rip.to_le_bytes());
                w.put(&cr2.to_le_bytes());
            }
            Event::Syscall(s) => s.encode_into(w.out),
            Event::UnsupportedSyscall { nr, name } => {
                w.put(&nr.to_le_bytes());
                w.put(&[0; 4]);
                w.put_text(name);
            }
            Event::Gap(g) => {
                w.put(&[g.reason as u8, 0, 0, 0, 0, 0, 0, 0]);
                w.put(&g.first_seq.to_le_bytes());
                w.put(&g.count.to_le_bytes());
                w.put(&g.lost_total.to_le_bytes());
                w.put(&g.block_seq.to_le_bytes());
                w.put(&g.digest);
            }
            Event::Checkpoint(c) => {
                w.put(&c.next_record_seq.to_le_bytes());
                w.put(&c.lost_total.to_le_bytes());
                w.put(&c.evicted_blocks.to_le_bytes());
                w.put(&c.sealed_blocks.to_le_bytes());
            }
            Event::Text { text } => w.put_text(text),
            Event::Attestation { payload } => w.put(payload),
        }
    }

    /// Decodes a payload of kind byte `kind`.
    pub fn decode(kind: u8, p: &'a [u8]) -> Result<Event<'a>, DecodeError> {
        let k = Kind::from_u8(kind).ok_or(DecodeError::UnknownKind(kind))?;
        let bad = DecodeError::BadLength {
            kind: k,
            len: p.len(),
        };
        let exact = |n: usize| if p.len() == n { Ok(()) } else { Err(bad) };
        let text = |from: usize| -> Result<&'a str, DecodeError> {
            let bytes = p.get(from..).ok_or(bad)?;
            core::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8(k))
        };
        let u32_at = |o: usize| get_u32(p, o..o + 4).ok_or(bad);
        let u64_at = |o: usize| get_u64(p, o..o + 8).ok_or(bad);
        Ok(match k {
            Kind::Boot => Event::Boot {
                memory_bytes: u64_at(0)?,
                cpu_count: u32_at(8)?,
                cmdline: text(BOOT_FIXED)?,
            },
            Kind::Panic => Event::Panic { message: text(0)? },
            Kind::CpuException => {
                exact(EXCEPTION_LEN)?;
                Event::CpuException {
                    vector: p.first().copied().ok_or(bad)?,
                    error_code: u64_at(8)?,
                    rip: u64_at(16)?,
                    cr2: u64_at(24)?,
                }
            }
            Kind::Syscall => Event::Syscall(SyscallEvent::decode(p)?),
            Kind::UnsupportedSyscall => Event::UnsupportedSyscall {
                nr: u32_at(0)?,
                name: text(UNSUPPORTED_FIXED)?,
            },
            Kind::Gap => {
                exact(GAP_LEN)?;
                let r = p.first().copied().ok_or(bad)?;
                Event::Gap(GapEvent {
                    reason: GapReason::from_u8(r).ok_or(DecodeError::BadGapReason(r))?,
                    first_seq: u64_at(8)?,
                    count: u64_at(16)?,
                    lost_total: u64_at(24)?,
                    block_seq: u64_at(32)?,
                    digest: get_mac(p, 40..72).ok_or(bad)?,
                })
            }
            Kind::Checkpoint => {
                exact(CHECKPOINT_LEN)?;
                Event::Checkpoint(CheckpointEvent {
                    next_record_seq: u64_at(0)?,
                    lost_total: u64_at(8)?,
                    evicted_blocks: u64_at(16)?,
                    sealed_blocks: u64_at(24)?,
                })
            }
            Kind::Text => Event::Text { text: text(0)? },
            Kind::Attestation => Event::Attestation { payload: p },
        })
    }
}

/// Bounded writer over a payload slice: writes past the end are dropped.
struct Cursor<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, v: &[u8]) {
        let end = self.pos.saturating_add(v.len());
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(v);
        }
        self.pos = end;
    }

    fn put_text(&mut self, s: &str) {
        let room = self.out.len().saturating_sub(self.pos);
        self.put(truncate(s, room).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(e: Event<'_>) {
        let len = e.payload_len(4000);
        let mut buf = [0u8; 4096];
        e.encode(&mut buf[..len]);
        assert_eq!(Event::decode(e.kind() as u8, &buf[..len]), Ok(e));
    }

    #[test]
    fn every_kind_roundtrips() {
        roundtrip(Event::Boot {
            memory_bytes: 1 << 30,
            cpu_count: 2,
            cmdline: "audit=64M",
        });
        roundtrip(Event::Panic { message: "oops" });
        roundtrip(Event::CpuException {
            vector: 14,
            error_code: 2,
            rip: 0xffff_8000_0000_1000,
            cr2: 0xdead,
        });
        roundtrip(Event::Syscall(SyscallEvent::new(
            1,
            [1, 2, 3, 4, 5, 6],
            -14,
            7,
            900,
        )));
        let mut s = SyscallEvent::new(60, [0, 0, 0, 0, 0, 0], 0, 1, 5);
        s.arg_count = 1;
        roundtrip(Event::Syscall(s));
        s.arg_count = 0;
        roundtrip(Event::Syscall(s));
        roundtrip(Event::Syscall(SyscallEvent::new(
            u32::MAX,
            [u64::MAX, 0, 1 << 63, 0x7fff_ffff_f000, 127, 128],
            i64::MIN,
            u32::MAX,
            u32::MAX,
        )));
        roundtrip(Event::UnsupportedSyscall {
            nr: 999,
            name: "frobnicate",
        });
        roundtrip(Event::Gap(GapEvent {
            reason: GapReason::Overwritten,
            first_seq: 1,
            count: 2,
            lost_total: 3,
            block_seq: 4,
            digest: [5; 32],
        }));
        roundtrip(Event::Checkpoint(CheckpointEvent {
            next_record_seq: 1,
            lost_total: 2,
            evicted_blocks: 3,
            sealed_blocks: 4,
        }));
        roundtrip(Event::Text { text: "héllo" });
        roundtrip(Event::Attestation {
            payload: &[1, 2, 3],
        });
    }

    #[test]
    fn a_redis_read_record_is_small() {
        let mut s = SyscallEvent::new(0, [8, 0x7f3c_89a0_c005, 16384, 0, 0, 0], 33, 1, 1400);
        s.arg_count = 3;
        // Tag 4, nr 1, tid 1, result 1, duration 2, fd 1, pointer 6,
        // length 2.
        assert_eq!(Event::Syscall(s).payload_len(4000), 18);
    }

    #[test]
    fn syscall_values_take_their_byte_counts() {
        let mut buf = [0u8; SYSCALL_WRITE_ROOM];
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1] {
                let mut s = SyscallEvent::new(0, [0, v, 0, 0, 0, 0], 0, 0, 0);
                s.arg_count = 2;
                let n = s.write(&mut buf);
                // Tag, four 1-byte values, a 1-byte first argument.
                assert_eq!(n, 4 + 4 + 1 + crate::wire::byte_len(v).max(1), "{v:#x}");
                assert_eq!(SyscallEvent::decode(&buf[..n]), Ok(s));
            }
        }
        let s = SyscallEvent::new(u32::MAX, [u64::MAX; 6], i64::MIN, u32::MAX, u32::MAX);
        assert_eq!(s.write(&mut buf), SYSCALL_MAX_BYTES);
        assert_eq!(SyscallEvent::decode(&buf[..SYSCALL_MAX_BYTES]), Ok(s));
    }

    #[test]
    fn text_truncates_on_char_boundary() {
        let e = Event::Text { text: "aé" };
        assert_eq!(e.payload_len(2), 1);
        let mut buf = [0u8; 1];
        e.encode(&mut buf);
        assert_eq!(
            Event::decode(Kind::Text as u8, &buf),
            Ok(Event::Text { text: "a" })
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        assert_eq!(Event::decode(0, &[]), Err(DecodeError::UnknownKind(0)));
        assert!(Event::decode(Kind::CpuException as u8, &[0; 31]).is_err());
        fn sys(p: &[u8]) -> Result<Event<'_>, DecodeError> {
            Event::decode(Kind::Syscall as u8, p)
        }
        // No argument, four 1-byte values (3, 3, 7 and 3 top bytes left
        // out: tag 0x0ff8): 8 bytes, no fewer, no more.
        assert!(sys(&[0xf8, 0x0f, 0, 0, 1, 2, 3, 4]).is_ok());
        assert!(sys(&[0xf8, 0x0f, 0, 0, 1, 2, 3]).is_err());
        assert!(sys(&[0xf8, 0x0f, 0, 0, 1, 2, 3, 4, 5]).is_err());
        assert!(sys(&[0, 0, 0]).is_err());
        // All four values whole (every field 0): 4 + 4 + 8 + 4 bytes.
        let mut p = vec![0u8; 24];
        assert!(sys(&p).is_ok());
        // A size field set for an argument past the count.
        p[1] = 0x10;
        assert!(sys(&p).is_err());
        // Bits 30–31 set with all six arguments (each whole).
        let mut p = vec![6u8, 0, 0, 0x40];
        p.extend_from_slice(&[1; 20 + 48]);
        assert!(sys(&p).is_err());
        p[3] = 0;
        assert!(sys(&p).is_ok());
        // Sizes that run past the payload.
        assert!(sys(&[0xf8, 0x0f, 0, 0, 1, 2, 3]).is_err());
        assert_eq!(sys(&[7, 0, 0, 0]), Err(DecodeError::BadArgCount(7)));
        assert!(Event::decode(Kind::Text as u8, &[0xff]).is_err());
        let mut g = [0u8; GAP_LEN];
        g[0] = 9;
        assert_eq!(
            Event::decode(Kind::Gap as u8, &g),
            Err(DecodeError::BadGapReason(9))
        );
    }
}
