//! Event kinds and their payload encodings (layouts in `docs/AUDIT.md`).
//!
//! [`Event`] is what the kernel appends and what the reader decodes; text
//! fields borrow, so neither side allocates. Fixed-size payloads must have
//! exactly their length; variable ones a minimum. Decoding validates every
//! length and UTF-8 string and never panics.

use core::fmt;

use crate::wire::{MAC_BYTES, get_mac, get_u32, get_u64};

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

/// A syscall in compact form: 24 bytes plus 8 per argument kept.
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
const SYSCALL_FIXED: usize = 24;
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
            Event::Syscall(s) => SYSCALL_FIXED + 8 * usize::from(s.arg_count.min(6)),
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
            Event::Syscall(s) => {
                let argc = s.arg_count.min(6);
                w.put(&s.nr.to_le_bytes());
                w.put(&s.tid.to_le_bytes());
                w.put(&s.result.to_le_bytes());
                w.put(&s.duration_ns.to_le_bytes());
                w.put(&[argc, 0, 0, 0]);
                for a in s.args.iter().take(usize::from(argc)) {
                    w.put(&a.to_le_bytes());
                }
            }
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
            Kind::Syscall => {
                let argc = *p.get(20).ok_or(bad)?;
                if argc > 6 {
                    return Err(DecodeError::BadArgCount(argc));
                }
                exact(SYSCALL_FIXED + 8 * usize::from(argc))?;
                let mut args = [0u64; 6];
                for (i, a) in args.iter_mut().enumerate().take(usize::from(argc)) {
                    *a = u64_at(SYSCALL_FIXED + 8 * i)?;
                }
                Event::Syscall(SyscallEvent {
                    nr: u32_at(0)?,
                    tid: u32_at(4)?,
                    result: u64_at(8)? as i64,
                    duration_ns: u32_at(16)?,
                    arg_count: argc,
                    args,
                })
            }
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
        assert!(Event::decode(Kind::Syscall as u8, &[0; 23]).is_err());
        assert!(Event::decode(Kind::Text as u8, &[0xff]).is_err());
        let mut g = [0u8; GAP_LEN];
        g[0] = 9;
        assert_eq!(
            Event::decode(Kind::Gap as u8, &g),
            Err(DecodeError::BadGapReason(9))
        );
    }
}
