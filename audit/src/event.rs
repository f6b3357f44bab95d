//! Event kinds and their payload encodings (layouts in `docs/AUDIT.md`).
//!
//! [`Event`] is what the kernel appends and what the reader decodes; text
//! fields borrow, so neither side allocates. Fixed-size payloads must have
//! exactly their length; variable ones a minimum. Decoding validates every
//! length and UTF-8 string and never panics.

use core::fmt;

use crate::wire::{MAC_BYTES, get_mac, get_sized, get_u32, get_u64, unzigzag, zigzag};

/// Bytes of a syscall payload's tag.
const SYSCALL_TAG_BYTES: usize = 3;
/// Longest syscall payload: the tag and ten 8-byte values.
pub const SYSCALL_MAX_BYTES: usize = SYSCALL_TAG_BYTES + 10 * 8;

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
/// and each argument kept, each in 1, 2, 4 or 8 bytes as its value needs,
/// after a 3-byte tag of the sizes — 10 to 20 bytes for most calls.
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

    /// Writes the payload at `out[0..]` and returns its length: the 3-byte
    /// tag, then the values in their sizes, in one pass, each value with
    /// one 8-byte store — so up to 7 zero bytes land past the payload.
    /// `out` must hold [`SYSCALL_MAX_BYTES`] plus 8 bytes; a shorter one
    /// gets values left out (never a panic).
    #[inline]
    pub(crate) fn write(&self, out: &mut [u8]) -> usize {
        let argc = usize::from(self.arg_count.min(6));
        let mut tag = argc as u32;
        let mut at = SYSCALL_TAG_BYTES;
        let mut put = |v: u64, shift: u32| {
            let class = u32::from(v > 0xff) + u32::from(v > 0xffff) + u32::from(v > 0xffff_ffff);
            if let Some(w) = out.get_mut(at..at + 8) {
                w.copy_from_slice(&v.to_le_bytes());
            }
            at += 1 << class;
            tag |= class << shift;
        };
        put(u64::from(self.nr), 3);
        put(u64::from(self.tid), 5);
        put(zigzag(self.result), 7);
        put(u64::from(self.duration_ns), 9);
        for (i, &a) in self.args.iter().take(argc).enumerate() {
            put(a, 11 + 2 * i as u32);
        }
        if let Some(t) = out.get_mut(..SYSCALL_TAG_BYTES) {
            t.copy_from_slice(&tag.to_le_bytes()[..SYSCALL_TAG_BYTES]);
        }
        at
    }

    /// Payload bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        let mut buf = [0u8; SYSCALL_MAX_BYTES + 8];
        self.write(&mut buf)
    }

    /// Writes the payload at `out[0..]`, whose length is
    /// [`Self::encoded_len`].
    pub(crate) fn encode_into(&self, out: &mut [u8]) {
        let mut buf = [0u8; SYSCALL_MAX_BYTES + 8];
        let len = self.write(&mut buf);
        if let (Some(dst), Some(src)) = (out.get_mut(..len), buf.get(..len)) {
            dst.copy_from_slice(src);
        }
    }

    /// Decodes a payload (the layout of [`Self::write`]: bits 0–2 of the
    /// tag the argument count, then two bits per value, the log2 of its
    /// size — 1, 2, 4 or 8 bytes, the fewest that hold it), which must end
    /// exactly after its last value.
    fn decode(p: &[u8]) -> Result<Self, DecodeError> {
        let bad = DecodeError::BadLength {
            kind: Kind::Syscall,
            len: p.len(),
        };
        let tag_bytes = p.get(..SYSCALL_TAG_BYTES).ok_or(bad)?;
        let tag = u32::from_le_bytes([tag_bytes[0], tag_bytes[1], tag_bytes[2], 0]);
        let argc = (tag & 7) as u8;
        if argc > 6 {
            return Err(DecodeError::BadArgCount(argc));
        }
        let values = 4 + usize::from(argc);
        if tag >> (3 + 2 * values) != 0 {
            return Err(bad);
        }
        let mut v = [0u64; 10];
        let mut at = SYSCALL_TAG_BYTES;
        for (i, slot) in v.iter_mut().take(values).enumerate() {
            let size = 1 << ((tag >> (3 + 2 * i)) & 3);
            (*slot, at) = get_sized(p, at, size).ok_or(bad)?;
        }
        if at != p.len() {
            return Err(bad);
        }
        let narrow = |x: u64| u32::try_from(x).map_err(|_| bad);
        let mut args = [0u64; 6];
        args.copy_from_slice(&v[4..]);
        Ok(SyscallEvent {
            nr: narrow(v[0])?,
            tid: narrow(v[1])?,
            result: unzigzag(v[2]),
            duration_ns: narrow(v[3])?,
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
        // Tag 3, nr 1, tid 1, result 1, duration 2, fd 1, pointer 8,
        // length 2.
        assert_eq!(Event::Syscall(s).payload_len(4000), 19);
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
        // No argument, four 1-byte values: 7 bytes, no fewer, no more.
        assert!(sys(&[0, 0, 0, 1, 2, 3, 4]).is_ok());
        assert!(sys(&[0, 0, 0, 1, 2, 3]).is_err());
        assert!(sys(&[0, 0, 0, 1, 2, 3, 4, 5]).is_err());
        assert!(sys(&[0, 0]).is_err());
        // Size bits set for a value past the count.
        assert!(sys(&[0, 0, 0x80, 1, 2, 3, 4]).is_err());
        // A tid of 8 bytes past u32.
        let mut p = vec![0u8, 0xc0, 0, 1];
        p.extend_from_slice(&(1u64 << 40).to_le_bytes());
        p.extend_from_slice(&[3, 4]);
        assert!(sys(&p).is_err());
        assert_eq!(sys(&[7, 0, 0]), Err(DecodeError::BadArgCount(7)));
        assert!(Event::decode(Kind::Text as u8, &[0xff]).is_err());
        let mut g = [0u8; GAP_LEN];
        g[0] = 9;
        assert_eq!(
            Event::decode(Kind::Gap as u8, &g),
            Err(DecodeError::BadGapReason(9))
        );
    }
}
