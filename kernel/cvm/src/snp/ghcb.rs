//! The GHCB page (AMD GHCB specification #56421, section 2.3.2 and table
//! 3 "GHCB Layout"): a 4 KiB page the guest shares with the hypervisor to
//! pass register state, the exit code and its information around a
//! `VMGEXIT`. Every field the guest sets is marked in the valid bitmap
//! (bit = offset / 8); the hypervisor reads only valid fields.
//!
//! [`Ghcb`] is the page as bytes, so it can be a copy of the shared page
//! (the kernel copies the hypervisor's answer into private memory before
//! reading it: no double fetch) and can be tested on the host.

/// Field offsets (bytes from the start of the page).
#[allow(missing_docs, reason = "names follow the specification's table")]
pub mod offset {
    pub const CPL: usize = 0x0cb;
    pub const XSS: usize = 0x140;
    pub const DR7: usize = 0x160;
    pub const RAX: usize = 0x1f8;
    pub const RCX: usize = 0x308;
    pub const RDX: usize = 0x310;
    pub const RBX: usize = 0x318;
    pub const SW_EXIT_CODE: usize = 0x390;
    pub const SW_EXIT_INFO_1: usize = 0x398;
    pub const SW_EXIT_INFO_2: usize = 0x3a0;
    pub const SW_SCRATCH: usize = 0x3a8;
    pub const XCR0: usize = 0x3e8;
    pub const VALID_BITMAP: usize = 0x3f0;
    pub const SHARED_BUFFER: usize = 0x800;
    pub const PROTOCOL_VERSION: usize = 0xffa;
    pub const GHCB_USAGE: usize = 0xffc;
}

/// Bytes in the shared buffer (0x800 .. 0xff0).
pub const SHARED_BUFFER_BYTES: usize = 0x7f0;

/// Exit codes (`SW_EXITCODE`): SVM intercept codes and the GHCB's own.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod exit {
    pub const RDTSC: u64 = 0x6e;
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const VMMCALL: u64 = 0x81;
    pub const RDTSCP: u64 = 0x87;
    pub const MMIO_READ: u64 = 0x8000_0001;
    pub const MMIO_WRITE: u64 = 0x8000_0002;
    pub const NMI_COMPLETE: u64 = 0x8000_0003;
    pub const AP_HLT_LOOP: u64 = 0x8000_0004;
    pub const PSC: u64 = 0x8000_0010;
    pub const GUEST_REQUEST: u64 = 0x8000_0011;
    pub const EXT_GUEST_REQUEST: u64 = 0x8000_0012;
    pub const AP_CREATION: u64 = 0x8000_0013;
    pub const HV_FEATURES: u64 = 0x8000_fffd;
    pub const TERM_REQUEST: u64 = 0x8000_fffe;
}

/// Page bytes.
pub const GHCB_BYTES: usize = 4096;

/// A GHCB page's contents.
#[derive(Clone)]
pub struct Ghcb {
    bytes: [u8; GHCB_BYTES],
}

impl core::fmt::Debug for Ghcb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ghcb")
            .field("exit_code", &self.u64_at(offset::SW_EXIT_CODE))
            .field("valid", &self.valid_bits())
            .finish_non_exhaustive()
    }
}

impl Default for Ghcb {
    fn default() -> Self {
        Self::new()
    }
}

/// How a `VMGEXIT` ended, from `SW_EXITINFO1`/`SW_EXITINFO2` (GHCB
/// specification 2.3.4, Linux's `verify_exception_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `SW_EXITINFO1[31:0]` is 0.
    Ok,
    /// The hypervisor asks the guest to raise `#GP` or `#UD` (vector).
    Exception(u8),
    /// Anything else: the hypervisor failed or misbehaved.
    HostError {
        /// `SW_EXITINFO1`.
        info1: u64,
        /// `SW_EXITINFO2`.
        info2: u64,
    },
}

impl Ghcb {
    /// An empty page for protocol version 2, usage 0 (the standard GHCB).
    pub fn new() -> Self {
        let mut g = Self {
            bytes: [0; GHCB_BYTES],
        };
        g.bytes[offset::PROTOCOL_VERSION..offset::PROTOCOL_VERSION + 2]
            .copy_from_slice(&2u16.to_le_bytes());
        g
    }

    /// A copy of a page's bytes (the hypervisor's answer, taken into
    /// private memory once).
    pub fn from_bytes(bytes: &[u8; GHCB_BYTES]) -> Self {
        Self { bytes: *bytes }
    }

    /// The page's bytes.
    pub fn as_bytes(&self) -> &[u8; GHCB_BYTES] {
        &self.bytes
    }

