//! The GHCB page (GHCB spec #56421, "GHCB Layout" and the table "GHCB
//! Save Area"; Linux `struct ghcb` in `arch/x86/include/asm/
//! svm.h`): a 4 KiB page shared with the hypervisor whose first 2 KiB
//! mirror the VMCB save area (registers by offset), followed by a shared
//! buffer (`0x800`), the protocol version (`0xffa`) and the usage
//! (`0xffc`). A field the guest sets is marked in the valid bitmap
//! (`0x3f0`, one bit per 8-byte field, bit = offset / 8); a field the
//! hypervisor returns is only believed if it marked it valid.
//!
//! [`Ghcb`] is the guest's private copy of the page: the kernel copies it
//! to the shared page before `VMGEXIT` and back after (see
//! [`super::GhcbProtocol`]).

use super::{Error, Result};

/// Bytes in the GHCB page.
pub const GHCB_BYTES: usize = 4096;
/// Offset of the valid bitmap (16 bytes).
pub const VALID_BITMAP_OFFSET: usize = 0x3f0;
/// Offset of the shared buffer.
pub const SHARED_BUFFER_OFFSET: usize = 0x800;
/// Bytes in the shared buffer (up to the reserved bytes at `0xff0`).
pub const SHARED_BUFFER_BYTES: usize = 0x7f0;
/// Offset of the protocol version (u16).
pub const PROTOCOL_VERSION_OFFSET: usize = 0xffa;
/// Offset of the GHCB usage (u32); 0 is the standard format.
pub const USAGE_OFFSET: usize = 0xffc;

/// The save-area fields Cloister uses, by their offset in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "register and field names of the spec's table")]
pub enum Field {
    Cpl = 0xcb,
    Xss = 0x140,
    Rax = 0x1f8,
    Rcx = 0x308,
    Rdx = 0x310,
    Rbx = 0x318,
    SwExitCode = 0x390,
    SwExitInfo1 = 0x398,
    SwExitInfo2 = 0x3a0,
    SwScratch = 0x3a8,
    Xcr0 = 0x3e8,
}

impl Field {
    /// Byte offset in the page.
    pub fn offset(self) -> usize {
        self as usize
    }

    /// Bit in the valid bitmap (offset / 8).
    pub fn valid_bit(self) -> usize {
        self.offset() / 8
    }

    /// Width in bytes (`CPL` is one byte, the rest eight).
    fn bytes(self) -> usize {
        match self {
            Self::Cpl => 1,
            _ => 8,
        }
    }
}

/// SVM exit codes the guest requests (AMD APM vol. 2 appendix C and the
/// GHCB spec's table of non-automatic exits).
pub mod exit_code {
    /// `RDTSC`.
    pub const RDTSC: u64 = 0x6e;
    /// `CPUID`.
    pub const CPUID: u64 = 0x72;
    /// `IN`/`OUT`/`INS`/`OUTS`.
    pub const IOIO: u64 = 0x7b;
    /// `RDMSR`/`WRMSR`.
    pub const MSR: u64 = 0x7c;
    /// `VMMCALL`.
    pub const VMMCALL: u64 = 0x81;
    /// `RDTSCP`.
    pub const RDTSCP: u64 = 0x87;
    /// `WBINVD`.
    pub const WBINVD: u64 = 0x89;
    /// Nested page fault (MMIO under `#VC`).
    pub const NPF: u64 = 0x400;
    /// MMIO read.
    pub const MMIO_READ: u64 = 0x8000_0001;
    /// MMIO write.
    pub const MMIO_WRITE: u64 = 0x8000_0002;
    /// NMI complete.
    pub const NMI_COMPLETE: u64 = 0x8000_0003;
    /// AP HLT loop.
    pub const AP_HLT_LOOP: u64 = 0x8000_0004;
    /// AP jump table.
    pub const AP_JUMP_TABLE: u64 = 0x8000_0005;
    /// SNP page-state change.
    pub const PSC: u64 = 0x8000_0010;
    /// SNP guest request.
    pub const GUEST_REQUEST: u64 = 0x8000_0011;
    /// SNP extended guest request.
    pub const EXT_GUEST_REQUEST: u64 = 0x8000_0012;
    /// SNP AP creation.
    pub const AP_CREATION: u64 = 0x8000_0013;
    /// Hypervisor feature support.
    pub const HV_FEATURES: u64 = 0x8000_fffd;
    /// Termination request.
    pub const TERMINATE: u64 = 0x8000_fffe;
    /// Unsupported event (hypervisor to guest).
    pub const UNSUPPORTED: u64 = 0x8000_ffff;
}

