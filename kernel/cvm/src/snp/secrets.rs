//! The SNP secrets page (SEV-SNP firmware ABI #56860, table "Secrets
//! Page Format"; Linux `struct snp_secrets_page`): a page the PSP
//! fills at launch with the VM platform communication keys (VMPCK0–3) the
//! guest encrypts its messages to the PSP with, followed by an area the
//! guest OS owns (Linux keeps its message sequence numbers there).
//!
//! Layout: `0x00` version, `0x04` flags (bit 0 `IMIEN`), `0x08` FMS,
//! `0x10` GOSVW (16 bytes), `0x20`/`0x40`/`0x60`/`0x80` VMPCK0–3 (32
//! bytes each), `0xA0` the guest OS area (`msg_seqno_0..3` as u32 at
//! `0xA0`–`0xAC`, the AP jump table address at `0xB0`).

use super::{Error, Result};

/// Bytes a secrets page must have for the fields read here.
pub const MIN_BYTES: usize = 0x100;
/// Offset of VMPCK0; VMPCK`n` is at `VMPCK0_OFFSET + 32 * n`.
pub const VMPCK0_OFFSET: usize = 0x20;
/// Bytes of a VMPCK.
pub const VMPCK_BYTES: usize = 32;
/// Offset of the guest OS area's `msg_seqno_0`; `msg_seqno_n` is 4 bytes
/// further per `n`.
pub const OS_MSG_SEQNO_OFFSET: usize = 0xa0;

/// What Cloister reads from the secrets page (a private copy).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsPage {
    /// The page format version.
    pub version: u32,
    /// `IMIEN`: interrupt injection is restricted.
    pub imien: bool,
    /// The family/model/stepping of the chip.
    pub fms: u32,
    vmpcks: [[u8; VMPCK_BYTES]; 4],
    /// The guest OS area's message sequence numbers, per VMPCK.
    pub msg_seqnos: [u32; 4],
}

impl core::fmt::Debug for SecretsPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print keys.
        f.debug_struct("SecretsPage")
            .field("version", &self.version)
            .field("imien", &self.imien)
            .field("fms", &self.fms)
            .finish_non_exhaustive()
    }
}

impl Drop for SecretsPage {
    fn drop(&mut self) {
        // Best effort: the keys do not outlive this copy.
        self.vmpcks = [[0; VMPCK_BYTES]; 4];
        core::hint::black_box(&self.vmpcks);
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl SecretsPage {
    /// Parses the page's bytes (at least [`MIN_BYTES`]).
    pub fn parse(page: &[u8]) -> Result<Self> {
        if page.len() < MIN_BYTES {
            return Err(Error::InvalidArgument);
        }
        let mut vmpcks = [[0u8; VMPCK_BYTES]; 4];
        for (n, key) in vmpcks.iter_mut().enumerate() {
            let at = VMPCK0_OFFSET + VMPCK_BYTES * n;
            key.copy_from_slice(&page[at..at + VMPCK_BYTES]);
        }
        Ok(Self {
            version: u32_at(page, 0),
            imien: u32_at(page, 4) & 1 != 0,
            fms: u32_at(page, 8),
            vmpcks,
            msg_seqnos: core::array::from_fn(|n| u32_at(page, OS_MSG_SEQNO_OFFSET + 4 * n)),
        })
    }

    /// VMPCK`id` (0–3), or `None` for another id or a key that is all
    /// zeros (the PSP gave none, or the guest wiped it after a failed
    /// exchange, as Linux does).
    pub fn vmpck(&self, id: u8) -> Option<&[u8; VMPCK_BYTES]> {
        let key = self.vmpcks.get(usize::from(id))?;
        key.iter().any(|&b| b != 0).then_some(key)
    }

    /// Overwrites VMPCK`id` in this copy with zeros.
    pub fn wipe_vmpck(&mut self, id: u8) {
        if let Some(key) = self.vmpcks.get_mut(usize::from(id)) {
            key.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn layout() {
        let mut page = vec![0u8; 4096];
        page[0..4].copy_from_slice(&3u32.to_le_bytes());
        page[4] = 1;
        page[8..12].copy_from_slice(&0x00a0_0f11u32.to_le_bytes());
        for n in 0..4u8 {
            let at = 0x20 + 0x20 * usize::from(n);
            page[at..at + 32].fill(0x10 + n);
            let s = 0xa0 + 4 * usize::from(n);
            page[s..s + 4].copy_from_slice(&(100 + u32::from(n)).to_le_bytes());
        }
        // VMPCK3 at 0x80..0xa0 must not run into the OS area.
        page[0x9f] = 0x13;
        let mut s = SecretsPage::parse(&page).unwrap();
        assert_eq!((s.version, s.imien, s.fms), (3, true, 0x00a0_0f11));
        assert_eq!(s.vmpck(0), Some(&[0x10; 32]));
        assert_eq!(s.vmpck(2), Some(&[0x12; 32]));
        assert_eq!(s.vmpck(3), Some(&[0x13; 32]));
        assert_eq!(s.vmpck(4), None);
        assert_eq!(s.msg_seqnos, [100, 101, 102, 103]);
        s.wipe_vmpck(1);
        assert_eq!(s.vmpck(1), None);
        assert!(!alloc::format!("{s:?}").contains("16"));
        assert!(SecretsPage::parse(&page[..0xff]).is_err());
    }
}