    /// Clears the save area and the valid bitmap for a new request (the
    /// protocol version and usage stay).
    pub fn clear(&mut self) {
        self.bytes[..offset::SHARED_BUFFER].fill(0);
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Sets the 8-byte field at `at` and marks it valid.
    pub fn set(&mut self, at: usize, value: u64) {
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let bit = at / 8;
        self.bytes[offset::VALID_BITMAP + bit / 8] |= 1 << (bit % 8);
    }

    /// Whether the field at `at` is marked valid.
    pub fn is_valid(&self, at: usize) -> bool {
        let bit = at / 8;
        self.bytes[offset::VALID_BITMAP + bit / 8] & (1 << (bit % 8)) != 0
    }

    /// The field at `at`, if the other side marked it valid.
    pub fn get(&self, at: usize) -> Option<u64> {
        self.is_valid(at).then(|| self.u64_at(at))
    }

    fn valid_bits(&self) -> u128 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.bytes[offset::VALID_BITMAP..offset::VALID_BITMAP + 16]);
        u128::from_le_bytes(b)
    }

    /// Sets the exit code and its two information fields (all marked valid).
    pub fn set_exit(&mut self, code: u64, info1: u64, info2: u64) {
        self.set(offset::SW_EXIT_CODE, code);
        self.set(offset::SW_EXIT_INFO_1, info1);
        self.set(offset::SW_EXIT_INFO_2, info2);
    }

    /// The shared buffer.
    pub fn shared_buffer(&self) -> &[u8] {
        &self.bytes[offset::SHARED_BUFFER..offset::SHARED_BUFFER + SHARED_BUFFER_BYTES]
    }

    /// The shared buffer, to fill.
    pub fn shared_buffer_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[offset::SHARED_BUFFER..offset::SHARED_BUFFER + SHARED_BUFFER_BYTES]
    }

    /// How the exit ended (read after the hypervisor answered).
    pub fn outcome(&self) -> Outcome {
        let info1 = self.u64_at(offset::SW_EXIT_INFO_1);
        let info2 = self.u64_at(offset::SW_EXIT_INFO_2);
        match info1 & 0xffff_ffff {
            0 => Outcome::Ok,
            1 => {
                // SVM event injection format: vector 7:0, type 10:8
                // (3 = exception), valid bit 31.
                let vector = (info2 & 0xff) as u8;
                let exception = (info2 >> 8) & 7 == 3;
                let valid = info2 & (1 << 31) != 0;
                if valid && exception && (vector == 13 || vector == 6) {
                    Outcome::Exception(vector)
                } else {
                    Outcome::HostError { info1, info2 }
                }
            }
            _ => Outcome::HostError { info1, info2 },
        }
    }
}

/// `SW_EXITINFO1` for an IOIO exit (AMD APM vol. 2, 15.10.2 "IN and OUT
/// Behavior"): direction bit 0 (1 = IN), operand size bits 6:4 (one-hot
/// 8/16/32), address size bits 9:7 (one-hot 16/32/64; 64 in long mode),
/// port bits 31:16. String and REP forms are not produced (Cloister's
/// drivers do not use them).
pub fn ioio_exit_info(port: u16, bytes: u8, is_in: bool) -> Option<u64> {
    let size = match bytes {
        1 => 1 << 4,
        2 => 1 << 5,
        4 => 1 << 6,
        _ => return None,
    };
    Some((u64::from(port) << 16) | (1 << 9) | size | u64::from(is_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_matches_the_specification() {
        // Offsets from the GHCB specification's table (and Linux's
        // `struct ghcb_save_area`), and the valid-bitmap bit of each.
        assert_eq!(offset::RAX / 8, 63);
        assert_eq!(offset::RCX / 8, 97);
        assert_eq!(offset::SW_EXIT_CODE / 8, 114);
        assert_eq!(offset::SW_SCRATCH / 8, 117);
        assert_eq!(offset::XCR0 / 8, 125);
        assert_eq!(offset::SHARED_BUFFER + SHARED_BUFFER_BYTES, 0xff0);
        // 2032 bytes: the 8-byte PSC header and 253 entries exactly.
        assert_eq!(SHARED_BUFFER_BYTES, 8 + 253 * 8);
        let g = Ghcb::new();
        assert_eq!(&g.as_bytes()[0xffa..0xffc], &[2, 0]);
        assert_eq!(&g.as_bytes()[0xffc..0x1000], &[0, 0, 0, 0]);
    }

    #[test]
    fn setting_a_field_marks_it_valid_and_clear_forgets() {
        let mut g = Ghcb::new();
        assert_eq!(g.get(offset::RAX), None);
        g.set(offset::RAX, 0x8000_001f);
        g.set_exit(exit::CPUID, 0, 0);
        assert_eq!(g.get(offset::RAX), Some(0x8000_001f));
        assert_eq!(g.as_bytes()[offset::VALID_BITMAP + 7], 0x80, "bit 63");
        assert_eq!(g.get(offset::SW_EXIT_CODE), Some(0x72));
        assert!(!g.is_valid(offset::RBX));
        g.clear();
        assert_eq!(g.get(offset::RAX), None);
        assert_eq!(&g.as_bytes()[0xffa..0xffc], &[2, 0], "version kept");
    }

    #[test]
    fn outcomes_follow_the_exit_information() {
        let mut g = Ghcb::new();
        g.set_exit(exit::MSR, 0, 0);
        assert_eq!(g.outcome(), Outcome::Ok);
        // #GP injected: valid, type exception (3), vector 13.
        g.set_exit(exit::MSR, 1, (1 << 31) | (3 << 8) | 13);
        assert_eq!(g.outcome(), Outcome::Exception(13));
        // A page fault is not something the hypervisor may ask for.
        g.set_exit(exit::MSR, 1, (1 << 31) | (3 << 8) | 14);
        assert!(matches!(g.outcome(), Outcome::HostError { .. }));
        g.set_exit(exit::MSR, 2, 0);
        assert!(matches!(g.outcome(), Outcome::HostError { .. }));
    }

    #[test]
    fn ioio_information_encodes_port_size_and_direction() {
        assert_eq!(ioio_exit_info(0x3f8, 1, false), Some(0x03f8_0210));
        assert_eq!(ioio_exit_info(0xcfc, 4, true), Some(0x0cfc_0241));
        assert_eq!(ioio_exit_info(0x70, 2, true), Some(0x0070_0221));
        assert_eq!(ioio_exit_info(0x70, 8, true), None);
    }
}