/// The guest's copy of the GHCB page (see the module docs).
#[derive(Clone)]
pub struct Ghcb {
    page: [u8; GHCB_BYTES],
}

impl core::fmt::Debug for Ghcb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ghcb")
            .field("sw_exit_code", &self.get(Field::SwExitCode))
            .field("protocol_version", &self.protocol_version())
            .finish_non_exhaustive()
    }
}

impl Default for Ghcb {
    fn default() -> Self {
        Self::new()
    }
}

impl Ghcb {
    /// An all-zero page.
    pub const fn new() -> Self {
        Self {
            page: [0; GHCB_BYTES],
        }
    }

    /// The page's bytes (what the kernel copies to the shared page).
    pub fn as_bytes(&self) -> &[u8; GHCB_BYTES] {
        &self.page
    }

    /// The page's bytes, writable (what the kernel copies back into).
    pub fn as_bytes_mut(&mut self) -> &mut [u8; GHCB_BYTES] {
        &mut self.page
    }

    /// Starts a new request: clears the save area and the valid bitmap
    /// (the shared buffer is left alone), then sets the protocol version
    /// and the standard usage.
    pub fn start(&mut self, protocol_version: u16) {
        self.page[..SHARED_BUFFER_OFFSET].fill(0);
        self.set_protocol_version(protocol_version);
        self.page[USAGE_OFFSET..].fill(0);
    }

    /// Sets `field` to `value` (a one-byte field takes the low byte) and
    /// marks it valid.
    pub fn set(&mut self, field: Field, value: u64) {
        let at = field.offset();
        let bytes = value.to_le_bytes();
        self.page[at..at + field.bytes()].copy_from_slice(&bytes[..field.bytes()]);
        let bit = field.valid_bit();
        self.page[VALID_BITMAP_OFFSET + bit / 8] |= 1 << (bit % 8);
    }

    /// Whether `field` is marked valid.
    pub fn is_valid(&self, field: Field) -> bool {
        let bit = field.valid_bit();
        self.page[VALID_BITMAP_OFFSET + bit / 8] & (1 << (bit % 8)) != 0
    }

    /// The raw value of `field`, valid or not.
    pub fn raw(&self, field: Field) -> u64 {
        let at = field.offset();
        let mut bytes = [0u8; 8];
        bytes[..field.bytes()].copy_from_slice(&self.page[at..at + field.bytes()]);
        u64::from_le_bytes(bytes)
    }

    /// The value of `field` if it is marked valid.
    pub fn get(&self, field: Field) -> Option<u64> {
        self.is_valid(field).then(|| self.raw(field))
    }

    /// The value of `field`, which the hypervisor must have returned.
    pub fn returned(&self, field: Field) -> Result<u64> {
        self.get(field)
            .ok_or(Error::Protocol("the hypervisor did not return a register"))
    }

    /// The protocol version field.
    pub fn protocol_version(&self) -> u16 {
        u16::from_le_bytes([
            self.page[PROTOCOL_VERSION_OFFSET],
            self.page[PROTOCOL_VERSION_OFFSET + 1],
        ])
    }

    /// Sets the protocol version field.
    pub fn set_protocol_version(&mut self, version: u16) {
        self.page[PROTOCOL_VERSION_OFFSET..PROTOCOL_VERSION_OFFSET + 2]
            .copy_from_slice(&version.to_le_bytes());
    }

    /// The usage field.
    pub fn usage(&self) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.page[USAGE_OFFSET..USAGE_OFFSET + 4]);
        u32::from_le_bytes(bytes)
    }

    /// The shared buffer.
    pub fn shared_buffer(&self) -> &[u8] {
        &self.page[SHARED_BUFFER_OFFSET..SHARED_BUFFER_OFFSET + SHARED_BUFFER_BYTES]
    }

    /// The shared buffer, writable.
    pub fn shared_buffer_mut(&mut self) -> &mut [u8] {
        &mut self.page[SHARED_BUFFER_OFFSET..SHARED_BUFFER_OFFSET + SHARED_BUFFER_BYTES]
    }

    /// Sets the exit code and the two exit-information fields of a request.
    pub fn set_exit(&mut self, code: u64, info1: u64, info2: u64) {
        self.set(Field::SwExitCode, code);
        self.set(Field::SwExitInfo1, info1);
        self.set(Field::SwExitInfo2, info2);
    }

    /// Checks the hypervisor's verdict (GHCB spec, on the hypervisor's
    /// response to a non-automatic exit): `SW_EXITINFO1[31:0]` 0 is success; 1 is an error, with
    /// `SW_EXITINFO2` either an exception to raise (an `EVENTINJ` value: bit 31 valid, bits
    /// 10:8 type 3 = exception, 7:0 vector, bit 11 error code valid, 63:32
    /// the error code) or a host error code; anything else violates the
    /// protocol.
    pub fn check_result(&self) -> Result<()> {
        let info1 = self.raw(Field::SwExitInfo1) as u32;
        let info2 = self.raw(Field::SwExitInfo2);
        match info1 {
            0 => Ok(()),
            1 => {
                const VALID: u64 = 1 << 31;
                const TYPE_EXCEPTION: u64 = 3;
                const ERROR_CODE_VALID: u64 = 1 << 11;
                if info2 & VALID != 0 && (info2 >> 8) & 0x7 == TYPE_EXCEPTION {
                    Err(Error::Exception {
                        vector: info2 as u8,
                        error_code: (info2 & ERROR_CODE_VALID != 0).then_some((info2 >> 32) as u32),
                    })
                } else {
                    Err(Error::HostError(info2))
                }
            }
            _ => Err(Error::Protocol("SW_EXITINFO1 is neither 0 nor 1")),
        }
    }
}

/// Direction of a port access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// `OUT`: guest to port.
    Out,
    /// `IN`: port to guest.
    In,
}

/// The `SW_EXITINFO1` of an IOIO exit (AMD APM vol. 2, 15.10.2, "IN and
/// OUT Behavior": bit 0 type (1 = IN), 2 string, 3 REP, 4/5/6 operand
/// size 8/16/32, 7/8/9 address size 16/32/64, 12:10 segment, 31:16 port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoioInfo {
    /// The port.
    pub port: u16,
    /// Operand size in bytes: 1, 2 or 4.
    pub size_bytes: u8,
    /// IN or OUT.
    pub direction: IoDirection,
    /// `INS`/`OUTS`.
    pub string: bool,
    /// `REP` prefix.
    pub rep: bool,
    /// Address size in bytes (2, 4 or 8; string instructions only, else 0).
    pub address_bytes: u8,
}

impl IoioInfo {
    /// A plain (non-string) IN or OUT.
    pub fn simple(port: u16, size_bytes: u8, direction: IoDirection) -> Self {
        Self {
            port,
            size_bytes,
            direction,
            string: false,
            rep: false,
            address_bytes: 0,
        }
    }

    /// Encodes `SW_EXITINFO1`; `None` for a size other than 1, 2, 4 or an
    /// address size other than 0, 2, 4, 8.
    pub fn encode(&self) -> Option<u64> {
        let size_bit = match self.size_bytes {
            1 => 1 << 4,
            2 => 1 << 5,
            4 => 1 << 6,
            _ => return None,
        };
        let address_bit = match self.address_bytes {
            0 => 0,
            2 => 1 << 7,
            4 => 1 << 8,
            8 => 1 << 9,
            _ => return None,
        };
        Some(
            (u64::from(self.port) << 16)
                | size_bit
                | address_bit
                | (u64::from(self.rep) << 3)
                | (u64::from(self.string) << 2)
                | u64::from(self.direction == IoDirection::In),
        )
    }

    /// Decodes `SW_EXITINFO1` (exactly one size bit, at most one address
    /// bit).
    pub fn decode(value: u64) -> Option<Self> {
        let size_bytes = match (value >> 4) & 0x7 {
            0b001 => 1,
            0b010 => 2,
            0b100 => 4,
            _ => return None,
        };
        let address_bytes = match (value >> 7) & 0x7 {
            0 => 0,
            0b001 => 2,
            0b010 => 4,
            0b100 => 8,
            _ => return None,
        };
        Some(Self {
            port: (value >> 16) as u16,
            size_bytes,
            direction: if value & 1 != 0 {
                IoDirection::In
            } else {
                IoDirection::Out
            },
            string: value & (1 << 2) != 0,
            rep: value & (1 << 3) != 0,
            address_bytes,
        })
    }
}

#[cfg(test)]
#[path = "ghcb_tests.rs"]
mod tests;
